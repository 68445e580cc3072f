#include "kube/client.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "kube/internal.h"

#ifndef KILN_VERSION
#define KILN_VERSION "0.0.0"
#endif
#if defined(__x86_64__)
#define KILN_ARCH "amd64"
#elif defined(__aarch64__)
#define KILN_ARCH "arm64"
#else
#define KILN_ARCH "unknown"
#endif

/* client-go defaults (rest/config.go, rest/request.go, tools/pager). */
#define DEFAULT_QPS 5.0
#define DEFAULT_BURST 10
#define DEFAULT_MAX_RETRIES 10
#define DEFAULT_TIMEOUT_MS 60000
#define DEFAULT_MAX_RETRY_AFTER_S 60
#define DEFAULT_PAGE_SIZE 500
#define DEFAULT_MAX_ITEMS 1000000

struct kiln_kube_client {
    kiln_kube_config *cfg;
    kiln_kube_transport tr;
    double qps;
    int burst;
    int max_retries;
    long timeout_ms;
    size_t max_body;
    long max_retry_after_s;
    char *user_agent;
    kiln_kube_clock clock;
    pthread_mutex_t mu; /* rl and metrics */
    kiln_kube_ratelimit rl;
    kiln_kube_metric metrics[KILN_KUBE_METRICS_MAX];
    size_t nmetrics;
};

static _Thread_local kiln_kube_status last_status = {0, "", -1};

/* "Impersonate-User: <user>" for the calling thread's requests, or "". */
static _Thread_local char impersonate_line[300];

int kiln_kube_impersonate(const char *user, kiln_err *err)
{
    if (!user || !*user) {
        impersonate_line[0] = '\0';
        return 0;
    }
    for (const char *p = user; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return kiln_err_set(err, KILN_EINVAL,
                                "impersonate: the user name has a control "
                                "character");
    int n = snprintf(impersonate_line, sizeof(impersonate_line), "Impersonate-User: %s", user);
    if (n < 0 || (size_t)n >= sizeof(impersonate_line)) {
        impersonate_line[0] = '\0';
        return kiln_err_set(err, KILN_EINVAL, "impersonate: user name too long");
    }
    return 0;
}

const kiln_kube_status *kiln_kube_last_status(void)
{
    return &last_status;
}

bool kiln_kube_last_expired(void)
{
    return last_status.http == 410 || strcmp(last_status.reason, "Expired") == 0 ||
           strcmp(last_status.reason, "Gone") == 0;
}

void kiln_kube_set_last_status(const kiln_kube_status *st)
{
    last_status = *st;
}

static void set_last(long http, const char *reason, long retry_after)
{
    last_status.http = (int)http;
    snprintf(last_status.reason, sizeof(last_status.reason), "%s", reason ? reason : "");
    last_status.retry_after_s = retry_after;
}

/* ------------------------------------------------------------------------ */
/* Rate limiting                                                              */

void kiln_kube_ratelimit_init(kiln_kube_ratelimit *rl, double qps, int burst)
{
    memset(rl, 0, sizeof(*rl));
    rl->qps = qps;
    rl->burst = burst > 0 ? burst : 1;
    rl->tokens = rl->burst;
}

int64_t kiln_kube_ratelimit_reserve(kiln_kube_ratelimit *rl, int64_t now_ms)
{
    if (rl->qps <= 0)
        return 0;
    if (!rl->started) {
        rl->started = true;
        rl->last_ms = now_ms;
    }
    if (now_ms > rl->last_ms) {
        rl->tokens += (double)(now_ms - rl->last_ms) * rl->qps / 1000.0;
        if (rl->tokens > rl->burst)
            rl->tokens = rl->burst;
        rl->last_ms = now_ms;
    }
    /* Like golang.org/x/time/rate's Reserve: the token is taken now and the
     * debt is paid by waiting, so concurrent callers queue up fairly. */
    rl->tokens -= 1.0;
    if (rl->tokens >= 0)
        return 0;
    double wait = -rl->tokens * 1000.0 / rl->qps;
    int64_t ms = (int64_t)wait;
    return (double)ms < wait ? ms + 1 : ms;
}

/* ------------------------------------------------------------------------ */
/* Client                                                                     */

int kiln_kube_client_new(kiln_kube_client **out, kiln_kube_config *cfg,
                         kiln_kube_transport transport, const kiln_kube_client_opts *opts,
                         kiln_err *err)
{
    kiln_kube_client_opts none = {0};
    *out = NULL;
    if (!opts)
        opts = &none;
    if (!cfg || !transport.ops || !transport.ops->request) {
        if (transport.ops && transport.ops->destroy)
            transport.ops->destroy(transport.ctx);
        kiln_kube_config_free(cfg);
        return kiln_err_set(err, KILN_EINVAL, "kube client: a config and a transport are needed");
    }
    kiln_kube_client *c = kiln_xcalloc(1, sizeof(*c));
    c->cfg = cfg;
    c->tr = transport;
    c->qps = opts->qps == 0 ? DEFAULT_QPS : opts->qps;
    c->burst = opts->burst > 0 ? opts->burst : DEFAULT_BURST;
    c->max_retries = opts->max_retries == 0  ? DEFAULT_MAX_RETRIES
                     : opts->max_retries < 0 ? 0
                                             : opts->max_retries;
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->max_body = opts->max_body ? opts->max_body : KILN_BUF_DEFAULT_LIMIT;
    c->max_retry_after_s =
        opts->max_retry_after_s > 0 ? opts->max_retry_after_s : DEFAULT_MAX_RETRY_AFTER_S;
    /* The part before the first '/' becomes the server's default field
     * manager for non-apply writes (apiserver handlers/create.go). */
    c->user_agent = opts->user_agent ? kiln_xstrdup(opts->user_agent)
                                     : kiln_xstrdup("kiln/" KILN_VERSION " (linux/" KILN_ARCH
                                                    ") kubernetes/unknown");
    c->clock = opts->clock;
    pthread_mutex_init(&c->mu, NULL);
    kiln_kube_ratelimit_init(&c->rl, c->qps, c->burst);
    *out = c;
    return 0;
}

void kiln_kube_client_free(kiln_kube_client *c)
{
    if (!c)
        return;
    if (c->tr.ops && c->tr.ops->destroy)
        c->tr.ops->destroy(c->tr.ctx);
    kiln_kube_config_free(c->cfg);
    kiln_xfree(c->user_agent);
    pthread_mutex_destroy(&c->mu);
    kiln_xfree(c);
}

const kiln_kube_config *kiln_kube_client_config(const kiln_kube_client *c)
{
    return c->cfg;
}

static int metric_cmp(const void *a, const void *b)
{
    const kiln_kube_metric *x = a, *y = b;
    int r = strcmp(x->method, y->method);
    return r ? r : strcmp(x->code, y->code);
}

static void count_request(kiln_kube_client *c, const char *method, long status)
{
    char code[8];
    if (status > 0)
        snprintf(code, sizeof(code), "%ld", status % 1000);
    else
        snprintf(code, sizeof(code), "<error>");
    pthread_mutex_lock(&c->mu);
    size_t i;
    for (i = 0; i < c->nmetrics; i++)
        if (strcmp(c->metrics[i].method, method) == 0 && strcmp(c->metrics[i].code, code) == 0)
            break;
    if (i == c->nmetrics && c->nmetrics < KILN_KUBE_METRICS_MAX) {
        snprintf(c->metrics[i].method, sizeof(c->metrics[i].method), "%s", method);
        snprintf(c->metrics[i].code, sizeof(c->metrics[i].code), "%s", code);
        c->metrics[i].count = 0;
        c->nmetrics++;
        qsort(c->metrics, c->nmetrics, sizeof(c->metrics[0]), metric_cmp);
        for (i = 0; i < c->nmetrics; i++)
            if (strcmp(c->metrics[i].method, method) == 0 && strcmp(c->metrics[i].code, code) == 0)
                break;
    }
    /* 64 (method, code) pairs cover every answer a server gives in practice;
     * beyond that new pairs are not counted rather than grow the table. */
    if (i < c->nmetrics)
        c->metrics[i].count++;
    pthread_mutex_unlock(&c->mu);
}

size_t kiln_kube_client_metrics(const kiln_kube_client *c, kiln_kube_metric *out, size_t cap)
{
    kiln_kube_client *m = (kiln_kube_client *)c;
    pthread_mutex_lock(&m->mu);
    size_t n = m->nmetrics;
    for (size_t i = 0; i < n && i < cap; i++)
        out[i] = m->metrics[i];
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Paths                                                                      */

static int put_segment(kiln_buf *out, const char *what, const char *s, kiln_err *err)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!s || !*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strchr(s, '/'))
        return kiln_err_set(err, KILN_EINVAL, "invalid %s \"%s\" in request path", what,
                            s ? s : "");
    int rc = kiln_buf_puts(out, "/", err);
    for (const unsigned char *p = (const unsigned char *)s; !rc && *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~:@", *p)) {
            rc = kiln_buf_append(out, p, 1, err);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = kiln_buf_append(out, e, 3, err);
        }
    }
    return rc;
}

int kiln_kube_path(kiln_buf *out, const kiln_kube_ref *ref, kiln_err *err)
{
    int rc;
    bool core = !ref->group || !*ref->group;
    if (core) {
        rc = kiln_buf_puts(out, "/api", err);
    } else {
        rc = kiln_buf_puts(out, "/apis", err);
        if (!rc)
            rc = put_segment(out, "group", ref->group, err);
    }
    if (!rc)
        rc = put_segment(out, "version", ref->version, err);
    if (!rc && ref->namespace && *ref->namespace) {
        rc = kiln_buf_puts(out, "/namespaces", err);
        if (!rc)
            rc = put_segment(out, "namespace", ref->namespace, err);
    }
    if (!rc)
        rc = put_segment(out, "resource", ref->resource, err);
    if (!rc && ref->name && *ref->name)
        rc = put_segment(out, "name", ref->name, err);
    if (!rc && ref->subresource && *ref->subresource) {
        if (!ref->name || !*ref->name)
            return kiln_err_set(err, KILN_EINVAL, "subresource \"%s\" needs an object name",
                                ref->subresource);
        rc = put_segment(out, "subresource", ref->subresource, err);
    }
    return rc;
}

/* Appends "?k=v" or "&k=v" with v percent-encoded. */
static int add_query(kiln_buf *out, const char *key, const char *value, kiln_err *err)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = kiln_buf_printf(out, err, "%c%s=", strchr(out->data ? out->data : "", '?') ? '&' : '?',
                             key);
    for (const unsigned char *p = (const unsigned char *)value; !rc && *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p)) {
            rc = kiln_buf_append(out, p, 1, err);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = kiln_buf_append(out, e, 3, err);
        }
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                     */

static int code_for(long http)
{
    switch (http) {
    case 404:
        return KILN_ENOTFOUND;
    case 409:
    case 410: /* resourceVersion too old: the caller relists (API conventions) */
        return KILN_ECONFLICT;
    case 413:
        return KILN_ELIMIT;
    case 504:
        return KILN_ETIMEOUT;
    case 401:
    case 403:
    case 429:
        return KILN_EIO;
    }
    if (http >= 400 && http < 500)
        return KILN_EINVAL;
    return KILN_EIO;
}

int kiln_kube_status_error(kiln_kube_status *st, long http, const char *body, size_t len,
                           const char *what, kiln_err *err)
{
    json_t *doc = NULL;
    int code = code_for(http);
    const char *reason = "";
    if (body && len && kiln_json_load(&doc, body, len, NULL) != 0)
        doc = NULL;
    const char *kind = kiln_json_get_string(doc, "kind");
    if (st) {
        st->http = (int)http;
        st->reason[0] = '\0';
    }
    if (doc && kind && strcmp(kind, "Status") == 0) {
        const char *msg = kiln_json_get_string(doc, "message");
        reason = kiln_json_get_string(doc, "reason");
        if (!reason)
            reason = "";
        if (st)
            snprintf(st->reason, sizeof(st->reason), "%s", reason);
        char text[KILN_ERR_MSG_MAX * 2];
        size_t n = (size_t)snprintf(text, sizeof(text), "%s",
                                    msg && *msg ? msg
                                    : *reason   ? reason
                                                : "request failed");
        /* 422 Invalid lists each field problem in details.causes; the
         * top-level message usually repeats them, so only add what is new. */
        json_t *causes = kiln_json_get_path(doc, "details.causes");
        size_t i;
        json_t *cause;
        json_array_foreach(causes, i, cause)
        {
            const char *cm = kiln_json_get_string(cause, "message");
            const char *cf = kiln_json_get_string(cause, "field");
            if (!cm || strstr(text, cm) || n >= sizeof(text) - 1)
                continue;
            n += (size_t)snprintf(text + n, sizeof(text) - n, "; %s%s%s", cf ? cf : "",
                                  cf ? ": " : "", cm);
        }
        kiln_err_set(err, code, "%s", text);
    } else {
        /* Proxies and load balancers answer with bodies that are not a
         * Status: fall back to the HTTP code. */
        kiln_err_set(err, code, "%s: HTTP %ld", what ? what : "request", http);
    }
    json_decref(doc);
    return code;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                   */

typedef struct call {
    const char *method;
    const char *path;
    const char *content_type;
    const char *body;
    size_t body_len;
    kiln_kube_data_fn on_data;
    void *on_data_ctx;
    const atomic_int *cancel;
    long timeout_ms;        /* 0: the client's default for non-streaming calls */
    const char *accept;     /* NULL: application/json */
    char *content_type_out; /* NULL, or 128 bytes for the answer's Content-Type */
} call;

static void throttle(kiln_kube_client *c)
{
    pthread_mutex_lock(&c->mu);
    int64_t wait = kiln_kube_ratelimit_reserve(&c->rl, kiln_kube_clock_mono_ms(&c->clock));
    pthread_mutex_unlock(&c->mu);
    if (wait > 0)
        kiln_kube_clock_sleep_ms(&c->clock, wait);
}

/* Sends one call with retries; on a 2xx answer *out (when not NULL) gets the
 * parsed body (NULL for an empty body). */
static int perform(json_t **out, kiln_kube_client *c, const call *k, kiln_err *err)
{
    char *url = kiln_xasprintf("%s%s", c->cfg->server, k->path);
    char what[160];
    kiln_kube_response resp;
    kiln_kube_credentials creds = {0};
    bool reauthed = false;
    int retries = 0;
    int rc = 0;
    snprintf(what, sizeof(what), "%s %.*s", k->method, 140, k->path);
    kiln_buf_init(&resp.body, c->max_body);
    if (out)
        *out = NULL;
    set_last(0, "", -1);
    /* A thread impersonating replaces the config's own impersonation: the
     * API server does not chain them. */
    const char *thread_headers[2] = {impersonate_line, NULL};
    for (;;) {
        throttle(c);
        kiln_kube_credentials_clear(&creds);
        if ((rc = kiln_kube_config_credentials(&creds, c->cfg, err)))
            goto out;
        kiln_kube_request req = {
            .method = k->method,
            .url = url,
            .accept = k->accept ? k->accept : "application/json",
            .content_type = k->content_type,
            .body = k->body,
            .body_len = k->body_len,
            .user_agent = c->user_agent,
            .creds = &creds,
            .timeout_ms = k->timeout_ms ? k->timeout_ms
                          : k->on_data  ? 0
                                        : c->timeout_ms,
            .on_data = k->on_data,
            .on_data_ctx = k->on_data_ctx,
            .cancel = k->cancel,
            .headers =
                impersonate_line[0] ? thread_headers : (const char *const *)c->cfg->impersonate,
        };
        int64_t started = kiln_kube_clock_mono_ms(&c->clock);
        kiln_buf_reset(&resp.body);
        resp.status = 0;
        resp.content_type[0] = '\0';
        resp.retry_after_s = -1;
        rc = c->tr.ops->request(c->tr.ctx, &req, &resp, err);
        count_request(c, k->method, rc ? 0 : resp.status);
        if (rc) {
            set_last(0, "", -1);
            goto out;
        }
        set_last(resp.status, "", resp.retry_after_s);
        /* A cancelled stream ends normally; a cancelled request has no
         * answer to give. */
        if (k->cancel && atomic_load(k->cancel)) {
            if (!k->on_data)
                rc = kiln_err_set(err, KILN_ETIMEOUT, "%s: cancelled", what);
            goto out;
        }
        /* 401: the token may have rotated or the exec credential expired;
         * fetch a fresh one and try once more (client-go token_source.go,
         * exec.go maybeRefreshCreds). */
        if (resp.status == 401 && !reauthed && kiln_kube_config_invalidate(c->cfg, started)) {
            reauthed = true;
            continue;
        }
        /* client-go retries only 429 and 5xx answers that say when to come
         * back (rest/with_retry.go), at most 10 times. */
        if ((resp.status == 429 || resp.status >= 500) && resp.retry_after_s >= 0 &&
            retries < c->max_retries) {
            long s = resp.retry_after_s;
            if (s > c->max_retry_after_s)
                s = c->max_retry_after_s;
            retries++;
            KILN_LOG(KILN_LOG_DEBUG, "%s: HTTP %ld, retrying in %ld s (%d/%d)", what, resp.status,
                     s, retries, c->max_retries);
            /* In slices, so a stop request does not wait out a long
             * Retry-After. */
            int64_t slice = k->cancel ? 200 : (int64_t)s * 1000;
            for (int64_t left = (int64_t)s * 1000; left > 0; left -= slice) {
                if (k->cancel && atomic_load(k->cancel))
                    break;
                kiln_kube_clock_sleep_ms(&c->clock, left < slice ? left : slice);
            }
            continue;
        }
        break;
    }
    if (resp.status < 200 || resp.status > 299) {
        kiln_kube_status st;
        rc = kiln_kube_status_error(&st, resp.status, resp.body.data, resp.body.len, what, err);
        set_last(resp.status, st.reason, resp.retry_after_s);
        goto out;
    }
    if (k->content_type_out)
        snprintf(k->content_type_out, 128, "%s", resp.content_type);
    if (out && resp.body.len) {
        if ((rc = kiln_json_load(out, resp.body.data, resp.body.len, err)))
            kiln_err_prefix(err, "%s: response body", what);
    }
out:
    kiln_kube_credentials_clear(&creds);
    kiln_buf_free(&resp.body);
    kiln_xfree(url);
    return rc;
}

int kiln_kube_do_accept(json_t **out, char content_type[128], kiln_kube_client *c, const char *path,
                        const char *accept, kiln_err *err)
{
    call k = {"GET", path, NULL, NULL, 0, NULL, NULL, NULL, 0, accept, content_type};
    content_type[0] = '\0';
    return perform(out, c, &k, err);
}

static int get_cancellable(json_t **out, kiln_kube_client *c, const char *path,
                           const atomic_int *cancel, kiln_err *err)
{
    call k = {"GET", path, NULL, NULL, 0, NULL, NULL, cancel, 0, NULL, NULL};
    return perform(out, c, &k, err);
}

int kiln_kube_do(json_t **out, kiln_kube_client *c, const char *method, const char *path,
                 const char *content_type, const char *body, size_t body_len, kiln_err *err)
{
    call k = {method, path, content_type, body, body_len, NULL, NULL, NULL, 0, NULL, NULL};
    return perform(out, c, &k, err);
}

int kiln_kube_stream(kiln_kube_client *c, const char *path, long timeout_ms,
                     kiln_kube_data_fn on_data, void *ctx, const atomic_int *cancel, kiln_err *err)
{
    call k = {"GET", path, NULL, NULL, 0, on_data, ctx, cancel, timeout_ms, NULL, NULL};
    return perform(NULL, c, &k, err);
}

static int body_of(kiln_buf *b, const json_t *obj, kiln_err *err)
{
    if (!obj)
        return kiln_err_set(err, KILN_EINVAL, "no object to send");
    return kiln_json_dump(b, obj, 0, err);
}

static int write_query(kiln_buf *p, const kiln_kube_write_opts *w, bool apply, kiln_err *err)
{
    int rc = 0;
    if (!w)
        return apply ? kiln_err_set(err, KILN_EINVAL, "fieldManager is required for apply") : 0;
    /* apiserver validation: fieldManager is required for apply and force is
     * only allowed there (AM meta/v1/validation). Checked here so the
     * message names the caller's mistake. */
    if (apply && (!w->field_manager || !*w->field_manager))
        return kiln_err_set(err, KILN_EINVAL, "fieldManager is required for apply");
    if (!apply && w->force)
        return kiln_err_set(err, KILN_EINVAL, "force is only allowed with server-side apply");
    if (w->field_manager && *w->field_manager)
        rc = add_query(p, "fieldManager", w->field_manager, err);
    if (!rc && w->force)
        rc = add_query(p, "force", "true", err);
    if (!rc && w->dry_run)
        rc = add_query(p, "dryRun", "All", err);
    if (!rc && w->field_validation)
        rc = add_query(p, "fieldValidation", w->field_validation, err);
    return rc;
}

static int write_verb(json_t **out, kiln_kube_client *c, const char *method,
                      const kiln_kube_ref *ref, const char *ctype, const json_t *obj,
                      const kiln_kube_write_opts *w, bool apply, kiln_err *err)
{
    kiln_buf path, body;
    int rc;
    kiln_buf_init(&path, 0);
    kiln_buf_init(&body, c->max_body);
    if (out)
        *out = NULL;
    if ((rc = kiln_kube_path(&path, ref, err)) || (rc = write_query(&path, w, apply, err)) ||
        (rc = body_of(&body, obj, err)))
        goto out;
    call k = {method, path.data, ctype, body.data, body.len, NULL, NULL, NULL, 0, NULL, NULL};
    rc = perform(out, c, &k, err);
out:
    kiln_buf_free(&path);
    kiln_buf_free(&body);
    return rc;
}

int kiln_kube_get(json_t **out, kiln_kube_client *c, const kiln_kube_ref *ref, kiln_err *err)
{
    kiln_buf path;
    int rc;
    kiln_buf_init(&path, 0);
    *out = NULL;
    if (!ref->name || !*ref->name)
        rc = kiln_err_set(err, KILN_EINVAL, "get needs an object name (use list)");
    else if (!(rc = kiln_kube_path(&path, ref, err)))
        rc = kiln_kube_do(out, c, "GET", path.data, NULL, NULL, 0, err);
    kiln_buf_free(&path);
    return rc;
}

int kiln_kube_list(json_t **out, kiln_kube_client *c, const kiln_kube_ref *ref,
                   const kiln_kube_list_opts *opts, kiln_err *err)
{
    kiln_kube_list_opts none = {0};
    kiln_kube_ref coll = *ref;
    kiln_buf path;
    json_t *result = NULL, *page = NULL;
    char *cont = NULL;
    int rc = 0;
    char limit[32];
    if (!opts)
        opts = &none;
    *out = NULL;
    coll.name = NULL;
    coll.subresource = NULL;
    snprintf(limit, sizeof(limit), "%ld", opts->limit > 0 ? opts->limit : DEFAULT_PAGE_SIZE);
    kiln_buf_init(&path, 0);
    for (;;) {
        kiln_buf_reset(&path);
        if ((rc = kiln_kube_path(&path, &coll, err)))
            goto out;
        if (!rc && opts->label_selector && *opts->label_selector)
            rc = add_query(&path, "labelSelector", opts->label_selector, err);
        if (!rc && opts->field_selector && *opts->field_selector)
            rc = add_query(&path, "fieldSelector", opts->field_selector, err);
        if (!rc)
            rc = add_query(&path, "limit", limit, err);
        /* Later pages carry only continue: a resourceVersion next to a
         * continue token is a 400 (API concepts, tools/pager). */
        if (!rc && cont)
            rc = add_query(&path, "continue", cont, err);
        if (!rc && !cont && opts->resource_version)
            rc = add_query(&path, "resourceVersion", opts->resource_version, err);
        if (!rc && !cont && opts->resource_version_match)
            rc = add_query(&path, "resourceVersionMatch", opts->resource_version_match, err);
        if (rc || (rc = get_cancellable(&page, c, path.data, opts->cancel, err)))
            goto out;
        json_t *items = json_object_get(page, "items");
        if (!json_is_object(page) || (items && !json_is_array(items) && !json_is_null(items))) {
            rc = kiln_err_set(err, KILN_EINVAL, "GET %s: response is not a list", path.data);
            goto out;
        }
        if (!result) {
            /* Only the envelope is copied; items are shared references. */
            result = json_object();
            const char *lk = kiln_json_get_string(page, "kind");
            const char *la = kiln_json_get_string(page, "apiVersion");
            const char *rv = kiln_json_get_string(page, "metadata.resourceVersion");
            if (lk)
                json_object_set_new(result, "kind", json_string(lk));
            if (la)
                json_object_set_new(result, "apiVersion", json_string(la));
            json_t *md = json_object();
            if (rv)
                json_object_set_new(md, "resourceVersion", json_string(rv));
            json_object_set_new(result, "metadata", md);
            json_object_set_new(result, "items", json_array());
        }
        /* Each page is bounded by max_body; the whole list by its items. */
        size_t max_items = opts->max_items ? opts->max_items : DEFAULT_MAX_ITEMS;
        json_t *all = json_object_get(result, "items");
        if (json_array_size(all) + json_array_size(items) > max_items) {
            rc = kiln_err_set(err, KILN_ELIMIT, "list of %s: more than %zu items", coll.resource,
                              max_items);
            goto out;
        }
        if (items)
            json_array_extend(all, items);
        const char *next = kiln_json_get_string(page, "metadata.continue");
        kiln_xfree(cont);
        cont = next && *next ? kiln_xstrdup(next) : NULL;
        json_decref(page);
        page = NULL;
        if (!cont)
            break;
    }
    *out = result;
    result = NULL;
out:
    json_decref(result);
    json_decref(page);
    kiln_xfree(cont);
    kiln_buf_free(&path);
    return rc;
}

int kiln_kube_create(json_t **out, kiln_kube_client *c, const kiln_kube_ref *ref, const json_t *obj,
                     const kiln_kube_write_opts *w, kiln_err *err)
{
    kiln_kube_ref coll = *ref;
    coll.name = NULL;
    coll.subresource = NULL;
    return write_verb(out, c, "POST", &coll, "application/json", obj, w, false, err);
}

int kiln_kube_update(json_t **out, kiln_kube_client *c, const kiln_kube_ref *ref, const json_t *obj,
                     const kiln_kube_write_opts *w, kiln_err *err)
{
    if (!ref->name || !*ref->name) {
        if (out)
            *out = NULL;
        return kiln_err_set(err, KILN_EINVAL, "update needs an object name");
    }
    return write_verb(out, c, "PUT", ref, "application/json", obj, w, false, err);
}

int kiln_kube_patch(json_t **out, kiln_kube_client *c, const kiln_kube_ref *ref,
                    kiln_kube_patch_type type, const json_t *patch, const kiln_kube_write_opts *w,
                    kiln_err *err)
{
    static const char *const types[] = {
        [KILN_KUBE_PATCH_MERGE] = "application/merge-patch+json",
        [KILN_KUBE_PATCH_JSON] = "application/json-patch+json",
        [KILN_KUBE_PATCH_APPLY] = "application/apply-patch+yaml",
    };
    if (out)
        *out = NULL;
    if ((unsigned)type > KILN_KUBE_PATCH_APPLY)
        return kiln_err_set(err, KILN_EINVAL, "unknown patch type %d", (int)type);
    if (!ref->name || !*ref->name)
        return kiln_err_set(err, KILN_EINVAL, "patch needs an object name");
    if (type == KILN_KUBE_PATCH_JSON && !json_is_array(patch))
        return kiln_err_set(err, KILN_EINVAL, "a JSON patch is a list of operations, got %s",
                            kiln_json_type_name(patch));
    if (type != KILN_KUBE_PATCH_JSON && !json_is_object(patch))
        return kiln_err_set(err, KILN_EINVAL, "a %s patch is an object, got %s",
                            type == KILN_KUBE_PATCH_APPLY ? "server-side apply" : "merge",
                            kiln_json_type_name(patch));
    /* Apply bodies are YAML on the wire, and JSON is YAML. */
    return write_verb(out, c, "PATCH", ref, types[type], patch, w, type == KILN_KUBE_PATCH_APPLY,
                      err);
}

int kiln_kube_apply(json_t **out, kiln_kube_client *c, const kiln_kube_ref *ref, const json_t *obj,
                    const char *field_manager, bool force, kiln_err *err)
{
    kiln_kube_write_opts w = {.field_manager = field_manager, .force = force};
    return kiln_kube_patch(out, c, ref, KILN_KUBE_PATCH_APPLY, obj, &w, err);
}

int kiln_kube_delete(json_t **out, kiln_kube_client *c, const kiln_kube_ref *ref,
                     const kiln_kube_delete_opts *opts, kiln_err *err)
{
    kiln_kube_delete_opts none = {0};
    kiln_buf path, body;
    json_t *doc = NULL, *res = NULL;
    int rc;
    if (!opts)
        opts = &none;
    if (out)
        *out = NULL;
    kiln_buf_init(&path, 0);
    kiln_buf_init(&body, 0);
    if (!ref->name || !*ref->name) {
        rc = kiln_err_set(err, KILN_EINVAL, "delete needs an object name");
        goto out;
    }
    if ((rc = kiln_kube_path(&path, ref, err)))
        goto out;
    /* Options travel in the body: preconditions cannot be query parameters,
     * and the server never merges body and query (handlers/delete.go). */
    doc = json_pack("{s:s, s:s}", "kind", "DeleteOptions", "apiVersion", "v1");
    if (opts->propagation_policy)
        json_object_set_new(doc, "propagationPolicy", json_string(opts->propagation_policy));
    if (opts->set_grace_period)
        json_object_set_new(doc, "gracePeriodSeconds", json_integer(opts->grace_period_s));
    if (opts->precondition_uid || opts->precondition_resource_version) {
        json_t *pre = json_object();
        if (opts->precondition_uid)
            json_object_set_new(pre, "uid", json_string(opts->precondition_uid));
        if (opts->precondition_resource_version)
            json_object_set_new(pre, "resourceVersion",
                                json_string(opts->precondition_resource_version));
        json_object_set_new(doc, "preconditions", pre);
    }
    if (opts->dry_run)
        json_object_set_new(doc, "dryRun", json_pack("[s]", "All"));
    if ((rc = kiln_json_dump(&body, doc, 0, err)))
        goto out;
    rc = kiln_kube_do(out ? &res : NULL, c, "DELETE", path.data, "application/json", body.data,
                      body.len, err);
    if (!rc && out) {
        *out = res;
        res = NULL;
    }
out:
    json_decref(doc);
    json_decref(res);
    kiln_buf_free(&path);
    kiln_buf_free(&body);
    return rc;
}
