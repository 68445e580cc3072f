/* devcluster/watch.c: watch streams.
 *
 * Wire format as kube-apiserver's JSON watch: one {"type":..,"object":..}
 * per line, ADDED/MODIFIED/DELETED/BOOKMARK/ERROR (see API concepts, "Efficient
 * detection of changes"). With selectors an object that stops matching arrives
 * as DELETED and one that starts matching as ADDED, as the watch cache does, or
 * selector-based informers go stale. A watcher whose client does not read has
 * its queue bounded; past the bound the stream ends and the client re-watches,
 * as the real server terminates slow watchers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "devcluster/internal.h"

/* A watcher may fall this far behind (events, bytes) before its stream ends. */
#define QUEUE_MAX 100000
#define QUEUE_MAX_BYTES ((size_t)64 << 20)

static void queue_push(kiln_dc_watcher *w, kiln_dc_event *ev)
{
    if (w->ended)
        return;
    size_t bytes = strlen(ev->obj) + (ev->prev ? strlen(ev->prev) : 0);
    if (w->qlen >= QUEUE_MAX || w->qbytes + bytes > QUEUE_MAX_BYTES) {
        w->ended = true;
        return;
    }
    if (w->qlen == w->qcap) {
        size_t ncap = w->qcap ? w->qcap * 2 : 16;
        kiln_dc_event **q = kiln_xmalloc(ncap * sizeof *q);
        for (size_t i = 0; i < w->qlen; i++)
            q[i] = w->queue[(w->qhead + i) % w->qcap];
        kiln_xfree(w->queue);
        w->queue = q;
        w->qcap = ncap;
        w->qhead = 0;
    }
    ev->refs++;
    w->queue[(w->qhead + w->qlen) % w->qcap] = ev;
    w->qlen++;
    w->qbytes += bytes;
}

static kiln_dc_event *event_copy(const kiln_dc_event *ev, kiln_dc_evtype type, const char *obj)
{
    kiln_dc_event *c = kiln_xcalloc(1, sizeof *c);
    c->refs = 1;
    c->rv = ev->rv;
    c->type = type;
    c->res = ev->res;
    c->key = kiln_xstrdup(ev->key);
    c->obj = kiln_xstrdup(obj);
    return c;
}

static bool key_ns_match(const kiln_dc_watcher *w, const char *key, char *ns, size_t nsn,
                         const char **name)
{
    kiln_dc_key_split(key, ns, nsn, name);
    return !w->ns || !strcmp(w->ns, ns);
}

static bool obj_match(const kiln_dc_watcher *w, const char *text, const char *ns, const char *name,
                      json_t **cache)
{
    bool decided = false;
    if (!kiln_dc_fields_match_key(&w->fields, ns, name, &decided))
        return false;
    if (decided && kiln_dc_selector_empty(&w->labels))
        return true;
    if (!*cache)
        *cache = json_loads(text, 0, NULL);
    if (!*cache)
        return false;
    return kiln_dc_labels_match(&w->labels, *cache) && kiln_dc_fields_match(&w->fields, *cache);
}

/* Queues ev for w when it passes w's filters; newj/prevj are parse caches. */
static void deliver(kiln_dc_watcher *w, kiln_dc_event *ev, json_t **newj, json_t **prevj)
{
    char ns[256];
    const char *name;
    if (w->res != ev->res || !key_ns_match(w, ev->key, ns, sizeof ns, &name))
        return;
    bool now = obj_match(w, ev->obj, ns, name, newj);
    if (ev->type != KILN_DC_MODIFIED || !ev->prev) {
        if (now)
            queue_push(w, ev);
        return;
    }
    bool before = obj_match(w, ev->prev, ns, name, prevj);
    if (now && before) {
        queue_push(w, ev);
    } else if (now || before) {
        kiln_dc_event *c = event_copy(ev, now ? KILN_DC_ADDED : KILN_DC_DELETED, ev->obj);
        queue_push(w, c);
        kiln_dc_event_unref(c);
    }
}

void kiln_dc_watch_publish(kiln_devcluster *dc, kiln_dc_event *ev)
{
    json_t *newj = NULL, *prevj = NULL;
    for (kiln_dc_watcher *w = dc->watchers; w; w = w->next) {
        size_t before = w->qlen;
        deliver(w, ev, &newj, &prevj);
        /* Wake only a sleeping reader: a busy one drains the queue anyway,
         * and a wake-up per event per watcher costs more than the event. */
        if (w->waiting && (w->qlen != before || w->ended))
            pthread_cond_signal(&w->cond);
    }
    json_decref(newj);
    json_decref(prevj);
}

void kiln_dc_watch_drop_all(kiln_devcluster *dc)
{
    for (kiln_dc_watcher *w = dc->watchers; w; w = w->next) {
        w->ended = true;
        pthread_cond_signal(&w->cond);
    }
}

static bool flag(const char *query, const char *name)
{
    char *v = kiln_dc_query_get(query, name);
    bool on = kiln_dc_parse_bool(v);
    kiln_xfree(v);
    return on;
}

static void append_error(kiln_dc_watcher *w, int code, const char *reason, const char *msg)
{
    json_t *st = json_pack("{s:s,s:{s:s,s:s,s:{},s:s,s:s,s:s,s:i}}", "type", "ERROR", "object",
                           "kind", "Status", "apiVersion", "v1", "metadata", "status", "Failure",
                           "message", msg, "reason", reason, "code", code);
    char *s = kiln_dc_dump(st);
    kiln_buf_puts(&w->out, s, NULL);
    kiln_buf_puts(&w->out, "\n", NULL);
    free(s);
    json_decref(st);
    w->ended = true;
}

void kiln_dc_watch_start(kiln_devcluster *dc, kiln_dc_resource *r, const char *ns,
                         const kiln_devcluster_request *req, kiln_devcluster_response *resp)
{
    kiln_err err = {0};
    char *rvs = kiln_dc_query_get(req->query, "resourceVersion");
    char *ls = kiln_dc_query_get(req->query, "labelSelector");
    char *fs = kiln_dc_query_get(req->query, "fieldSelector");
    char *ts = kiln_dc_query_get(req->query, "timeoutSeconds");
    char *rvm = kiln_dc_query_get(req->query, "resourceVersionMatch");
    bool initial = flag(req->query, "sendInitialEvents");
    kiln_dc_watcher *w = kiln_xcalloc(1, sizeof *w);
    pthread_cond_init(&w->cond, NULL);
    kiln_buf_init(&w->out, (size_t)256 << 20);
    w->res = r;
    w->ns = ns ? kiln_xstrdup(ns) : NULL;
    if (kiln_dc_selector_parse(&w->labels, ls, false, &err) < 0 ||
        kiln_dc_selector_parse(&w->fields, fs, true, &err) < 0 ||
        kiln_dc_fields_check(&w->fields, r, &err) < 0) {
        kiln_dc_status(resp, 400, "BadRequest", NULL, "unable to parse requirement: %s", err.msg);
        goto fail;
    }
    /* sendInitialEvents needs resourceVersionMatch=NotOlderThan (API concepts,
     * "Streaming lists"); resourceVersionMatch alone is forbidden on watch. */
    if (initial && (!rvm || strcmp(rvm, "NotOlderThan"))) {
        kiln_dc_status(resp, 422, "Invalid", NULL,
                       "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: "
                       "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan");
        goto fail;
    }
    if (!initial && rvm && *rvm) {
        kiln_dc_status(resp, 422, "Invalid", NULL,
                       "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: "
                       "resourceVersionMatch is forbidden for watch unless sendInitialEvents is "
                       "provided");
        goto fail;
    }
    uint64_t from = 0;
    bool has_rv = rvs && *rvs && strcmp(rvs, "0");
    if (has_rv) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(rvs, &end, 10);
        if (errno || !end || *end) {
            kiln_dc_status(resp, 400, "BadRequest", NULL, "invalid resource version: %s", rvs);
            goto fail;
        }
        from = v;
    }
    w->as_table = kiln_dc_wants_table(req->accept);
    w->bookmarks = flag(req->query, "allowWatchBookmarks");
    int64_t now = kiln_dc_now_ms();
    long timeout = ts ? strtol(ts, NULL, 10) : 0;
    /* No timeoutSeconds: kube-apiserver uses min-request-timeout (1800 s) x [1,2). */
    if (timeout <= 0)
        timeout = 1800 + rand() % 1800;
    w->deadline_ms = now + timeout * 1000;
    w->next_bookmark_ms = now + (dc->opts.bookmark_ms > 0 ? dc->opts.bookmark_ms : 60000);
    w->last_rv = dc->rv;

    if (dc->expire_next_watch) {
        dc->expire_next_watch = false;
        char msg[96];
        snprintf(msg, sizeof msg, "too old resource version: %s (%llu)", rvs ? rvs : "",
                 (unsigned long long)dc->rv);
        append_error(w, 410, "Expired", msg);
    } else if (has_rv && !initial) {
        /* Events after `from` must all still be in the history; otherwise the
         * client relists (410 Expired, API concepts). */
        if (from < dc->compacted_rv) {
            char msg[96];
            snprintf(msg, sizeof msg, "too old resource version: %llu (%llu)",
                     (unsigned long long)from, (unsigned long long)dc->compacted_rv + 1);
            append_error(w, 410, "Expired", msg);
        } else {
            for (size_t i = 0; i < dc->hlen; i++) {
                kiln_dc_event *ev = dc->hist[(dc->hhead + i) % dc->hcap];
                if (ev->rv <= from)
                    continue;
                json_t *a = NULL, *b = NULL;
                deliver(w, ev, &a, &b);
                json_decref(a);
                json_decref(b);
            }
        }
    } else {
        /* RV unset or "0": synthetic ADDED for every current object first. */
        size_t n = 0;
        kiln_dc_object **objs = kiln_dc_store_sorted(r, &n);
        for (size_t i = 0; i < n; i++) {
            kiln_dc_event tmp = {.rv = objs[i]->rv,
                                 .type = KILN_DC_ADDED,
                                 .res = r,
                                 .key = objs[i]->key,
                                 .obj = objs[i]->json};
            json_t *a = NULL, *b = NULL;
            char nsb[256];
            const char *name;
            if (key_ns_match(w, tmp.key, nsb, sizeof nsb, &name) &&
                obj_match(w, tmp.obj, nsb, name, &a)) {
                kiln_dc_event *c = event_copy(&tmp, KILN_DC_ADDED, tmp.obj);
                queue_push(w, c);
                kiln_dc_event_unref(c);
            }
            json_decref(a);
            json_decref(b);
        }
        kiln_xfree(objs);
        if (initial) {
            w->initial_end = true;
            w->initial_rv = dc->rv;
        }
    }
    w->next = dc->watchers;
    dc->watchers = w;
    dc->nwatchers++;
    resp->status = 200;
    snprintf(resp->content_type, sizeof resp->content_type, "application/json");
    resp->watch = w;
    goto done;
fail:
    kiln_dc_selector_free(&w->labels);
    kiln_dc_selector_free(&w->fields);
    kiln_buf_free(&w->out);
    pthread_cond_destroy(&w->cond);
    kiln_xfree(w->ns);
    kiln_xfree(w);
done:
    kiln_xfree(rvs);
    kiln_xfree(ls);
    kiln_xfree(fs);
    kiln_xfree(ts);
    kiln_xfree(rvm);
}

static const char *type_name(kiln_dc_evtype t)
{
    return t == KILN_DC_ADDED ? "ADDED" : t == KILN_DC_MODIFIED ? "MODIFIED" : "DELETED";
}

static void format_event(kiln_dc_watcher *w, kiln_dc_event *ev)
{
    if (w->as_table && ev->res) {
        json_t *obj = json_loads(ev->obj, 0, NULL);
        json_t *arr = json_array();
        if (obj)
            json_array_append_new(arr, obj);
        json_t *t = kiln_dc_table_new(ev->res, arr, !w->table_header_sent, NULL);
        w->table_header_sent = true;
        json_t *line = json_pack("{s:s,s:o}", "type", type_name(ev->type), "object", t);
        char *s = kiln_dc_dump(line);
        kiln_buf_puts(&w->out, s, NULL);
        free(s);
        json_decref(line);
        json_decref(arr);
    } else {
        kiln_buf_printf(&w->out, NULL, "{\"type\":\"%s\",\"object\":", type_name(ev->type));
        kiln_buf_puts(&w->out, ev->obj, NULL);
        kiln_buf_puts(&w->out, "}", NULL);
    }
    kiln_buf_puts(&w->out, "\n", NULL);
    if (ev->rv > w->last_rv)
        w->last_rv = ev->rv;
}

static void format_bookmark(kiln_devcluster *dc, kiln_dc_watcher *w, bool initial_end)
{
    char av[128];
    kiln_dc_api_version(w->res, av, sizeof av);
    char rv[24];
    snprintf(rv, sizeof rv, "%llu", (unsigned long long)(initial_end ? w->initial_rv : dc->rv));
    json_t *md = json_pack("{s:s}", "resourceVersion", rv);
    if (initial_end)
        json_object_set_new(md, "annotations",
                            json_pack("{s:s}", "k8s.io/initial-events-end", "true"));
    json_t *b = json_pack("{s:s,s:{s:s,s:s,s:o}}", "type", "BOOKMARK", "object", "kind",
                          w->res->kind, "apiVersion", av, "metadata", md);
    char *s = kiln_dc_dump(b);
    kiln_buf_puts(&w->out, s, NULL);
    kiln_buf_puts(&w->out, "\n", NULL);
    free(s);
    json_decref(b);
}

long kiln_devcluster_watch_read(kiln_devcluster *dc, void *watch, char *out, size_t max,
                                int wait_ms)
{
    kiln_dc_watcher *w = watch;
    long rc = 0;
    pthread_mutex_lock(&dc->mu);
    int64_t give_up = kiln_dc_now_ms() + wait_ms;
    for (;;) {
        if (w->out_off < w->out.len) {
            size_t n = w->out.len - w->out_off;
            if (n > max)
                n = max;
            memcpy(out, w->out.data + w->out_off, n);
            w->out_off += n;
            if (w->out_off == w->out.len) {
                kiln_buf_reset(&w->out);
                w->out_off = 0;
            }
            rc = (long)n;
            break;
        }
        if (w->qlen > 0 && w->res) {
            /* Format a batch; 64 KiB keeps one read from starving others. */
            while (w->qlen > 0 && w->out.len < 65536) {
                kiln_dc_event *ev = w->queue[w->qhead];
                w->qhead = (w->qhead + 1) % w->qcap;
                w->qlen--;
                size_t bytes = strlen(ev->obj) + (ev->prev ? strlen(ev->prev) : 0);
                w->qbytes = w->qbytes > bytes ? w->qbytes - bytes : 0;
                format_event(w, ev);
                kiln_dc_event_unref(ev);
            }
            continue;
        }
        if (w->initial_end) {
            w->initial_end = false;
            format_bookmark(dc, w, true);
            continue;
        }
        if (w->ended || dc->stopping || !w->res) {
            rc = -1;
            break;
        }
        int64_t now = kiln_dc_now_ms();
        if (now >= w->deadline_ms) {
            rc = -1;
            break;
        }
        if (w->bookmarks && now >= w->next_bookmark_ms) {
            w->next_bookmark_ms = now + (dc->opts.bookmark_ms > 0 ? dc->opts.bookmark_ms : 60000);
            format_bookmark(dc, w, false);
            continue;
        }
        if (now >= give_up)
            break;
        int64_t until = give_up;
        if (w->deadline_ms < until)
            until = w->deadline_ms;
        if (w->bookmarks && w->next_bookmark_ms < until)
            until = w->next_bookmark_ms;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t delta = until - now;
        ts.tv_sec += delta / 1000;
        ts.tv_nsec += (delta % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        w->waiting = true;
        pthread_cond_timedwait(&w->cond, &dc->mu, &ts);
        w->waiting = false;
    }
    pthread_mutex_unlock(&dc->mu);
    return rc;
}

void kiln_devcluster_watch_close(kiln_devcluster *dc, void *watch)
{
    kiln_dc_watcher *w = watch;
    if (!w)
        return;
    pthread_mutex_lock(&dc->mu);
    for (kiln_dc_watcher **pp = &dc->watchers; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            dc->nwatchers--;
            break;
        }
    }
    for (size_t i = 0; i < w->qlen; i++)
        kiln_dc_event_unref(w->queue[(w->qhead + i) % w->qcap]);
    pthread_mutex_unlock(&dc->mu);
    kiln_xfree(w->queue);
    kiln_dc_selector_free(&w->labels);
    kiln_dc_selector_free(&w->fields);
    kiln_buf_free(&w->out);
    pthread_cond_destroy(&w->cond);
    kiln_xfree(w->ns);
    kiln_xfree(w);
}
