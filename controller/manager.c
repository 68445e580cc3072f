/* controller/manager.c: informers, the work queue and the workers.
 *
 * Event routing: an RGD event queues "rgd:<name>"; a CRD event queues the RGD
 * named by the CRD's kiln.dev/rgd label; an instance event queues
 * "inst:<rgd>:<namespace>:<name>"; a child event queues the instance named by
 * the child's kiln.dev/rgd, -instance-namespace and -instance-name labels.
 * Reconcilers read from the informer caches, never from the events.
 *
 * Every informer drops metadata.managedFields: nothing in the controller
 * reads it (kiln applies with force and compares its own applied-hash), it
 * is most of a server-side-applied object, and status PUTs built from a
 * cached object without it leave the server's copy as it was.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "controller/events.h"
#include "controller/internal.h"
#include "controller/leader.h"
#include "controller/metrics.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"

typedef struct inst_ctx {
    kiln_manager *m;
    char *rgd;
} inst_ctx;

/* Handler contexts of instance informers, freed at shutdown. */
static inst_ctx **inst_ctxs;
static size_t ninst_ctxs;
static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;

/* ------------------------------------------------------------------------ */
/* keys                                                                      */

void kiln_manager_enqueue_rgd(kiln_manager *m, const char *name)
{
    if (!name || !*name)
        return;
    char *key = kiln_xasprintf("rgd:%s", name);
    kiln_queue_add(m->queue, key);
    kiln_xfree(key);
}

void kiln_manager_enqueue_instance(kiln_manager *m, const char *rgd, const char *ns,
                                   const char *name)
{
    if (!rgd || !name || !*rgd || !*name)
        return;
    char *key = kiln_xasprintf("inst:%s:%s:%s", rgd, ns ? ns : "", name);
    kiln_queue_add(m->queue, key);
    kiln_xfree(key);
}

/* ------------------------------------------------------------------------ */
/* informer handlers                                                          */

static void rgd_event(void *ctx, json_t *obj)
{
    kiln_manager_enqueue_rgd(ctx, kiln_json_get_string(obj, "metadata.name"));
}

static void rgd_update(void *ctx, json_t *old_obj, json_t *obj)
{
    (void)old_obj;
    rgd_event(ctx, obj);
}

static void crd_event(void *ctx, json_t *obj)
{
    const json_t *labels = kiln_json_get_path(obj, "metadata.labels");
    kiln_manager_enqueue_rgd(ctx, json_string_value(json_object_get(labels, KILN_LABEL_RGD)));
}

static void crd_update(void *ctx, json_t *old_obj, json_t *obj)
{
    (void)old_obj;
    crd_event(ctx, obj);
}

static void inst_event(void *ctx, json_t *obj)
{
    inst_ctx *c = ctx;
    kiln_manager_enqueue_instance(c->m, c->rgd, kiln_json_get_string(obj, "metadata.namespace"),
                                  kiln_json_get_string(obj, "metadata.name"));
}

static bool same_member(const json_t *a, const json_t *b, const char *path)
{
    const json_t *x = kiln_json_get_path(a, path), *y = kiln_json_get_path(b, path);
    if (!x || !y)
        return x == y;
    return kiln_json_equal(x, y);
}

static void inst_update(void *ctx, json_t *old_obj, json_t *obj)
{
    /* Our own status writes come back as updates; only a new generation,
     * deletion, or a change of annotations, labels or finalizers (suspend,
     * inventory) is work. */
    if (same_member(old_obj, obj, "metadata.generation") &&
        same_member(old_obj, obj, "metadata.deletionTimestamp") &&
        same_member(old_obj, obj, "metadata.annotations") &&
        same_member(old_obj, obj, "metadata.labels") &&
        same_member(old_obj, obj, "metadata.finalizers"))
        return;
    inst_event(ctx, obj);
}

static void child_event(void *ctx, json_t *obj)
{
    kiln_manager *m = ctx;
    const json_t *labels = kiln_json_get_path(obj, "metadata.labels");
    kiln_manager_enqueue_instance(
        m, json_string_value(json_object_get(labels, KILN_LABEL_RGD)),
        json_string_value(json_object_get(labels, KILN_LABEL_INSTANCE_NAMESPACE)),
        json_string_value(json_object_get(labels, KILN_LABEL_INSTANCE_NAME)));
}

static void child_update(void *ctx, json_t *old_obj, json_t *obj)
{
    child_event(ctx, obj);
    /* A relabelled object also tells its former owner. */
    if (!same_member(old_obj, obj, "metadata.labels"))
        child_event(ctx, old_obj);
}

/* ------------------------------------------------------------------------ */
/* registries                                                                 */

kiln_rgd_entry *kiln_manager_rgd_entry(kiln_manager *m, const char *name)
{
    pthread_mutex_lock(&m->lock);
    kiln_rgd_entry *e = kiln_strmap_get(&m->rgd_entries, name);
    if (!e) {
        e = kiln_xcalloc(1, sizeof(*e));
        e->name = kiln_xstrdup(name);
        e->tried_generation = -1;
        kiln_strmap_put(&m->rgd_entries, name, e);
    }
    pthread_mutex_unlock(&m->lock);
    return e;
}

kiln_ctl_graph *kiln_manager_graph_acquire(kiln_manager *m, const char *rgd)
{
    kiln_ctl_graph *cg = NULL;
    pthread_mutex_lock(&m->lock);
    kiln_rgd_entry *e = kiln_strmap_get(&m->rgd_entries, rgd);
    if (e && e->graph && !e->deleted) {
        cg = e->graph;
        cg->refs++;
    }
    pthread_mutex_unlock(&m->lock);
    return cg;
}

/* Caller holds the lock. */
static void unref_locked(kiln_manager *m, kiln_ctl_graph *cg)
{
    if (--cg->refs > 0)
        return;
    if (cg->bound == 0) {
        kiln_graph_free(cg->g);
        kiln_xfree(cg);
        return;
    }
    /* Workers that rendered it unbind it from their own states first. */
    cg->next_retired = m->retired;
    m->retired = cg;
}

void kiln_manager_graph_release(kiln_manager *m, kiln_ctl_graph *cg)
{
    if (!cg)
        return;
    pthread_mutex_lock(&m->lock);
    unref_locked(m, cg);
    pthread_mutex_unlock(&m->lock);
}

void kiln_manager_graph_install(kiln_manager *m, kiln_rgd_entry *e, kiln_graph *g)
{
    kiln_ctl_graph *cg = kiln_xcalloc(1, sizeof(*cg));
    cg->g = g;
    cg->refs = 1;
    pthread_mutex_lock(&m->lock);
    kiln_ctl_graph *old = e->graph;
    e->graph = cg;
    if (old) {
        old->retired = true;
        unref_locked(m, old);
    }
    pthread_mutex_unlock(&m->lock);
}

void kiln_manager_graph_drop(kiln_manager *m, kiln_rgd_entry *e)
{
    pthread_mutex_lock(&m->lock);
    kiln_ctl_graph *old = e->graph;
    e->graph = NULL;
    if (old) {
        old->retired = true;
        unref_locked(m, old);
    }
    pthread_mutex_unlock(&m->lock);
}

/* Unbinds retired graphs from this worker's state; frees those no worker
 * holds any more. */
static void reap_retired(kiln_worker *w)
{
    kiln_manager *m = w->mgr;
    uint64_t bit = (uint64_t)1 << w->index;
    pthread_mutex_lock(&m->lock);
    kiln_ctl_graph **pp = &m->retired;
    while (*pp) {
        kiln_ctl_graph *cg = *pp;
        if (cg->bound & bit) {
            kiln_graph_unbind(cg->g, w->L);
            cg->bound &= ~bit;
        }
        if (cg->bound == 0) {
            *pp = cg->next_retired;
            kiln_graph_free(cg->g);
            kiln_xfree(cg);
        } else {
            pp = &cg->next_retired;
        }
    }
    pthread_mutex_unlock(&m->lock);
}

kiln_kube_informer *kiln_manager_child_informer(kiln_manager *m, const char *group,
                                                const char *version, const char *resource,
                                                kiln_err *err)
{
    char *key = kiln_xasprintf("%s/%s/%s", group ? group : "", version, resource);
    kiln_kube_informer *inf = NULL;
    /* Namespace mode watches a namespaced kind in that namespace only (all
     * a namespaced install may list); cluster-scoped kinds stay cluster wide.
     * The scope comes from discovery, asked outside the lock (a miss
     * refreshes over the network) and only for a kind not watched yet. */
    const char *ns = NULL;
    if (m->namespace) {
        pthread_mutex_lock(&m->lock);
        bool watched = kiln_strmap_has(&m->children, key);
        pthread_mutex_unlock(&m->lock);
        if (!watched) {
            kiln_kube_resource_info ri;
            if (kiln_kube_discovery_resolve_resource(&ri, m->disc, group, version, resource, err) <
                0) {
                kiln_xfree(key);
                return NULL;
            }
            ns = ri.namespaced ? m->namespace : NULL;
        }
    }
    pthread_mutex_lock(&m->lock);
    inf = kiln_strmap_get(&m->children, key);
    if (!inf) {
        kiln_kube_informer_opts o = {0};
        o.ref.group = group;
        o.ref.version = version;
        o.ref.resource = resource;
        o.ref.namespace = ns;
        /* Only kiln's own objects: the cache stays small however big the
         * cluster is. */
        o.label_selector = KILN_LABEL_INSTANCE_UID;
        o.strip_managed_fields = true;
        o.handlers.on_add = child_event;
        o.handlers.on_update = child_update;
        o.handlers.on_delete = child_event;
        o.handlers.ctx = m;
        if (kiln_kube_informer_new(&inf, m->client, &o, err) < 0 ||
            kiln_kube_informer_start(inf, err) < 0) {
            kiln_kube_informer_free(inf);
            inf = NULL;
        } else {
            kiln_strmap_put(&m->children, key, inf);
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (inf && !kiln_kube_informer_wait_synced(inf, 10000)) {
        kiln_err_set(err, KILN_ETIMEOUT, "the cache of %s is not synced yet", key);
        inf = NULL;
    }
    kiln_xfree(key);
    return inf;
}

kiln_kube_informer **kiln_manager_child_informers(kiln_manager *m, size_t *n)
{
    pthread_mutex_lock(&m->lock);
    kiln_kube_informer **out = kiln_xcalloc(m->children.len + 1, sizeof(*out));
    size_t i = 0, b = 0;
    for (kiln_strmap_entry *e = kiln_strmap_next(&m->children, NULL, &b); e;
         e = kiln_strmap_next(&m->children, e, &b))
        out[i++] = e->value;
    *n = i;
    pthread_mutex_unlock(&m->lock);
    return out;
}

typedef struct ext_watch {
    kiln_manager *m;
    kiln_kube_informer *inf;
    kiln_strmap keys; /* queue keys of the instances that read it; guarded by m->lock */
} ext_watch;

static void ext_event(void *ctx, json_t *obj)
{
    (void)obj;
    ext_watch *x = ctx;
    kiln_manager *m = x->m;
    pthread_mutex_lock(&m->lock);
    size_t b = 0;
    for (kiln_strmap_entry *e = kiln_strmap_next(&x->keys, NULL, &b); e;
         e = kiln_strmap_next(&x->keys, e, &b))
        kiln_queue_add(m->queue, e->key);
    pthread_mutex_unlock(&m->lock);
}

static void ext_update(void *ctx, json_t *old_obj, json_t *obj)
{
    (void)old_obj;
    ext_event(ctx, obj);
}

/* The synced informer of an external watch (key: what it watches), started
 * on first use with o (its handlers' ctx is set here); its events queue
 * inst_key (borrowed, copied) from now on. NULL when it could not start or
 * sync within 10 s. */
static kiln_kube_informer *external_watch(kiln_manager *m, const char *key,
                                          kiln_kube_informer_opts *o, const char *inst_key)
{
    pthread_mutex_lock(&m->lock);
    ext_watch *x = kiln_strmap_get(&m->externals, key);
    if (!x) {
        x = kiln_xcalloc(1, sizeof(*x));
        x->m = m;
        kiln_strmap_init(&x->keys);
        o->strip_managed_fields = true;
        o->handlers.ctx = x;
        if (kiln_kube_informer_new(&x->inf, m->client, o, NULL) < 0 ||
            kiln_kube_informer_start(x->inf, NULL) < 0) {
            kiln_kube_informer_free(x->inf);
            x->inf = NULL;
        }
        kiln_strmap_put(&m->externals, key, x);
    }
    if (inst_key && !kiln_strmap_has(&x->keys, inst_key))
        kiln_strmap_put(&x->keys, inst_key, NULL);
    kiln_kube_informer *inf = x->inf;
    pthread_mutex_unlock(&m->lock);
    if (!inf || !kiln_kube_informer_wait_synced(inf, 10000))
        return NULL;
    return inf;
}

json_t *kiln_manager_external_get(kiln_manager *m, const char *group, const char *version,
                                  const char *resource, const char *ns, const char *name,
                                  const char *inst_key)
{
    char *key =
        kiln_xasprintf("%s/%s/%s/%s/%s", group ? group : "", version, resource, ns ? ns : "", name);
    char *field = kiln_xasprintf("metadata.name=%s", name);
    kiln_kube_informer_opts o = {0};
    o.ref.group = group;
    o.ref.version = version;
    o.ref.resource = resource;
    o.ref.namespace = ns && *ns ? ns : NULL;
    o.field_selector = field;
    o.handlers.on_add = ext_event;
    o.handlers.on_update = ext_update;
    o.handlers.on_delete = ext_event;
    kiln_kube_informer *inf = external_watch(m, key, &o, inst_key);
    kiln_xfree(field);
    kiln_xfree(key);
    return inf ? kiln_kube_informer_get(inf, ns && *ns ? ns : NULL, name) : NULL;
}

/* A node's heartbeat (status.conditions times, images) is not a change
 * validation cares about: only what selects it, its GPUs and readiness are. */
static bool node_status_ready(const json_t *node)
{
    size_t i;
    json_t *c;
    json_array_foreach(kiln_json_get_path(node, "status.conditions"), i, c)
    {
        const char *t = kiln_json_get_string(c, "type");
        if (t && strcmp(t, "Ready") == 0)
            return json_string_value(json_object_get(c, "status")) &&
                   strcmp(json_string_value(json_object_get(c, "status")), "True") == 0;
    }
    return false;
}

static void node_update(void *ctx, json_t *old_obj, json_t *obj)
{
    if (same_member(old_obj, obj, "metadata.labels") &&
        same_member(old_obj, obj, "status.allocatable") &&
        node_status_ready(old_obj) == node_status_ready(obj))
        return;
    ext_event(ctx, obj);
}

json_t *kiln_manager_nodes_list(kiln_manager *m, const char *label_selector, const char *inst_key)
{
    const char *sel = label_selector ? label_selector : "";
    char *key = kiln_xasprintf("/v1/nodes/?%s", sel);
    kiln_kube_informer_opts o = {0};
    o.ref.version = "v1";
    o.ref.resource = "nodes";
    o.label_selector = *sel ? sel : NULL;
    o.handlers.on_add = ext_event;
    o.handlers.on_update = node_update;
    o.handlers.on_delete = ext_event;
    kiln_kube_informer *inf = external_watch(m, key, &o, inst_key);
    kiln_xfree(key);
    json_t *list = NULL;
    if (!inf || kiln_kube_informer_list(&list, inf, NULL, NULL) < 0)
        return NULL;
    return list;
}

static void bury(kiln_manager *m, kiln_kube_informer *inf)
{
    /* Caller holds the lock. Workers may still read its cache. */
    m->dead = kiln_xrealloc(m->dead, (m->ndead + 1) * sizeof(*m->dead));
    m->dead[m->ndead++] = inf;
}

int kiln_manager_watch_instances(kiln_manager *m, kiln_rgd_entry *e, kiln_err *err)
{
    int rc = 0;
    kiln_kube_informer *inf = NULL;
    pthread_mutex_lock(&m->lock);
    if (e->instances || e->scope_skipped) {
        pthread_mutex_unlock(&m->lock);
        return 0;
    }
    /* Namespace mode serves a cluster-scoped kind without reconciling its
     * instances: no namespace owns them, so no namespace-scoped controller
     * may (one per namespace would otherwise all claim them). */
    if (m->namespace && e->cluster_scoped) {
        e->scope_skipped = true;
        pthread_mutex_unlock(&m->lock);
        KILN_LOG(KILN_LOG_INFO,
                 "rgd %s: instances of %s.%s are cluster-scoped and are not reconciled in "
                 "namespace mode (--namespace %s)",
                 e->name, e->kind, e->group, m->namespace);
        return 0;
    }
    pthread_mutex_unlock(&m->lock);

    inst_ctx *c = kiln_xcalloc(1, sizeof(*c));
    c->m = m;
    c->rgd = kiln_xstrdup(e->name);
    pthread_mutex_lock(&ctx_lock);
    inst_ctxs = kiln_xrealloc(inst_ctxs, (ninst_ctxs + 1) * sizeof(*inst_ctxs));
    inst_ctxs[ninst_ctxs++] = c;
    pthread_mutex_unlock(&ctx_lock);

    kiln_kube_informer_opts o = {0};
    o.ref.group = e->group;
    o.ref.version = e->version;
    o.ref.resource = e->resource;
    o.ref.namespace = m->namespace;
    o.strip_managed_fields = true;
    o.handlers.on_add = inst_event;
    o.handlers.on_update = inst_update;
    o.handlers.on_delete = inst_event;
    o.handlers.ctx = c;
    rc = kiln_kube_informer_new(&inf, m->client, &o, err);
    if (rc < 0)
        return rc;
    rc = kiln_kube_informer_start(inf, err);
    if (rc < 0) {
        kiln_kube_informer_free(inf);
        return rc;
    }
    pthread_mutex_lock(&m->lock);
    e->instances = inf;
    pthread_mutex_unlock(&m->lock);
    if (!kiln_kube_informer_wait_synced(inf, 10000))
        return kiln_err_set(err, KILN_ETIMEOUT, "the cache of %s.%s is not synced yet", e->resource,
                            e->group);
    return 0;
}

void kiln_manager_unwatch_instances(kiln_manager *m, kiln_rgd_entry *e)
{
    pthread_mutex_lock(&m->lock);
    kiln_kube_informer *inf = e->instances;
    e->instances = NULL;
    e->scope_skipped = false;
    if (inf)
        bury(m, inf);
    pthread_mutex_unlock(&m->lock);
    kiln_kube_informer_stop(inf);
}

void kiln_manager_enqueue_instances(kiln_manager *m, kiln_rgd_entry *e)
{
    pthread_mutex_lock(&m->lock);
    kiln_kube_informer *inf = e->instances;
    pthread_mutex_unlock(&m->lock);
    if (!inf)
        return;
    json_t *list = NULL;
    if (kiln_kube_informer_list(&list, inf, NULL, NULL) < 0)
        return;
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o) inst_event(&(inst_ctx){m, e->name}, o);
    json_decref(list);
}

/* ------------------------------------------------------------------------ */
/* workers                                                                    */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void process(kiln_worker *w, const char *key)
{
    kiln_manager *m = w->mgr;
    kiln_err err = {0};
    int64_t requeue = 0;
    int rc = 0;
    const char *controller = "instance";
    double t0 = mono_s();

    if (strncmp(key, "rgd:", 4) == 0) {
        controller = "rgd";
        rc = kiln_rgd_reconcile(w, key + 4, &requeue, &err);
    } else if (strncmp(key, "inst:", 5) == 0) {
        /* inst:<rgd>:<namespace>:<name>; none of the three holds ':'. */
        char *copy = kiln_xstrdup(key + 5);
        char *ns = strchr(copy, ':');
        char *name = ns ? strchr(ns + 1, ':') : NULL;
        if (name) {
            *ns++ = '\0';
            *name++ = '\0';
            rc = kiln_instance_reconcile(w, copy, ns, name, &requeue, &err);
        }
        kiln_xfree(copy);
    }
    const char *result = "success";
    if (rc < 0) {
        result = "error";
        /* A write against a cache a step behind our own last write is
         * routine: the retry reads the newer copy. */
        if (rc == KILN_ECONFLICT)
            KILN_LOG(KILN_LOG_INFO, "reconcile %s: %s (retrying with the newer copy)", key,
                     err.msg);
        else
            KILN_LOG(KILN_LOG_WARN, "reconcile %s: %s", key, err.msg);
        kiln_queue_add_rate_limited(m->queue, key);
    } else {
        kiln_queue_forget(m->queue, key);
        if (requeue > 0) {
            result = "requeue_after";
            kiln_queue_add_after(m->queue, key, requeue);
        }
    }
    kiln_metrics_reconcile(m->metrics, controller, result, mono_s() - t0);
}

static void *worker_main(void *arg)
{
    kiln_worker *w = arg;
    kiln_manager *m = w->mgr;
    char *key;
    while ((key = kiln_queue_get(m->queue, -1)) != NULL) {
        reap_retired(w);
        process(w, key);
        kiln_queue_done(m->queue, key);
        kiln_xfree(key);
    }
    /* Unbind every graph this worker rendered before its state goes. */
    uint64_t bit = (uint64_t)1 << w->index;
    pthread_mutex_lock(&m->lock);
    size_t b = 0;
    for (kiln_strmap_entry *e = kiln_strmap_next(&m->rgd_entries, NULL, &b); e;
         e = kiln_strmap_next(&m->rgd_entries, e, &b)) {
        kiln_rgd_entry *re = e->value;
        if (re->graph && (re->graph->bound & bit)) {
            kiln_graph_unbind(re->graph->g, w->L);
            re->graph->bound &= ~bit;
        }
    }
    pthread_mutex_unlock(&m->lock);
    reap_retired(w);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* run                                                                        */

static int start_informer(kiln_kube_informer **out, kiln_manager *m, const char *group,
                          const char *version, const char *resource, const char *selector,
                          kiln_kube_informer_handlers h, kiln_err *err)
{
    kiln_kube_informer_opts o = {0};
    o.ref.group = group;
    o.ref.version = version;
    o.ref.resource = resource;
    o.label_selector = selector;
    o.strip_managed_fields = true;
    o.handlers = h;
    int rc = kiln_kube_informer_new(out, m->client, &o, err);
    if (rc == 0)
        rc = kiln_kube_informer_start(*out, err);
    return rc;
}

static void *stop_one(void *inf)
{
    kiln_kube_informer_stop(inf);
    return NULL;
}

/* Stops informers in parallel: each may take up to a second to leave its
 * watch, and shutdown should not add those seconds up. */
static void stop_all(kiln_manager *m)
{
    size_t n = 0, cap = 2 + m->children.len + m->rgd_entries.len + m->externals.len;
    kiln_kube_informer **all = kiln_xcalloc(cap, sizeof(*all));
    if (m->rgds)
        all[n++] = m->rgds;
    if (m->crds)
        all[n++] = m->crds;
    size_t b = 0;
    for (kiln_strmap_entry *e = kiln_strmap_next(&m->children, NULL, &b); e;
         e = kiln_strmap_next(&m->children, e, &b))
        all[n++] = e->value;
    b = 0;
    for (kiln_strmap_entry *e = kiln_strmap_next(&m->rgd_entries, NULL, &b); e;
         e = kiln_strmap_next(&m->rgd_entries, e, &b)) {
        kiln_rgd_entry *re = e->value;
        if (re->instances)
            all[n++] = re->instances;
    }
    b = 0;
    for (kiln_strmap_entry *e = kiln_strmap_next(&m->externals, NULL, &b); e;
         e = kiln_strmap_next(&m->externals, e, &b)) {
        ext_watch *x = e->value;
        if (x->inf)
            all[n++] = x->inf;
    }
    pthread_t *t = kiln_xcalloc(n + 1, sizeof(*t));
    bool *ok = kiln_xcalloc(n + 1, sizeof(*ok));
    for (size_t i = 0; i < n; i++)
        ok[i] = pthread_create(&t[i], NULL, stop_one, all[i]) == 0;
    for (size_t i = 0; i < n; i++) {
        if (ok[i])
            pthread_join(t[i], NULL);
        else
            kiln_kube_informer_stop(all[i]);
    }
    kiln_xfree(ok);
    kiln_xfree(t);
    kiln_xfree(all);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int kiln_manager_run(kiln_kube_client *client, const kiln_manager_opts *opts,
                     const atomic_int *stop, kiln_err *err)
{
    int rc = 0;
    kiln_manager *m = kiln_xcalloc(1, sizeof(*m));
    kiln_leader *leader = NULL;
    kiln_metrics_server *metrics_srv = NULL, *health_srv = NULL;
    int started = 0;

    m->client = client;
    m->stop = stop;
    if (opts && opts->namespace && *opts->namespace)
        m->namespace = kiln_xstrdup(opts->namespace);
    if (opts && opts->gpucheck_image && *opts->gpucheck_image)
        m->gpucheck_image = kiln_xstrdup(opts->gpucheck_image);
    pthread_mutex_init(&m->lock, NULL);
    kiln_strmap_init(&m->rgd_entries);
    kiln_strmap_init(&m->children);
    kiln_strmap_init(&m->externals);
    m->nworkers = opts && opts->workers > 0 ? opts->workers : 4;
    if (m->nworkers > KILN_MAX_WORKERS)
        m->nworkers = KILN_MAX_WORKERS;
    if (opts && opts->identity) {
        snprintf(m->identity, sizeof(m->identity), "%s", opts->identity);
    } else {
        char host[200] = "kiln";
        gethostname(host, sizeof(host) - 1);
        snprintf(m->identity, sizeof(m->identity), "%s_%ld", host, (long)getpid());
    }
    kiln_kube_discovery_opts dopts = {.min_refresh_ms = 1000};
    m->disc = kiln_kube_discovery_new(client, &dopts);
    m->queue = kiln_queue_new(NULL);
    m->metrics = kiln_metrics_new(m);

    if (opts && opts->metrics_addr && *opts->metrics_addr && strcmp(opts->metrics_addr, "0")) {
        rc = kiln_metrics_serve(&metrics_srv, m, opts->metrics_addr, true, err);
        if (rc < 0)
            goto out;
    }
    if (opts && opts->health_addr && *opts->health_addr && strcmp(opts->health_addr, "0")) {
        rc = kiln_metrics_serve(&health_srv, m, opts->health_addr, false, err);
        if (rc < 0)
            goto out;
    }

    if (opts && opts->leader_elect) {
        /* A namespace-scoped install may hold rights in its namespace only:
         * the Lease lives there unless told otherwise. */
        const char *ns = opts->leader_namespace;
        if (!ns || !*ns)
            ns = m->namespace;
        if (!ns || !*ns)
            ns = kiln_kube_client_config(client)->namespace;
        rc = kiln_leader_start(&leader, client, ns ? ns : "default",
                               opts->leader_id ? opts->leader_id : "kiln-controller", m->identity,
                               err);
        if (rc < 0)
            goto out;
        KILN_LOG(KILN_LOG_INFO, "waiting for leadership of Lease %s/%s as %s", ns,
                 opts->leader_id ? opts->leader_id : "kiln-controller", m->identity);
        while (!atomic_load(stop) && !kiln_leader_is_leader(leader))
            sleep_ms(100);
        if (atomic_load(stop))
            goto out;
        KILN_LOG(KILN_LOG_INFO, "became leader");
    }
    kiln_metrics_set_leader(m->metrics, leader ? 1 : 0);

    rc = start_informer(&m->rgds, m, KILN_RGD_GROUP, KILN_RGD_VERSION, KILN_RGD_RESOURCE, NULL,
                        (kiln_kube_informer_handlers){rgd_event, rgd_update, rgd_event, m}, err);
    if (rc < 0)
        goto out;
    rc = start_informer(&m->crds, m, "apiextensions.k8s.io", "v1", "customresourcedefinitions",
                        KILN_LABEL_MANAGED_BY "=kiln",
                        (kiln_kube_informer_handlers){crd_event, crd_update, crd_event, m}, err);
    if (rc < 0)
        goto out;
    while (!atomic_load(stop) &&
           !(kiln_kube_informer_synced(m->rgds) && kiln_kube_informer_synced(m->crds)))
        sleep_ms(20);

    for (int i = 0; i < m->nworkers; i++) {
        kiln_worker *w = &m->workers[i];
        w->mgr = m;
        w->index = i;
        w->L = kiln_lua_new(NULL);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            kiln_lua_free(w->L);
            w->L = NULL;
            rc = kiln_err_set(err, KILN_EIO, "cannot start worker %d", i);
            break;
        }
        started++;
    }
    if (rc == 0) {
        atomic_store(&m->ready, 1);
        if (m->namespace)
            KILN_LOG(KILN_LOG_INFO,
                     "controller started with %d workers, reconciling instances in namespace %s "
                     "only",
                     m->nworkers, m->namespace);
        else
            KILN_LOG(KILN_LOG_INFO, "controller started with %d workers", m->nworkers);
    }
    while (rc == 0 && !atomic_load(stop)) {
        if (leader && kiln_leader_lost(leader)) {
            rc = kiln_err_set(err, KILN_ECONFLICT, "leader election lost");
            break;
        }
        sleep_ms(100);
    }

out:
    atomic_store(&m->ready, 0);
    KILN_LOG(KILN_LOG_INFO, "shutting down: draining the work queue");
    /* Drain: workers finish what is queued, then see NULL. */
    kiln_queue_shutdown(m->queue);
    for (int i = 0; i < started; i++) {
        pthread_join(m->workers[i].thread, NULL);
        kiln_lua_free(m->workers[i].L);
    }
    stop_all(m);
    kiln_kube_informer_free(m->rgds);
    kiln_kube_informer_free(m->crds);
    size_t b = 0;
    for (kiln_strmap_entry *e = kiln_strmap_next(&m->children, NULL, &b); e;
         e = kiln_strmap_next(&m->children, e, &b))
        kiln_kube_informer_free(e->value);
    kiln_strmap_clear(&m->children);
    b = 0;
    for (kiln_strmap_entry *e = kiln_strmap_next(&m->externals, NULL, &b); e;
         e = kiln_strmap_next(&m->externals, e, &b)) {
        ext_watch *x = e->value;
        kiln_kube_informer_free(x->inf);
        kiln_strmap_clear(&x->keys);
        kiln_xfree(x);
    }
    kiln_strmap_clear(&m->externals);
    b = 0;
    for (kiln_strmap_entry *e = kiln_strmap_next(&m->rgd_entries, NULL, &b); e;
         e = kiln_strmap_next(&m->rgd_entries, e, &b)) {
        kiln_rgd_entry *re = e->value;
        kiln_kube_informer_free(re->instances);
        if (re->graph) {
            kiln_graph_free(re->graph->g);
            kiln_xfree(re->graph);
        }
        kiln_xfree(re->compile_error);
        kiln_xfree(re->name);
        kiln_xfree(re);
    }
    kiln_strmap_clear(&m->rgd_entries);
    for (size_t i = 0; i < m->ndead; i++)
        kiln_kube_informer_free(m->dead[i]);
    kiln_xfree(m->dead);
    while (m->retired) {
        kiln_ctl_graph *cg = m->retired;
        m->retired = cg->next_retired;
        kiln_graph_free(cg->g);
        kiln_xfree(cg);
    }
    pthread_mutex_lock(&ctx_lock);
    for (size_t i = 0; i < ninst_ctxs; i++) {
        kiln_xfree(inst_ctxs[i]->rgd);
        kiln_xfree(inst_ctxs[i]);
    }
    kiln_xfree(inst_ctxs);
    inst_ctxs = NULL;
    ninst_ctxs = 0;
    pthread_mutex_unlock(&ctx_lock);
    kiln_leader_stop(leader);
    kiln_metrics_server_stop(metrics_srv);
    kiln_metrics_server_stop(health_srv);
    kiln_metrics_free(m->metrics);
    kiln_queue_free(m->queue);
    kiln_kube_discovery_free(m->disc);
    pthread_mutex_destroy(&m->lock);
    kiln_xfree(m->gpucheck_image);
    kiln_xfree(m->namespace);
    kiln_xfree(m);
    return rc;
}
