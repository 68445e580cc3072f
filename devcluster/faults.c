/* devcluster/faults.c: fault injection for client tests, loopback only.
 *
 *   GET    /kiln/faults                     current settings
 *   POST   /kiln/faults  {"dropWatches":true}          end every open watch now
 *                        {"expireNextWatch":true}      next watch gets ERROR 410 Expired
 *                        {"compact":true}              forget the watch history (old RVs -> 410)
 *                        {"delayMs":N}                 hold every answer N ms (0 = off)
 *                        {"failNth":{"n":N,"code":409|429|500,"method":"POST",
 *                                    "pathPrefix":"/api/v1/...","retryAfterSeconds":1}}
 *   DELETE /kiln/faults                     clear everything
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "devcluster/internal.h"

static void reply_state(kiln_devcluster *dc, kiln_devcluster_response *resp)
{
    json_t *rules = json_array();
    for (size_t i = 0; i < dc->nfaults; i++) {
        kiln_dc_fault_rule *f = &dc->faults[i];
        json_array_append_new(rules,
                              json_pack("{s:i,s:i,s:i,s:s,s:s,s:i}", "n", f->n, "seen", f->seen,
                                        "code", f->code, "method", f->method, "pathPrefix",
                                        f->path_prefix, "retryAfterSeconds", f->retry_after));
    }
    json_t *st = json_pack("{s:b,s:i,s:o,s:I,s:I}", "expireNextWatch", dc->expire_next_watch,
                           "delayMs", dc->delay_ms, "failNth", rules, "watchers",
                           (json_int_t)dc->nwatchers, "resourceVersion", (json_int_t)dc->rv);
    kiln_dc_reply_json(resp, 200, st);
    json_decref(st);
}

bool kiln_dc_faults_handle(kiln_devcluster *dc, const kiln_devcluster_request *req,
                           kiln_devcluster_response *resp)
{
    if (strcmp(req->path, "/kiln/faults"))
        return false;
    if (!req->loopback) {
        kiln_dc_status(resp, 403, "Forbidden", NULL,
                       "fault injection is only for loopback clients");
        return true;
    }
    json_t *body = NULL;
    pthread_mutex_lock(&dc->mu);
    if (!strcmp(req->method, "DELETE")) {
        dc->expire_next_watch = false;
        dc->delay_ms = 0;
        dc->nfaults = 0;
        reply_state(dc, resp);
    } else if (!strcmp(req->method, "GET")) {
        reply_state(dc, resp);
    } else if (!strcmp(req->method, "POST")) {
        body = kiln_dc_parse_body(req, resp);
        if (!json_is_object(body)) {
            if (body)
                kiln_dc_status(resp, 400, "BadRequest", NULL, "expected a JSON object");
            goto done;
        }
        if (json_is_true(json_object_get(body, "dropWatches")))
            kiln_dc_watch_drop_all(dc);
        if (json_is_true(json_object_get(body, "expireNextWatch")))
            dc->expire_next_watch = true;
        if (json_is_true(json_object_get(body, "compact"))) {
            dc->compacted_rv = dc->rv;
            kiln_dc_store_free_history(dc);
            dc->hcap = dc->opts.history;
            dc->hist = kiln_xcalloc(dc->hcap, sizeof *dc->hist);
        }
        json_t *d = json_object_get(body, "delayMs");
        if (json_is_integer(d))
            dc->delay_ms = (int)json_integer_value(d);
        json_t *f = json_object_get(body, "failNth");
        if (json_is_object(f)) {
            int code = (int)json_integer_value(json_object_get(f, "code"));
            if (code != 409 && code != 429 && code != 500) {
                kiln_dc_status(resp, 422, "Invalid", NULL,
                               "failNth.code: Unsupported value: %d: supported values: 409, 429, "
                               "500",
                               code);
                goto done;
            }
            if (dc->nfaults == sizeof dc->faults / sizeof dc->faults[0]) {
                kiln_dc_status(resp, 422, "Invalid", NULL, "too many fault rules (8)");
                goto done;
            }
            kiln_dc_fault_rule *r = &dc->faults[dc->nfaults++];
            memset(r, 0, sizeof *r);
            r->n = (int)json_integer_value(json_object_get(f, "n"));
            if (r->n < 1)
                r->n = 1;
            r->code = code;
            r->retry_after = (int)json_integer_value(json_object_get(f, "retryAfterSeconds"));
            if (code == 429 && r->retry_after <= 0)
                r->retry_after = 1;
            snprintf(r->method, sizeof r->method, "%s",
                     json_string_value(json_object_get(f, "method")) ?: "");
            snprintf(r->path_prefix, sizeof r->path_prefix, "%s",
                     json_string_value(json_object_get(f, "pathPrefix")) ?: "");
        }
        reply_state(dc, resp);
    } else {
        kiln_dc_status(resp, 405, "MethodNotAllowed", NULL,
                       "the server does not allow this method on the requested resource");
    }
done:
    pthread_mutex_unlock(&dc->mu);
    json_decref(body);
    return true;
}

bool kiln_dc_faults_check(kiln_devcluster *dc, const kiln_devcluster_request *req,
                          kiln_devcluster_response *resp)
{
    for (size_t i = 0; i < dc->nfaults; i++) {
        kiln_dc_fault_rule *f = &dc->faults[i];
        if (f->method[0] && strcmp(f->method, req->method))
            continue;
        if (f->path_prefix[0] && strncmp(req->path, f->path_prefix, strlen(f->path_prefix)))
            continue;
        if (++f->seen != f->n)
            continue;
        if (f->code == 409)
            kiln_dc_status(resp, 409, "Conflict", NULL,
                           "Operation cannot be fulfilled: the object has been modified; please "
                           "apply your changes to the latest version and try again (injected)");
        else if (f->code == 429)
            kiln_dc_status(resp, 429, "TooManyRequests",
                           json_pack("{s:i}", "retryAfterSeconds", f->retry_after),
                           "Too many requests, please try again later. (injected)");
        else
            kiln_dc_status(resp, 500, "InternalError",
                           json_pack("{s:[{s:s}]}", "causes", "message", "injected fault"),
                           "Internal error occurred: injected fault");
        resp->retry_after = f->retry_after;
        memmove(f, f + 1, (dc->nfaults - i - 1) * sizeof *f);
        dc->nfaults--;
        return true;
    }
    return false;
}
