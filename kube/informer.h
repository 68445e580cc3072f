/* kube/informer.h: a reflector and a thread-safe cache for one resource.
 *
 * The informer lists a collection (paged), then watches it from the list's
 * resourceVersion with bookmarks, as client-go's Reflector does: events update
 * the cache and call the handlers; a watch that ends normally is re-opened
 * from the last resourceVersion seen; 410 Gone (an HTTP answer or an ERROR
 * event) relists with a consistent read; any other failure backs off
 * exponentially with jitter (800 ms doubling to 30 s, reset after 2 minutes of
 * health) and relists. A label or field selector scopes what is cached.
 *
 * Objects in the cache are shared and immutable: get and list return new
 * references that must not be modified. Fields a consumer never reads can be
 * dropped before an object is cached or handed to a handler (client-go's
 * SetTransform, controller-runtime's TransformStripManagedFields): on a
 * cluster that uses server-side apply, metadata.managedFields is often the
 * larger part of a small object. Handlers run on the informer's thread,
 * in event order, with no lock held (they may call get/list); the objects they
 * receive are borrowed for the call.
 *
 * The informer borrows its client, which must outlive it.
 */
#ifndef KILN_KUBE_INFORMER_H
#define KILN_KUBE_INFORMER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "kube/client.h"

typedef struct kiln_kube_informer kiln_kube_informer;

typedef struct kiln_kube_informer_handlers {
    void (*on_add)(void *ctx, json_t *obj);
    void (*on_update)(void *ctx, json_t *old_obj, json_t *obj);
    void (*on_delete)(void *ctx, json_t *obj); /* the last state known */
    void *ctx;
} kiln_kube_informer_handlers;

typedef struct kiln_kube_informer_opts {
    kiln_kube_ref ref;          /* group, version, resource, namespace (NULL: all); copied */
    const char *label_selector; /* copied; NULL: everything */
    const char *field_selector; /* copied */
    long page_size;             /* 0: 500 */
    long min_watch_timeout_s;   /* 0: 300; each watch asks for [min, 2*min) */
    long backoff_initial_ms;    /* 0: 800 */
    long backoff_max_ms;        /* 0: 30000 */
    /* Drop metadata.managedFields from every object (list items, watch
     * events, deletions) before it is cached or a handler sees it. */
    bool strip_managed_fields;
    kiln_kube_informer_handlers handlers;
} kiln_kube_informer_opts;

/* *out is new (kiln_kube_informer_free). c is borrowed. */
int kiln_kube_informer_new(kiln_kube_informer **out, kiln_kube_client *c,
                           const kiln_kube_informer_opts *opts, kiln_err *err);
/* Starts the reflector thread. */
int kiln_kube_informer_start(kiln_kube_informer *inf, kiln_err *err);
/* Stops the thread and waits for it (an open watch is interrupted within about a
 * second). Idempotent. The cache stays readable. */
void kiln_kube_informer_stop(kiln_kube_informer *inf);
/* Stops and frees; NULL allowed. */
void kiln_kube_informer_free(kiln_kube_informer *inf);

/* True once the first list has been stored. */
bool kiln_kube_informer_synced(kiln_kube_informer *inf);
/* Waits until synced or timeout_ms passes; returns synced. */
bool kiln_kube_informer_wait_synced(kiln_kube_informer *inf, long timeout_ms);

/* The cached object namespace/name (namespace NULL or "" for cluster scope):
 * a new reference, or NULL. */
json_t *kiln_kube_informer_get(kiln_kube_informer *inf, const char *namespace, const char *name);
/* Every cached object whose labels match label_selector (NULL: all), sorted by
 * namespace/name: *out is a new array. */
int kiln_kube_informer_list(json_t **out, kiln_kube_informer *inf, const char *label_selector,
                            kiln_err *err);
size_t kiln_kube_informer_len(kiln_kube_informer *inf);

/* The resourceVersion the next watch starts from (copied into buf, "" before
 * the first list). */
void kiln_kube_informer_resource_version(kiln_kube_informer *inf, char *buf, size_t n);

typedef struct kiln_kube_informer_stats {
    size_t lists;           /* completed lists */
    size_t watches;         /* watches opened */
    size_t relists_expired; /* relists caused by 410 Gone */
    size_t failures;        /* list or watch failures that backed off */
} kiln_kube_informer_stats;

void kiln_kube_informer_get_stats(kiln_kube_informer *inf, kiln_kube_informer_stats *out);

#endif
