#include "kube/watch.h"

#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "core/mem.h"
#include "kube/internal.h"

static const char *const names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};

const char *kiln_kube_event_name(kiln_kube_event_type type)
{
    return (unsigned)type <= KILN_KUBE_ERROR ? names[type] : "UNKNOWN";
}

void kiln_kube_watch_decoder_init(kiln_kube_watch_decoder *d, size_t max_line,
                                  kiln_kube_event_fn fn, void *ctx)
{
    kiln_buf_init(&d->line, max_line ? max_line : KILN_KUBE_WATCH_MAX_EVENT);
    d->fn = fn;
    d->ctx = ctx;
    d->events = 0;
}

void kiln_kube_watch_decoder_free(kiln_kube_watch_decoder *d)
{
    if (d)
        kiln_buf_free(&d->line);
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

static int deliver(kiln_kube_watch_decoder *d, const char *s, size_t n, kiln_err *err)
{
    json_t *ev = NULL;
    int rc;
    if (blank(s, n))
        return 0;
    if ((rc = kiln_json_load(&ev, s, n, err))) {
        kiln_err_prefix(err, "watch event %zu", d->events + 1);
        return rc;
    }
    const char *type = kiln_json_get_string(ev, "type");
    json_t *obj = json_object_get(ev, "object");
    int t = -1;
    for (int i = 0; type && i <= KILN_KUBE_ERROR; i++)
        if (strcmp(type, names[i]) == 0)
            t = i;
    if (t < 0) {
        rc = kiln_err_set(err, KILN_EINVAL, "watch event %zu: unknown type \"%s\"", d->events + 1,
                          type ? type : "");
    } else if (!json_is_object(obj)) {
        rc = kiln_err_set(err, KILN_EINVAL, "watch event %zu: %s without an object", d->events + 1,
                          type);
    } else {
        d->events++;
        rc = d->fn(d->ctx, (kiln_kube_event_type)t, obj, err);
    }
    json_decref(ev);
    return rc;
}

int kiln_kube_watch_decoder_feed(kiln_kube_watch_decoder *d, const char *data, size_t len,
                                 kiln_err *err)
{
    while (len) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        int rc;
        if (d->line.len == 0 && nl) {
            /* The common case: a whole event inside this chunk, no copy. */
            if (take > d->line.limit)
                return kiln_err_set(err, KILN_ELIMIT, "watch event %zu is larger than %zu bytes",
                                    d->events + 1, d->line.limit);
            rc = deliver(d, data, take, err);
        } else {
            rc = kiln_buf_append(&d->line, data, take, err);
            if (rc) {
                kiln_err_set(err, KILN_ELIMIT, "watch event %zu is larger than %zu bytes",
                             d->events + 1, d->line.limit);
                kiln_buf_reset(&d->line);
                return KILN_ELIMIT;
            }
            if (nl) {
                rc = deliver(d, d->line.data, d->line.len, err);
                kiln_buf_reset(&d->line);
            }
        }
        if (rc)
            return rc;
        data += take + (nl ? 1 : 0);
        len -= take + (nl ? 1 : 0);
    }
    return 0;
}

int kiln_kube_watch_decoder_finish(kiln_kube_watch_decoder *d, kiln_err *err)
{
    if (d->line.len == 0 || blank(d->line.data, d->line.len))
        return 0;
    int rc = deliver(d, d->line.data, d->line.len, err);
    kiln_buf_reset(&d->line);
    return rc;
}

int kiln_kube_watch_path(kiln_buf *out, const kiln_kube_ref *ref, const kiln_kube_watch_opts *opts,
                         kiln_err *err)
{
    kiln_kube_ref coll = *ref;
    coll.name = NULL;
    coll.subresource = NULL;
    int rc = kiln_kube_path(out, &coll, err);
    if (!rc)
        rc = kiln_buf_puts(out, "?watch=true", err);
    /* Selectors and the resource version are opaque text: percent-encode. */
    const char *keys[] = {"labelSelector", "fieldSelector", "resourceVersion"};
    const char *vals[] = {opts->label_selector, opts->field_selector, opts->resource_version};
    for (int i = 0; !rc && i < 3; i++) {
        if (!vals[i] || !*vals[i])
            continue;
        rc = kiln_buf_printf(out, err, "&%s=", keys[i]);
        for (const unsigned char *p = (const unsigned char *)vals[i]; !rc && *p; p++) {
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                strchr("-._~", *p))
                rc = kiln_buf_append(out, p, 1, err);
            else
                rc = kiln_buf_printf(out, err, "%%%02X", *p);
        }
    }
    if (!rc && opts->allow_bookmarks)
        rc = kiln_buf_puts(out, "&allowWatchBookmarks=true", err);
    if (!rc && opts->timeout_s > 0)
        rc = kiln_buf_printf(out, err, "&timeoutSeconds=%ld", opts->timeout_s);
    return rc;
}

typedef struct watch_ctx {
    kiln_kube_watch_decoder dec;
    kiln_kube_event_fn fn;
    void *ctx;
    kiln_kube_status status; /* of an ERROR event */
    bool got_error;
} watch_ctx;

/* ERROR events end the watch: the Status inside becomes the result
 * (the cacher reports a too-old resourceVersion this way, as 200 + ERROR). */
static int on_event(void *ctx, kiln_kube_event_type type, json_t *obj, kiln_err *err)
{
    watch_ctx *w = ctx;
    if (type != KILN_KUBE_ERROR)
        return w->fn(w->ctx, type, obj, err);
    json_int_t code = json_integer_value(json_object_get(obj, "code"));
    char *text = json_dumps(obj, JSON_COMPACT);
    int rc = kiln_kube_status_error(&w->status, code ? (long)code : 500, text,
                                    text ? strlen(text) : 0, "watch", err);
    free(text);
    w->status.retry_after_s = -1;
    w->got_error = true;
    return rc;
}

static int on_data(void *ctx, const char *data, size_t len, kiln_err *err)
{
    watch_ctx *w = ctx;
    return kiln_kube_watch_decoder_feed(&w->dec, data, len, err);
}

int kiln_kube_watch(kiln_kube_client *c, const kiln_kube_ref *ref, const kiln_kube_watch_opts *opts,
                    kiln_kube_event_fn fn, void *ctx, const atomic_int *cancel, kiln_err *err)
{
    kiln_kube_watch_opts none = {0};
    kiln_buf path;
    watch_ctx w = {.fn = fn, .ctx = ctx};
    int rc;
    if (!opts)
        opts = &none;
    kiln_buf_init(&path, 0);
    kiln_kube_watch_decoder_init(&w.dec, opts->max_event, on_event, &w);
    if ((rc = kiln_kube_watch_path(&path, ref, opts, err)))
        goto out;
    /* A quiet watch legitimately sends nothing until the server's timeout,
     * so the client-side limit is that timeout plus slack. */
    long timeout_ms = opts->timeout_s > 0 ? (opts->timeout_s + 30) * 1000 : 0;
    rc = kiln_kube_stream(c, path.data, timeout_ms, on_data, &w, cancel, err);
    if (!rc && !(cancel && atomic_load(cancel)))
        rc = kiln_kube_watch_decoder_finish(&w.dec, err);
    if (w.got_error)
        kiln_kube_set_last_status(&w.status);
out:
    kiln_kube_watch_decoder_free(&w.dec);
    kiln_buf_free(&path);
    return rc;
}
