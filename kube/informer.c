#include "kube/informer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "kube/selector.h"
#include "kube/watch.h"

/* client-go reflector.go: watch timeouts in [5 min, 10 min), backoff 800 ms
 * doubling to 30 s with jitter 1.0, reset after 2 minutes without failure. */
#define DEFAULT_MIN_WATCH_S 300
#define DEFAULT_BACKOFF_INITIAL_MS 800
#define DEFAULT_BACKOFF_MAX_MS 30000
#define BACKOFF_RESET_MS 120000
#define DEFAULT_PAGE_SIZE 500
/* A watch that ends in under a second without a single event is a failure
 * (reflector.go "very short watch"), or a misbehaving server would make the
 * reflector spin. */
#define SHORT_WATCH_MS 1000

struct kiln_kube_informer {
    kiln_kube_client *c;
    char *group, *version, *resource, *ns, *label, *field;
    kiln_kube_ref ref;
    long page_size, min_watch_s, backoff_initial_ms, backoff_max_ms;
    bool strip_managed_fields;
    kiln_kube_informer_handlers h;

    pthread_mutex_t mu; /* store, rv, synced, stats */
    pthread_cond_t cond;
    json_t *store; /* "ns/name" -> object */
    char *rv;
    bool synced;
    kiln_kube_informer_stats stats;

    atomic_int stop;
    bool running;
    pthread_t thread;
    unsigned seed;
    size_t watch_events; /* events seen by the current watch */
};

static char *dup_or_null(const char *s)
{
    return s && *s ? kiln_xstrdup(s) : NULL;
}

int kiln_kube_informer_new(kiln_kube_informer **out, kiln_kube_client *c,
                           const kiln_kube_informer_opts *opts, kiln_err *err)
{
    *out = NULL;
    if (!c || !opts || !opts->ref.version || !*opts->ref.version || !opts->ref.resource ||
        !*opts->ref.resource)
        return kiln_err_set(err, KILN_EINVAL,
                            "informer: a client, a version and a resource "
                            "are needed");
    if (opts->label_selector) {
        kiln_kube_selector *sel;
        int rc = kiln_kube_selector_parse(&sel, opts->label_selector, err);
        if (rc)
            return rc;
        kiln_kube_selector_free(sel);
    }
    kiln_kube_informer *inf = kiln_xcalloc(1, sizeof(*inf));
    inf->c = c;
    inf->group = kiln_xstrdup(opts->ref.group ? opts->ref.group : "");
    inf->version = kiln_xstrdup(opts->ref.version);
    inf->resource = kiln_xstrdup(opts->ref.resource);
    inf->ns = dup_or_null(opts->ref.namespace);
    inf->label = dup_or_null(opts->label_selector);
    inf->field = dup_or_null(opts->field_selector);
    inf->ref = (kiln_kube_ref){inf->group, inf->version, inf->resource, inf->ns, NULL, NULL};
    inf->page_size = opts->page_size > 0 ? opts->page_size : DEFAULT_PAGE_SIZE;
    inf->min_watch_s =
        opts->min_watch_timeout_s > 0 ? opts->min_watch_timeout_s : DEFAULT_MIN_WATCH_S;
    inf->backoff_initial_ms =
        opts->backoff_initial_ms > 0 ? opts->backoff_initial_ms : DEFAULT_BACKOFF_INITIAL_MS;
    inf->backoff_max_ms = opts->backoff_max_ms > 0 ? opts->backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
    if (inf->backoff_max_ms < inf->backoff_initial_ms)
        inf->backoff_max_ms = inf->backoff_initial_ms;
    inf->strip_managed_fields = opts->strip_managed_fields;
    inf->h = opts->handlers;
    pthread_mutex_init(&inf->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&inf->cond, &ca);
    pthread_condattr_destroy(&ca);
    inf->store = json_object();
    inf->rv = kiln_xstrdup("");
    inf->seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)inf;
    *out = inf;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Store                                                                      */

static char *key_of(const json_t *obj)
{
    const char *name = kiln_json_get_string(obj, "metadata.name");
    const char *ns = kiln_json_get_string(obj, "metadata.namespace");
    if (!name || !*name)
        return NULL;
    return ns && *ns ? kiln_xasprintf("%s/%s", ns, name) : kiln_xstrdup(name);
}

/* Drops the fields the options ask to drop. obj is not shared yet (it comes
 * straight from the decoder or the list), so it is changed in place. */
static void transform(kiln_kube_informer *inf, json_t *obj)
{
    if (inf->strip_managed_fields)
        json_object_del(json_object_get(obj, "metadata"), "managedFields");
}

static void set_rv(kiln_kube_informer *inf, const char *rv)
{
    if (!rv || !*rv)
        return;
    pthread_mutex_lock(&inf->mu);
    kiln_xfree(inf->rv);
    inf->rv = kiln_xstrdup(rv);
    pthread_mutex_unlock(&inf->mu);
}

static int on_event(void *ctx, kiln_kube_event_type type, json_t *obj, kiln_err *err)
{
    kiln_kube_informer *inf = ctx;
    json_t *old = NULL;
    char *key = NULL;
    inf->watch_events++;
    if (type != KILN_KUBE_BOOKMARK && !(key = key_of(obj))) {
        KILN_LOG(KILN_LOG_WARN, "informer %s: %s event without metadata.name ignored",
                 inf->resource, kiln_kube_event_name(type));
        return 0;
    }
    if (type != KILN_KUBE_BOOKMARK)
        transform(inf, obj);
    switch (type) {
    case KILN_KUBE_ADDED:
    case KILN_KUBE_MODIFIED:
        pthread_mutex_lock(&inf->mu);
        old = json_incref(json_object_get(inf->store, key));
        json_object_set(inf->store, key, obj);
        pthread_mutex_unlock(&inf->mu);
        if (old && inf->h.on_update)
            inf->h.on_update(inf->h.ctx, old, obj);
        else if (!old && inf->h.on_add)
            inf->h.on_add(inf->h.ctx, obj);
        break;
    case KILN_KUBE_DELETED:
        pthread_mutex_lock(&inf->mu);
        old = json_incref(json_object_get(inf->store, key));
        json_object_del(inf->store, key);
        pthread_mutex_unlock(&inf->mu);
        if (inf->h.on_delete)
            inf->h.on_delete(inf->h.ctx, obj);
        break;
    default:
        break;
    }
    /* Every event, bookmarks included, moves the resume point forward. */
    set_rv(inf, kiln_json_get_string(obj, "metadata.resourceVersion"));
    json_decref(old);
    kiln_xfree(key);
    return 0;
}

/* Swaps in the list's items and tells the handlers what changed. Items
 * without kind/apiVersion (built-in typed lists omit them) get the list's. */
static void replace(kiln_kube_informer *inf, json_t *list)
{
    json_t *fresh = json_object();
    json_t *items = json_object_get(list, "items");
    const char *list_kind = kiln_json_get_string(list, "kind");
    const char *api = kiln_json_get_string(list, "apiVersion");
    char *kind = NULL;
    if (list_kind && strlen(list_kind) > 4 &&
        strcmp(list_kind + strlen(list_kind) - 4, "List") == 0)
        kind = kiln_xstrndup(list_kind, strlen(list_kind) - 4);
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        char *key = key_of(item);
        if (!key)
            continue;
        if (kind && !json_object_get(item, "kind"))
            json_object_set_new(item, "kind", json_string(kind));
        if (api && !json_object_get(item, "apiVersion"))
            json_object_set_new(item, "apiVersion", json_string(api));
        transform(inf, item);
        json_object_set(fresh, key, item);
        kiln_xfree(key);
    }
    kiln_xfree(kind);
    pthread_mutex_lock(&inf->mu);
    json_t *old = inf->store;
    inf->store = json_incref(fresh);
    pthread_mutex_unlock(&inf->mu);

    const char *k;
    json_t *v;
    json_object_foreach(old, k, v)
    {
        if (!json_object_get(fresh, k) && inf->h.on_delete)
            inf->h.on_delete(inf->h.ctx, v);
    }
    json_object_foreach(fresh, k, v)
    {
        json_t *prev = json_object_get(old, k);
        if (!prev) {
            if (inf->h.on_add)
                inf->h.on_add(inf->h.ctx, v);
        } else if (inf->h.on_update) {
            /* An unchanged object (same resourceVersion) is not an update. */
            const char *a = kiln_json_get_string(prev, "metadata.resourceVersion");
            const char *b = kiln_json_get_string(v, "metadata.resourceVersion");
            if (!a || !b || strcmp(a, b) != 0)
                inf->h.on_update(inf->h.ctx, prev, v);
        }
    }
    json_decref(old);
    json_decref(fresh);
}

/* ------------------------------------------------------------------------ */
/* Reflector                                                                  */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps ms unless stop is requested first. */
static void wait_or_stop(kiln_kube_informer *inf, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&inf->mu);
    while (!atomic_load(&inf->stop))
        if (pthread_cond_timedwait(&inf->cond, &inf->mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&inf->mu);
}

/* Lists, stores, then watches until a watch fails. *consistent asks for a
 * consistent list (RV "") after 410 Gone; it is updated for the next call. */
static int list_and_watch(kiln_kube_informer *inf, bool *consistent, kiln_err *err)
{
    json_t *list = NULL;
    char *rv = NULL;
    int rc;
    for (;;) {
        pthread_mutex_lock(&inf->mu);
        rv = kiln_xstrdup(*inf->rv ? inf->rv : "0");
        pthread_mutex_unlock(&inf->mu);
        /* RV "0" is served from the watch cache; lastSyncRV on a relist is
         * "not older than"; after 410 only a consistent read ("") will do
         * (reflector.go relistResourceVersion). */
        kiln_kube_list_opts lo = {
            .label_selector = inf->label,
            .field_selector = inf->field,
            .limit = inf->page_size,
            .resource_version = *consistent ? NULL : rv,
            .cancel = &inf->stop,
        };
        rc = kiln_kube_list(&list, inf->c, &inf->ref, &lo, err);
        kiln_xfree(rv);
        rv = NULL;
        if (rc && kiln_kube_last_expired() && !*consistent) {
            *consistent = true;
            continue;
        }
        break;
    }
    if (rc)
        return rc;
    *consistent = false;
    replace(inf, list);
    pthread_mutex_lock(&inf->mu);
    kiln_xfree(inf->rv);
    inf->rv = kiln_xstrdup(kiln_json_get_string(list, "metadata.resourceVersion")
                               ? kiln_json_get_string(list, "metadata.resourceVersion")
                               : "");
    inf->synced = true;
    inf->stats.lists++;
    pthread_cond_broadcast(&inf->cond);
    pthread_mutex_unlock(&inf->mu);
    json_decref(list);

    while (!atomic_load(&inf->stop)) {
        pthread_mutex_lock(&inf->mu);
        rv = kiln_xstrdup(inf->rv);
        inf->stats.watches++;
        long span = inf->min_watch_s;
        long timeout = inf->min_watch_s + (long)(rand_r(&inf->seed) % (unsigned long)span);
        pthread_mutex_unlock(&inf->mu);
        kiln_kube_watch_opts wo = {
            .label_selector = inf->label,
            .field_selector = inf->field,
            .resource_version = rv,
            .allow_bookmarks = true,
            .timeout_s = timeout,
        };
        int64_t start = mono_ms();
        inf->watch_events = 0;
        rc = kiln_kube_watch(inf->c, &inf->ref, &wo, on_event, inf, &inf->stop, err);
        kiln_xfree(rv);
        rv = NULL;
        if (atomic_load(&inf->stop))
            return 0;
        if (rc) {
            /* 410: the resourceVersion fell out of the server's history;
             * clear and relist (API concepts, "Efficient detection of
             * changes"). */
            if (kiln_kube_last_expired())
                *consistent = true;
            return rc;
        }
        if (inf->watch_events == 0 && mono_ms() - start < SHORT_WATCH_MS)
            return kiln_err_set(err, KILN_EIO,
                                "very short watch of %s: ended after %lld ms "
                                "without events",
                                inf->resource, (long long)(mono_ms() - start));
    }
    return 0;
}

static void *run(void *arg)
{
    kiln_kube_informer *inf = arg;
    int64_t backoff = inf->backoff_initial_ms;
    int64_t last_failure = 0;
    bool consistent = false;
    while (!atomic_load(&inf->stop)) {
        kiln_err err = {0};
        int rc = list_and_watch(inf, &consistent, &err);
        if (atomic_load(&inf->stop))
            break;
        int64_t now = mono_ms();
        if (last_failure && now - last_failure > BACKOFF_RESET_MS)
            backoff = inf->backoff_initial_ms;
        last_failure = now;
        pthread_mutex_lock(&inf->mu);
        inf->stats.failures++;
        if (consistent)
            inf->stats.relists_expired++;
        /* Jitter 1.0: wait in [backoff, 2 * backoff). */
        int64_t wait =
            backoff + (int64_t)(rand_r(&inf->seed) % (unsigned)(backoff > 0 ? backoff : 1));
        pthread_mutex_unlock(&inf->mu);
        if (consistent)
            KILN_LOG(KILN_LOG_INFO, "informer %s: %s; relisting", inf->resource, err.msg);
        else
            KILN_LOG(KILN_LOG_WARN, "informer %s: %s (%s); retrying in %lld ms", inf->resource,
                     err.msg, kiln_err_name(rc), (long long)wait);
        wait_or_stop(inf, wait);
        backoff = backoff * 2 > inf->backoff_max_ms ? inf->backoff_max_ms : backoff * 2;
    }
    return NULL;
}

int kiln_kube_informer_start(kiln_kube_informer *inf, kiln_err *err)
{
    if (inf->running)
        return kiln_err_set(err, KILN_EINVAL, "informer %s already started", inf->resource);
    atomic_store(&inf->stop, 0);
    int e = pthread_create(&inf->thread, NULL, run, inf);
    if (e)
        return kiln_err_set(err, KILN_EIO, "informer %s: pthread_create: %s", inf->resource,
                            strerror(e));
    inf->running = true;
    return 0;
}

void kiln_kube_informer_stop(kiln_kube_informer *inf)
{
    if (!inf || !inf->running)
        return;
    pthread_mutex_lock(&inf->mu);
    atomic_store(&inf->stop, 1);
    pthread_cond_broadcast(&inf->cond);
    pthread_mutex_unlock(&inf->mu);
    pthread_join(inf->thread, NULL);
    inf->running = false;
}

void kiln_kube_informer_free(kiln_kube_informer *inf)
{
    if (!inf)
        return;
    kiln_kube_informer_stop(inf);
    json_decref(inf->store);
    kiln_xfree(inf->rv);
    kiln_xfree(inf->group);
    kiln_xfree(inf->version);
    kiln_xfree(inf->resource);
    kiln_xfree(inf->ns);
    kiln_xfree(inf->label);
    kiln_xfree(inf->field);
    pthread_cond_destroy(&inf->cond);
    pthread_mutex_destroy(&inf->mu);
    kiln_xfree(inf);
}

/* ------------------------------------------------------------------------ */
/* Reads                                                                      */

bool kiln_kube_informer_synced(kiln_kube_informer *inf)
{
    pthread_mutex_lock(&inf->mu);
    bool s = inf->synced;
    pthread_mutex_unlock(&inf->mu);
    return s;
}

bool kiln_kube_informer_wait_synced(kiln_kube_informer *inf, long timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&inf->mu);
    while (!inf->synced)
        if (pthread_cond_timedwait(&inf->cond, &inf->mu, &ts) == ETIMEDOUT)
            break;
    bool s = inf->synced;
    pthread_mutex_unlock(&inf->mu);
    return s;
}

json_t *kiln_kube_informer_get(kiln_kube_informer *inf, const char *namespace, const char *name)
{
    if (!name)
        return NULL;
    char *key =
        namespace && *namespace ? kiln_xasprintf("%s/%s", namespace, name) : kiln_xstrdup(name);
    pthread_mutex_lock(&inf->mu);
    json_t *obj = json_incref(json_object_get(inf->store, key));
    pthread_mutex_unlock(&inf->mu);
    kiln_xfree(key);
    return obj;
}

int kiln_kube_informer_list(json_t **out, kiln_kube_informer *inf, const char *label_selector,
                            kiln_err *err)
{
    kiln_kube_selector *sel = NULL;
    int rc;
    *out = NULL;
    if ((rc = kiln_kube_selector_parse(&sel, label_selector, err)))
        return rc;
    json_t *arr = json_array();
    pthread_mutex_lock(&inf->mu);
    size_t n = 0;
    const char **keys = kiln_json_sorted_keys(&n, inf->store);
    for (size_t i = 0; i < n; i++) {
        json_t *obj = json_object_get(inf->store, keys[i]);
        if (kiln_kube_selector_matches(sel, kiln_json_get_path(obj, "metadata.labels")))
            json_array_append(arr, obj);
    }
    pthread_mutex_unlock(&inf->mu);
    kiln_xfree(keys);
    kiln_kube_selector_free(sel);
    *out = arr;
    return 0;
}

size_t kiln_kube_informer_len(kiln_kube_informer *inf)
{
    pthread_mutex_lock(&inf->mu);
    size_t n = json_object_size(inf->store);
    pthread_mutex_unlock(&inf->mu);
    return n;
}

void kiln_kube_informer_resource_version(kiln_kube_informer *inf, char *buf, size_t n)
{
    pthread_mutex_lock(&inf->mu);
    snprintf(buf, n, "%s", inf->rv);
    pthread_mutex_unlock(&inf->mu);
}

void kiln_kube_informer_get_stats(kiln_kube_informer *inf, kiln_kube_informer_stats *out)
{
    pthread_mutex_lock(&inf->mu);
    *out = inf->stats;
    pthread_mutex_unlock(&inf->mu);
}
