/* kube/watch.h: the Kubernetes watch stream.
 *
 * A watch answer is newline-delimited JSON, one event per line:
 * {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}. HTTP chunk
 * boundaries are not event boundaries, so the decoder collects bytes in a
 * bounded line buffer and hands each complete event to a callback; a line
 * longer than the bound fails with KILN_ELIMIT rather than growing.
 *
 * kiln_kube_watch runs one watch request to its end (the server's
 * timeoutSeconds, a closed connection, an ERROR event, or cancellation).
 * Reconnecting, relisting and backoff belong to the informer (kube/informer.h).
 */
#ifndef KILN_KUBE_WATCH_H
#define KILN_KUBE_WATCH_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"
#include "kube/client.h"

typedef enum kiln_kube_event_type {
    KILN_KUBE_ADDED,
    KILN_KUBE_MODIFIED,
    KILN_KUBE_DELETED,
    KILN_KUBE_BOOKMARK,
    KILN_KUBE_ERROR, /* object is a Status */
} kiln_kube_event_type;

/* "ADDED", ...; static string. */
const char *kiln_kube_event_name(kiln_kube_event_type type);

/* One event; object is borrowed for the call (json_incref to keep it).
 * Return nonzero (a KILN_E* code, err set) to stop the stream. */
typedef int (*kiln_kube_event_fn)(void *ctx, kiln_kube_event_type type, json_t *object,
                                  kiln_err *err);

/* 16 MiB: larger than any object etcd accepts (1.5 MiB by default) with room
 * for managedFields-heavy objects. */
#define KILN_KUBE_WATCH_MAX_EVENT ((size_t)16 << 20)

typedef struct kiln_kube_watch_decoder {
    kiln_buf line;
    kiln_kube_event_fn fn;
    void *ctx;
    size_t events; /* events delivered so far */
} kiln_kube_watch_decoder;

/* max_line 0 means KILN_KUBE_WATCH_MAX_EVENT. */
void kiln_kube_watch_decoder_init(kiln_kube_watch_decoder *d, size_t max_line,
                                  kiln_kube_event_fn fn, void *ctx);
/* Feeds len bytes (borrowed); calls fn for every complete line. Malformed
 * events fail with KILN_EINVAL naming the problem. */
int kiln_kube_watch_decoder_feed(kiln_kube_watch_decoder *d, const char *data, size_t len,
                                 kiln_err *err);
/* End of stream: a last event without a newline is delivered; a partial
 * one is an error. */
int kiln_kube_watch_decoder_finish(kiln_kube_watch_decoder *d, kiln_err *err);
void kiln_kube_watch_decoder_free(kiln_kube_watch_decoder *d);

typedef struct kiln_kube_watch_opts {
    const char *label_selector;
    const char *field_selector;
    const char *resource_version; /* NULL/"" : from now, with synthetic ADDED events */
    bool allow_bookmarks;
    long timeout_s;   /* server-side timeoutSeconds; 0: the server's default */
    size_t max_event; /* 0: KILN_KUBE_WATCH_MAX_EVENT */
} kiln_kube_watch_opts;

/* Appends the watch request path (ref's collection, ?watch=true&...). */
int kiln_kube_watch_path(kiln_buf *out, const kiln_kube_ref *ref, const kiln_kube_watch_opts *opts,
                         kiln_err *err);

/* Runs one watch. Returns 0 when the server ended the stream or *cancel was
 * set; an ERROR event ends the watch with its Status mapped to a code
 * (410 Expired -> KILN_ECONFLICT with kiln_kube_last_expired() true); a non-2xx
 * answer is mapped the same way. fn's events are delivered in order. */
int kiln_kube_watch(kiln_kube_client *c, const kiln_kube_ref *ref, const kiln_kube_watch_opts *opts,
                    kiln_kube_event_fn fn, void *ctx, const atomic_int *cancel, kiln_err *err);

#endif
