/* devcluster/controllers.c: what the control plane's controllers and the
 * kubelet would do, simulated in one background thread:
 *
 * - kubelet: Deployments, StatefulSets, DaemonSets, ReplicaSets,
 *   LeaderWorkerSets and Pods become ready and Jobs succeed after
 *   opts.kubelet_delay_ms, with the status fields and conditions the real
 *   controllers write (no child Pods or ReplicaSets are created). Every object
 *   it touches is labelled kiln.dev/simulated: "true". Jobs whose pods run
 *   the kiln-gpucheck image are the exception: jobs.c creates their pod and
 *   runs the local binary.
 * - garbage collector: dependents whose owners (by uid) are all gone are
 *   deleted; foreground deletion waits for dependents; orphan strips the
 *   ownerReferences.
 * - namespace controller: a deleted namespace's contents are deleted, then
 *   the namespace.
 * - nodes: one CPU node, plus GPU nodes from --simulate-gpus carrying the
 *   labels and capacity NVIDIA's GPU operator sets; with --real-gpus the CPU
 *   node gets the same for the machine's own GPUs (probed in realgpus.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"
#include "devcluster/internal.h"

#define SIM_LABEL "kiln.dev/simulated"

void kiln_dc_ctl_init(kiln_devcluster *dc)
{
    pthread_cond_init(&dc->ctl_cond, NULL);
    dc->ctl_pending = json_object();
    dc->ctl_dirty_keys = json_object();
    kiln_dc_jobs_init(dc);
}

void kiln_dc_ctl_kick(kiln_devcluster *dc)
{
    if (dc->ctl_waiting)
        pthread_cond_signal(&dc->ctl_cond);
}

/* ---------------- kubelet ---------------- */

static json_int_t spec_int(const json_t *obj, const char *field, json_int_t dflt)
{
    json_t *v = json_object_get(json_object_get(obj, "spec"), field);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/* A condition keeping lastTransitionTime when its status did not change. */
static json_t *cond(const json_t *old_status, const char *type, const char *status,
                    const char *reason, const char *message, bool update_time)
{
    char ts[32];
    kiln_dc_timestamp(ts);
    const char *lt = ts, *lu = ts;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(old_status, "conditions"), i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        const char *s = json_string_value(json_object_get(c, "status"));
        if (t && s && !strcmp(t, type) && !strcmp(s, status)) {
            lt = json_string_value(json_object_get(c, "lastTransitionTime")) ?: ts;
            lu = json_string_value(json_object_get(c, "lastUpdateTime")) ?: ts;
        }
    }
    json_t *out = json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", type, "status", status, "reason",
                            reason, "message", message, "lastTransitionTime", lt);
    if (update_time)
        json_object_set_new(out, "lastUpdateTime", json_string(lu));
    return out;
}

static void set_if(json_t *st, const char *k, json_int_t v)
{
    if (v)
        json_object_set_new(st, k, json_integer(v));
}

static json_int_t count_nodes(kiln_devcluster *dc)
{
    kiln_dc_resource *nodes = kiln_dc_kinds_find(dc, "", "v1", "nodes");
    return nodes ? (json_int_t)nodes->objects.count : 0;
}

/* The status a controller would converge to, or NULL when the kind is not simulated. */
static json_t *desired_status(kiln_devcluster *dc, const kiln_dc_resource *r, const json_t *obj)
{
    const json_t *old = json_object_get(obj, "status");
    json_int_t gen =
        json_integer_value(json_object_get(json_object_get(obj, "metadata"), "generation"));
    const char *name = kiln_dc_meta_str(obj, "name");
    const char *uid = kiln_dc_meta_str(obj, "uid");
    char hash[16];
    snprintf(hash, sizeof hash, "%.10s", uid ? uid : "0000000000");
    for (char *p = hash; *p; p++)
        if (*p == '-')
            *p = 'x';
    json_t *st = json_object();
    if (!strcmp(r->group, "apps") && !strcmp(r->plural, "deployments")) {
        json_int_t n = spec_int(obj, "replicas", 1);
        json_object_set_new(st, "observedGeneration", json_integer(gen));
        set_if(st, "replicas", n);
        set_if(st, "updatedReplicas", n);
        set_if(st, "readyReplicas", n);
        set_if(st, "availableReplicas", n);
        char msg[400];
        snprintf(msg, sizeof msg, "ReplicaSet \"%s-%s\" has successfully progressed.", name, hash);
        json_object_set_new(
            st, "conditions",
            json_pack("[o,o]",
                      cond(old, "Available", "True", "MinimumReplicasAvailable",
                           "Deployment has minimum availability.", true),
                      cond(old, "Progressing", "True", "NewReplicaSetAvailable", msg, true)));
    } else if (!strcmp(r->group, "apps") && !strcmp(r->plural, "statefulsets")) {
        json_int_t n = spec_int(obj, "replicas", 1);
        char rev[300];
        snprintf(rev, sizeof rev, "%s-%s", name, hash);
        json_object_set_new(st, "observedGeneration", json_integer(gen));
        json_object_set_new(st, "replicas", json_integer(n));
        set_if(st, "readyReplicas", n);
        set_if(st, "currentReplicas", n);
        set_if(st, "updatedReplicas", n);
        set_if(st, "availableReplicas", n);
        json_object_set_new(st, "currentRevision", json_string(rev));
        json_object_set_new(st, "updateRevision", json_string(rev));
        json_object_set_new(st, "collisionCount", json_integer(0));
    } else if (!strcmp(r->group, "apps") && !strcmp(r->plural, "daemonsets")) {
        json_int_t n = count_nodes(dc);
        json_object_set_new(st, "currentNumberScheduled", json_integer(n));
        json_object_set_new(st, "desiredNumberScheduled", json_integer(n));
        json_object_set_new(st, "numberMisscheduled", json_integer(0));
        json_object_set_new(st, "numberReady", json_integer(n));
        set_if(st, "numberAvailable", n);
        set_if(st, "updatedNumberScheduled", n);
        json_object_set_new(st, "observedGeneration", json_integer(gen));
    } else if (!strcmp(r->group, "apps") && !strcmp(r->plural, "replicasets")) {
        json_int_t n = spec_int(obj, "replicas", 1);
        json_object_set_new(st, "replicas", json_integer(n));
        set_if(st, "fullyLabeledReplicas", n);
        set_if(st, "readyReplicas", n);
        set_if(st, "availableReplicas", n);
        json_object_set_new(st, "observedGeneration", json_integer(gen));
    } else if (!strcmp(r->group, "batch") && !strcmp(r->plural, "jobs")) {
        if (json_is_true(json_object_get(json_object_get(obj, "spec"), "suspend"))) {
            json_decref(st);
            return NULL;
        }
        char ts[32];
        kiln_dc_timestamp(ts);
        const char *start = json_string_value(json_object_get(old, "startTime")) ?: ts;
        const char *done = json_string_value(json_object_get(old, "completionTime")) ?: ts;
        json_object_set_new(st, "startTime", json_string(start));
        json_object_set_new(st, "completionTime", json_string(done));
        json_object_set_new(st, "succeeded", json_integer(spec_int(obj, "completions", 1)));
        json_object_set_new(st, "ready", json_integer(0));
        json_object_set_new(st, "terminating", json_integer(0));
        json_object_set_new(st, "uncountedTerminatedPods", json_object());
        json_object_set_new(st, "conditions",
                            json_pack("[o,o]",
                                      cond(old, "SuccessCriteriaMet", "True", "CompletionsReached",
                                           "Reached expected number of succeeded pods", false),
                                      cond(old, "Complete", "True", "CompletionsReached",
                                           "Reached expected number of succeeded pods", false)));
    } else if (!r->group[0] && !strcmp(r->plural, "pods")) {
        char ts[32];
        kiln_dc_timestamp(ts);
        const char *start = json_string_value(json_object_get(old, "startTime")) ?: ts;
        unsigned long long h = 0;
        for (const char *p = uid ? uid : ""; *p; p++)
            h = h * 31 + (unsigned char)*p;
        char ip[32];
        snprintf(ip, sizeof ip, "10.244.%llu.%llu", (h >> 8) % 250, h % 250 + 2);
        json_t *cs = json_array();
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(json_object_get(obj, "spec"), "containers"), i, c)
        {
            const char *cn = json_string_value(json_object_get(c, "name")) ?: "";
            char cid[128];
            snprintf(cid, sizeof cid, "kiln://%.36s-%.40s", uid ? uid : "", cn);
            const char *started = start;
            json_array_append_new(
                cs, json_pack("{s:s,s:s,s:s,s:s,s:b,s:b,s:i,s:{s:{s:s}}}", "name", cn, "image",
                              json_string_value(json_object_get(c, "image")) ?: "", "imageID", "",
                              "containerID", cid, "ready", 1, "started", 1, "restartCount", 0,
                              "state", "running", "startedAt", started));
        }
        json_object_set_new(st, "phase", json_string("Running"));
        json_object_set_new(
            st, "conditions",
            json_pack("[o,o,o,o,o]",
                      cond(old, "PodReadyToStartContainers", "True", "Simulated", "", false),
                      cond(old, "Initialized", "True", "Simulated", "", false),
                      cond(old, "Ready", "True", "Simulated", "", false),
                      cond(old, "ContainersReady", "True", "Simulated", "", false),
                      cond(old, "PodScheduled", "True", "Simulated", "", false)));
        json_object_set_new(st, "hostIP", json_string("10.0.0.1"));
        json_object_set_new(st, "podIP", json_string(ip));
        json_object_set_new(st, "podIPs", json_pack("[{s:s}]", "ip", ip));
        json_object_set_new(st, "startTime", json_string(start));
        json_object_set_new(st, "qosClass", json_string("BestEffort"));
        json_object_set_new(st, "containerStatuses", cs);
    } else if (!strcmp(r->group, "leaderworkerset.x-k8s.io") &&
               !strcmp(r->plural, "leaderworkersets")) {
        json_int_t n = spec_int(obj, "replicas", 1);
        json_object_set_new(st, "replicas", json_integer(n));
        json_object_set_new(st, "readyReplicas", json_integer(n));
        json_object_set_new(st, "updatedReplicas", json_integer(n));
        json_object_set_new(
            st, "conditions",
            json_pack(
                "[o,o]",
                cond(old, "Available", "True", "AllGroupsReady", "All replicas are ready", false),
                cond(old, "Progressing", "False", "Ready", "Replicas are progressing", false)));
    } else {
        json_decref(st);
        return NULL;
    }
    return st;
}

static bool simulated_kind(const kiln_dc_resource *r)
{
    if (!strcmp(r->group, "apps"))
        return !strcmp(r->plural, "deployments") || !strcmp(r->plural, "statefulsets") ||
               !strcmp(r->plural, "daemonsets") || !strcmp(r->plural, "replicasets");
    if (!strcmp(r->group, "batch"))
        return !strcmp(r->plural, "jobs");
    if (!r->group[0])
        return !strcmp(r->plural, "pods");
    return !strcmp(r->group, "leaderworkerset.x-k8s.io") && !strcmp(r->plural, "leaderworkersets");
}

/* Runs the kubelet over every simulated kind; returns ms until the next due item (or -1). */
static void mark(kiln_devcluster *dc, const kiln_dc_resource *r, const char *key)
{
    char ck[800];
    snprintf(ck, sizeof ck, "%s|%s|%s|%s", r->group, r->version, r->plural, key);
    json_object_set_new(dc->ctl_dirty_keys, ck, json_true());
}

void kiln_dc_ctl_note(kiln_devcluster *dc, const kiln_dc_resource *r, const char *key)
{
    if (!dc->ctl_dirty_keys)
        return;
    if (simulated_kind(r)) {
        mark(dc, r, key);
    } else if (!r->group[0] && !strcmp(r->plural, "nodes")) {
        kiln_dc_jobs_note_node(dc);
        /* DaemonSets size themselves by the node count. */
        kiln_dc_resource *ds = kiln_dc_kinds_find(dc, "apps", "v1", "daemonsets");
        for (size_t b = 0; ds && b < ds->objects.nbuckets; b++)
            for (kiln_dc_object *o = ds->objects.buckets[b]; o; o = o->next)
                mark(dc, ds, o->key);
    }
}

static void mark_all(kiln_devcluster *dc)
{
    for (size_t i = 0; i < dc->nres; i++) {
        kiln_dc_resource *r = dc->res[i];
        if (!simulated_kind(r))
            continue;
        for (size_t b = 0; b < r->objects.nbuckets; b++)
            for (kiln_dc_object *o = r->objects.buckets[b]; o; o = o->next)
                mark(dc, r, o->key);
    }
}

/* Runs the kubelet over objects written since the last pass and those waiting
 * for their delay; returns ms until the next one is due (or -1). */
static int64_t kubelet_pass(kiln_devcluster *dc)
{
    int64_t now = kiln_dc_now_ms();
    int64_t next = -1;
    json_t *work = json_object();
    json_object_update(work, dc->ctl_dirty_keys);
    json_object_clear(dc->ctl_dirty_keys);
    json_object_update_missing(work, dc->ctl_pending);
    const char *ck;
    json_t *unused;
    json_object_foreach(work, ck, unused)
    {
        char g[256], v[64], pl[256], key[600];
        if (sscanf(ck, "%255[^|]|%63[^|]|%255[^|]|%599[^\n]", g, v, pl, key) != 4 &&
            (ck[0] != '|' || sscanf(ck, "|%63[^|]|%255[^|]|%599[^\n]", v, pl, key) != 3))
            continue;
        if (ck[0] == '|')
            g[0] = '\0';
        kiln_dc_resource *r = kiln_dc_kinds_find(dc, g, v, pl);
        const char *pk = ck;
        {
            char ns[256];
            const char *name;
            kiln_dc_key_split(key, ns, sizeof ns, &name);
            kiln_dc_object *o = r ? kiln_dc_store_get(r, ns, name) : NULL;
            if (!o || strstr(o->json, "\"deletionTimestamp\"")) {
                json_object_del(dc->ctl_pending, pk);
                continue;
            }
            json_t *obj = kiln_dc_store_load(o);
            if (kiln_dc_jobs_sync(dc, r, obj)) {
                json_object_del(dc->ctl_pending, pk);
                json_decref(obj);
                continue;
            }
            json_t *want = desired_status(dc, r, obj);
            bool pod_unbound =
                !r->group[0] && !json_object_get(json_object_get(obj, "spec"), "nodeName");
            json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
            bool labelled = json_object_get(labels, SIM_LABEL) != NULL;
            if (!want ||
                (json_equal(want, json_object_get(obj, "status")) && !pod_unbound && labelled)) {
                json_object_del(dc->ctl_pending, pk);
                json_decref(want);
                json_decref(obj);
                continue;
            }
            json_t *seen = json_object_get(dc->ctl_pending, pk);
            if (!seen) {
                seen = json_integer(now);
                json_object_set_new(dc->ctl_pending, pk, seen);
            }
            int64_t due = json_integer_value(seen) + dc->opts.kubelet_delay_ms;
            if (due > now) {
                if (next < 0 || due - now < next)
                    next = due - now;
                json_decref(want);
                json_decref(obj);
                continue;
            }
            json_object_del(dc->ctl_pending, pk);
            if (!json_is_object(labels)) {
                labels = json_object();
                json_object_set_new(json_object_get(obj, "metadata"), "labels", labels);
            }
            json_object_set_new(labels, SIM_LABEL, json_string("true"));
            if (pod_unbound) {
                /* Scheduling: the binding writes spec.nodeName before the kubelet runs. */
                kiln_dc_resource *nodes = kiln_dc_kinds_find(dc, "", "v1", "nodes");
                size_t nn = 0;
                kiln_dc_object **ns_objs = kiln_dc_store_sorted(nodes, &nn);
                const char *node = "kiln-dev";
                char nbuf[256];
                if (nn) {
                    char nsb[8];
                    const char *nname;
                    kiln_dc_key_split(ns_objs[0]->key, nsb, sizeof nsb, &nname);
                    snprintf(nbuf, sizeof nbuf, "%s", nname);
                    node = nbuf;
                }
                kiln_xfree(ns_objs);
                json_t *spec = json_object_get(obj, "spec");
                if (json_is_object(spec))
                    json_object_set_new(spec, "nodeName", json_string(node));
                json_t *copy = json_deep_copy(obj);
                json_object_del(copy, "status");
                kiln_dc_write_internal(dc, r, copy, false);
                o = kiln_dc_store_get(r, ns, name);
                if (!o) {
                    json_decref(want);
                    json_decref(obj);
                    continue;
                }
                json_decref(obj);
                obj = kiln_dc_store_load(o);
                labels = json_object_get(json_object_get(obj, "metadata"), "labels");
            }
            json_object_set_new(obj, "status", want);
            kiln_dc_write_internal(dc, r, obj, r->status_sub);
        }
    }
    json_decref(work);
    return next;
}

/* ---------------- garbage collector and namespaces ---------------- */

typedef struct ref {
    kiln_dc_resource *r;
    char *key;
} ref;

static bool has_finalizer(const json_t *obj, const char *f)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "finalizers"), i, e)
    {
        if (json_is_string(e) && !strcmp(json_string_value(e), f))
            return true;
    }
    return false;
}

static void remove_finalizer(kiln_devcluster *dc, kiln_dc_resource *r, json_t *obj, const char *f)
{
    json_t *fs = json_object_get(json_object_get(obj, "metadata"), "finalizers");
    for (size_t i = json_array_size(fs); i-- > 0;)
        if (!strcmp(json_string_value(json_array_get(fs, i)) ?: "", f))
            json_array_remove(fs, i);
    kiln_dc_write_internal(dc, r, json_incref(obj), false);
}

/* State of the object an ownerReference names: 0 gone (or another uid),
 * 1 live, 2 deleting in the foreground, 3 deleting with orphan. Looked up by
 * kind and name, then checked by uid, as the real garbage collector does. */
static int owner_state(kiln_devcluster *dc, const json_t *owner, const char *dep_ns)
{
    const char *av = json_string_value(json_object_get(owner, "apiVersion"));
    const char *kind = json_string_value(json_object_get(owner, "kind"));
    const char *name = json_string_value(json_object_get(owner, "name"));
    const char *uid = json_string_value(json_object_get(owner, "uid"));
    if (!av || !kind || !name || !uid)
        return 0;
    char group[256] = "";
    const char *slash = strchr(av, '/');
    if (slash && (size_t)(slash - av) < sizeof group)
        memcpy(group, av, (size_t)(slash - av));
    kiln_dc_resource *r = kiln_dc_kinds_find_kind(dc, group, kind);
    kiln_dc_object *o = r ? kiln_dc_store_get(r, r->namespaced ? dep_ns : "", name) : NULL;
    if (!o)
        return 0;
    json_t *obj = kiln_dc_store_load(o);
    int state = 0;
    const char *have = kiln_dc_meta_str(obj, "uid");
    if (have && !strcmp(have, uid)) {
        bool deleting = json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp");
        state = 1;
        if (deleting && has_finalizer(obj, "foregroundDeletion"))
            state = 2;
        else if (deleting && has_finalizer(obj, "orphan"))
            state = 3;
    }
    json_decref(obj);
    return state;
}

static void gc_pass(kiln_devcluster *dc)
{
    /* Candidates are found by text, without parsing every object. */
    json_t *deps = json_array(); /* [{r: resource index, k: key}] of objects with owners */
    for (size_t i = 0; i < dc->nres; i++) {
        kiln_dc_resource *r = dc->res[i];
        for (size_t b = 0; b < r->objects.nbuckets; b++)
            for (kiln_dc_object *o = r->objects.buckets[b]; o; o = o->next)
                if (strstr(o->json, "\"ownerReferences\""))
                    json_array_append_new(deps,
                                          json_pack("{s:I,s:s}", "r", (json_int_t)i, "k", o->key));
    }
    json_t *waiting = json_object(); /* owner uids that still have dependents */
    size_t i;
    json_t *d;
    json_array_foreach(deps, i, d)
    {
        size_t ri = (size_t)json_integer_value(json_object_get(d, "r"));
        if (ri >= dc->nres)
            continue;
        kiln_dc_resource *r = dc->res[ri];
        char ns[256];
        const char *name;
        kiln_dc_key_split(json_string_value(json_object_get(d, "k")), ns, sizeof ns, &name);
        kiln_dc_object *o = kiln_dc_store_get(r, ns, name);
        if (!o)
            continue;
        json_t *obj = kiln_dc_store_load(o);
        json_t *owners = json_object_get(json_object_get(obj, "metadata"), "ownerReferences");
        size_t live = 0, foreground = 0, j;
        bool orphaned = false;
        json_t *ow;
        for (j = json_array_size(owners); j-- > 0;) {
            ow = json_array_get(owners, j);
            const char *ouid = json_string_value(json_object_get(ow, "uid"));
            int state = owner_state(dc, ow, ns);
            if (state == 1)
                live++;
            if (state == 2) {
                foreground++;
                json_object_set_new(waiting, ouid, json_true());
            }
            if (state == 3) {
                json_array_remove(owners, j);
                orphaned = true;
            }
        }
        if (orphaned) {
            if (json_array_size(owners) == 0)
                json_object_del(json_object_get(obj, "metadata"), "ownerReferences");
            kiln_dc_write_internal(dc, r, json_incref(obj), false);
        } else if (live == 0 && !strstr(o->json, "\"deletionTimestamp\"")) {
            /* Every owner is gone or going in the foreground: delete the dependent. */
            kiln_dc_delete_internal(dc, r, ns, name, foreground ? "Foreground" : "Background");
        }
        json_decref(obj);
    }
    /* Owners waiting in foreground/orphan deletion whose dependents are done. */
    for (size_t k = 0; k < dc->nres; k++) {
        kiln_dc_resource *r = dc->res[k];
        size_t n = 0;
        kiln_dc_object **objs = kiln_dc_store_sorted(r, &n);
        ref *todo = kiln_xcalloc(n + 1, sizeof *todo);
        size_t nt = 0;
        for (size_t m = 0; m < n; m++)
            if (strstr(objs[m]->json, "\"deletionTimestamp\""))
                todo[nt++] = (ref){r, kiln_xstrdup(objs[m]->key)};
        kiln_xfree(objs);
        for (size_t m = 0; m < nt; m++) {
            char ns[256];
            const char *name;
            kiln_dc_key_split(todo[m].key, ns, sizeof ns, &name);
            kiln_dc_object *o = kiln_dc_store_get(r, ns, name);
            if (o) {
                json_t *obj = kiln_dc_store_load(o);
                const char *uid = kiln_dc_meta_str(obj, "uid");
                if (has_finalizer(obj, "foregroundDeletion") && uid &&
                    !json_object_get(waiting, uid))
                    remove_finalizer(dc, r, obj, "foregroundDeletion");
                else if (has_finalizer(obj, "orphan"))
                    remove_finalizer(dc, r, obj, "orphan");
                json_decref(obj);
            }
            kiln_xfree(todo[m].key);
        }
        kiln_xfree(todo);
    }
    json_decref(waiting);
    json_decref(deps);
}

static void namespace_pass(kiln_devcluster *dc)
{
    kiln_dc_resource *nsr = kiln_dc_kinds_find(dc, "", "v1", "namespaces");
    size_t n = 0;
    kiln_dc_object **objs = kiln_dc_store_sorted(nsr, &n);
    char **names = kiln_xcalloc(n + 1, sizeof *names);
    size_t nn = 0;
    for (size_t i = 0; i < n; i++)
        if (strstr(objs[i]->json, "\"deletionTimestamp\""))
            names[nn++] = kiln_xstrdup(objs[i]->key + 1);
    kiln_xfree(objs);
    for (size_t i = 0; i < nn; i++) {
        size_t left = 0;
        for (size_t k = 0; k < dc->nres; k++) {
            kiln_dc_resource *r = dc->res[k];
            if (!r->namespaced)
                continue;
            size_t m = 0;
            kiln_dc_object **all = kiln_dc_store_sorted(r, &m);
            char **keys = kiln_xcalloc(m + 1, sizeof *keys);
            size_t nk = 0;
            for (size_t j = 0; j < m; j++) {
                char ns[256];
                const char *name;
                kiln_dc_key_split(all[j]->key, ns, sizeof ns, &name);
                if (!strcmp(ns, names[i]))
                    keys[nk++] = kiln_xstrdup(name);
            }
            kiln_xfree(all);
            for (size_t j = 0; j < nk; j++) {
                kiln_dc_delete_internal(dc, r, names[i], keys[j], "Background");
                if (kiln_dc_store_get(r, names[i], keys[j]))
                    left++;
                kiln_xfree(keys[j]);
            }
            kiln_xfree(keys);
        }
        if (left == 0) {
            kiln_dc_object *o = kiln_dc_store_get(nsr, "", names[i]);
            if (o) {
                json_t *obj = kiln_dc_store_load(o);
                kiln_dc_store_delete(dc, nsr, obj);
                json_decref(obj);
            }
        }
        kiln_xfree(names[i]);
    }
    kiln_xfree(names);
}

static void *ctl_main(void *arg)
{
    kiln_devcluster *dc = arg;
    pthread_mutex_lock(&dc->mu);
    int64_t wait_ms = 1000;
    while (!dc->stopping) {
        if (!dc->ctl_dirty && !dc->gc_dirty) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += wait_ms / 1000;
            ts.tv_nsec += (wait_ms % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            dc->ctl_waiting = true;
            pthread_cond_timedwait(&dc->ctl_cond, &dc->mu, &ts);
            dc->ctl_waiting = false;
            if (dc->stopping)
                break;
        }
        dc->ctl_dirty = false;
        int64_t next = -1;
        if (!dc->opts.no_kubelet) {
            next = kubelet_pass(dc);
            int64_t jobs_next = kiln_dc_jobs_tick(dc);
            if (jobs_next >= 0 && (next < 0 || jobs_next < next))
                next = jobs_next;
        }
        for (int round = 0; dc->gc_dirty && round < 8; round++) {
            dc->gc_dirty = false;
            namespace_pass(dc);
            gc_pass(dc);
        }
        wait_ms = next >= 0 ? (next < 1 ? 1 : next) : 1000;
        /* Writes made here set ctl_dirty again; settle once they are ours only. */
        dc->ctl_dirty = false;
        /* Coalesce bursts: at most one pass per 5 ms. */
        pthread_mutex_unlock(&dc->mu);
        struct timespec nap = {0, 5 * 1000000};
        nanosleep(&nap, NULL);
        pthread_mutex_lock(&dc->mu);
    }
    pthread_mutex_unlock(&dc->mu);
    return NULL;
}

int kiln_dc_ctl_start(kiln_devcluster *dc, kiln_err *err)
{
    /* Objects restored from --data-dir get a first look. */
    pthread_mutex_lock(&dc->mu);
    mark_all(dc);
    pthread_mutex_unlock(&dc->mu);
    if (pthread_create(&dc->ctl_thread, NULL, ctl_main, dc) != 0)
        return kiln_err_set(err, KILN_EIO, "cannot start the controller thread");
    dc->ctl_running = true;
    return 0;
}

void kiln_dc_ctl_stop(kiln_devcluster *dc)
{
    if (dc->ctl_running) {
        pthread_mutex_lock(&dc->mu);
        dc->stopping = true;
        pthread_cond_broadcast(&dc->ctl_cond);
        pthread_mutex_unlock(&dc->mu);
        pthread_join(dc->ctl_thread, NULL);
        dc->ctl_running = false;
    }
    kiln_dc_jobs_stop(dc);
    pthread_cond_destroy(&dc->ctl_cond);
    json_decref(dc->ctl_pending);
    dc->ctl_pending = NULL;
    json_decref(dc->ctl_dirty_keys);
    dc->ctl_dirty_keys = NULL;
}

/* ---------------- nodes ---------------- */

typedef struct gpu_model {
    const char *key, *product;
    int memory_mib, cc_major, cc_minor;
} gpu_model;

static const gpu_model models[] = {
    {"h100", "NVIDIA-H100-80GB-HBM3", 81559, 9, 0},
    {"h200", "NVIDIA-H200", 143771, 9, 0},
    {"a100", "NVIDIA-A100-SXM4-80GB", 81920, 8, 0},
    {"l40s", "NVIDIA-L40S", 46068, 8, 9},
    {"l4", "NVIDIA-L4", 23034, 8, 9},
    {"b200", "NVIDIA-B200", 183359, 10, 0},
    {"gb200", "NVIDIA-GB200", 189471, 10, 0},
};

#define GPUS_GRAMMAR                                                                               \
    "expected <model>x<gpus>[:<nodes>][:slow|:notready|:fail=<check>+<check>...], e.g. "           \
    "h100x8:2 or h100x8:1:slow"

/* What an item adds to its nodes: a failing card, a node that runs nothing. */
typedef struct gpu_faults {
    bool notready;
    char fail[160];   /* checks for kiln-gpucheck --simulate-fail, comma separated */
    char suffix[200]; /* "-slow", "-fail-gemm", "-notready": distinct node names */
} gpu_faults;

static bool known_check(const char *name, size_t n)
{
    static const char *const checks[] = {"device", "memory", "hbm-bandwidth",
                                         "gemm",   "pcie",   "p2p"};
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
        if (strlen(checks[i]) == n && !strncmp(checks[i], name, n))
            return true;
    return false;
}

static void add_fail(gpu_faults *f, const char *check, size_t n)
{
    size_t len = strlen(f->fail);
    for (const char *c = f->fail; (c = strstr(c, check)) != NULL; c++)
        if (!strncmp(c, check, n) && (c == f->fail || c[-1] == ',') && (!c[n] || c[n] == ','))
            return;
    snprintf(f->fail + len, sizeof f->fail - len, "%s%.*s", len ? "," : "", (int)n, check);
}

/* Parses one item, "h100x8", "h100x8:2" or "h100x8:2:slow:fail=p2p". */
static int parse_item(const char *item, const gpu_model **model, int *gpus, int *nodes,
                      gpu_faults *faults, kiln_err *err)
{
    char buf[256];
    memset(faults, 0, sizeof *faults);
    if (strlen(item) >= sizeof buf)
        return kiln_err_set(err, KILN_EINVAL,
                            "--simulate-gpus: \"%.40s...\": too long; " GPUS_GRAMMAR, item);
    snprintf(buf, sizeof buf, "%s", item);
    char *colon = strchr(buf, ':');
    *nodes = 1;
    if (colon)
        *colon = '\0';
    char *x = strrchr(buf, 'x');
    char *end = NULL;
    if (!x || x == buf)
        return kiln_err_set(err, KILN_EINVAL, "--simulate-gpus: \"%s\": " GPUS_GRAMMAR, item);
    *x = '\0';
    *gpus = (int)strtol(x + 1, &end, 10);
    if (end == x + 1 || *end)
        return kiln_err_set(err, KILN_EINVAL,
                            "--simulate-gpus: \"%s\": \"%s\" is not a GPU count; " GPUS_GRAMMAR,
                            item, x + 1);
    *model = NULL;
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        if (!strcmp(models[i].key, buf))
            *model = &models[i];
    if (!*model)
        return kiln_err_set(err, KILN_EINVAL,
                            "--simulate-gpus: \"%s\": unknown GPU model \"%s\" (known: h100, h200, "
                            "a100, l40s, l4, b200, gb200)",
                            item, buf);
    bool slow = false;
    for (int pos = 0; colon; pos++) {
        char *part = colon + 1;
        colon = strchr(part, ':');
        if (colon)
            *colon = '\0';
        if (pos == 0 && *part >= '0' && *part <= '9') {
            *nodes = (int)strtol(part, &end, 10);
            if (*end)
                return kiln_err_set(
                    err, KILN_EINVAL,
                    "--simulate-gpus: \"%s\": \"%s\" is not a node count; " GPUS_GRAMMAR, item,
                    part);
        } else if (!strcmp(part, "slow")) {
            slow = true;
            add_fail(faults, "hbm-bandwidth", 13);
            add_fail(faults, "gemm", 4);
        } else if (!strcmp(part, "notready")) {
            faults->notready = true;
        } else if (!strncmp(part, "fail=", 5)) {
            const char *c = part + 5;
            do {
                size_t n = strcspn(c, "+");
                if (!known_check(c, n))
                    return kiln_err_set(err, KILN_EINVAL,
                                        "--simulate-gpus: \"%s\": unknown check \"%.*s\" in fail= "
                                        "(expected device, memory, hbm-bandwidth, gemm, pcie or "
                                        "p2p, joined with +)",
                                        item, (int)n, c);
                add_fail(faults, c, n);
                c += n;
            } while (*c++ == '+');
        } else {
            return kiln_err_set(err, KILN_EINVAL,
                                "--simulate-gpus: \"%s\": unknown flag \"%s\"; " GPUS_GRAMMAR, item,
                                part);
        }
    }
    if (*gpus < 1 || *gpus > 64 || *nodes < 1 || *nodes > 1000)
        return kiln_err_set(err, KILN_EINVAL,
                            "--simulate-gpus: \"%s\": gpus must be 1..64 and nodes 1..1000", item);
    /* Node names: slow, then the checks of fail= that slow does not cover, then notready. */
    size_t len = 0;
    if (slow)
        len += (size_t)snprintf(faults->suffix + len, sizeof faults->suffix - len, "-slow");
    bool named_fail = false;
    char copy[sizeof faults->fail];
    snprintf(copy, sizeof copy, "%s", faults->fail);
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (slow && (!strcmp(t, "hbm-bandwidth") || !strcmp(t, "gemm")))
            continue;
        len += (size_t)snprintf(faults->suffix + len, sizeof faults->suffix - len, "%s-%s",
                                named_fail ? "" : "-fail", t);
        named_fail = true;
    }
    if (faults->notready)
        snprintf(faults->suffix + len, sizeof faults->suffix - len, "-notready");
    return 0;
}

int kiln_devcluster_check_gpus(const char *spec, kiln_err *err)
{
    char *copy = kiln_xstrdup(spec);
    char *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(copy, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save)) {
        const gpu_model *m;
        int g, n;
        gpu_faults f;
        rc = parse_item(t, &m, &g, &n, &f, err);
    }
    kiln_xfree(copy);
    return rc;
}

/* Writes a node (taken) as a client would: metadata first, then status
 * through the status subresource (a create or update drops it). */
static void write_node(kiln_devcluster *dc, kiln_dc_resource *r, json_t *node, const char *name)
{
    json_t *st = json_incref(json_object_get(node, "status"));
    char *nm = kiln_xstrdup(name);
    kiln_dc_write_internal(dc, r, node, false);
    kiln_dc_object *o = kiln_dc_store_get(r, "", nm);
    if (o) {
        json_t *obj = kiln_dc_store_load(o);
        json_object_set_new(obj, "status", st);
        kiln_dc_write_internal(dc, r, obj, true);
    } else {
        json_decref(st);
    }
    kiln_xfree(nm);
}

static void put_node(kiln_devcluster *dc, json_t *node)
{
    kiln_dc_resource *r = kiln_dc_kinds_find(dc, "", "v1", "nodes");
    const char *name = kiln_dc_meta_str(node, "name");
    if (kiln_dc_store_get(r, "", name)) {
        json_decref(node);
        return;
    }
    write_node(dc, r, node, name);
}

static json_t *node_base(const char *name, const char *cpu, const char *mem)
{
    char ts[32];
    kiln_dc_timestamp(ts);
    return json_pack(
        "{s:s,s:s,s:{s:s,s:{s:s,s:s,s:s,s:s,s:s}},s:{},s:{s:{s:s,s:s,s:s},s:{s:s,s:s,s:s},"
        "s:[{s:s,s:s,s:s,s:s,s:s,s:s}],s:[{s:s,s:s}],s:{s:s,s:s,s:s,s:s,s:s}}}",
        "apiVersion", "v1", "kind", "Node", "metadata", "name", name, "labels",
        "kubernetes.io/hostname", name, "kubernetes.io/os", "linux", "kubernetes.io/arch", "amd64",
        "node.kubernetes.io/instance-type", "kiln-dev", SIM_LABEL, "true", "spec", "status",
        "capacity", "cpu", cpu, "memory", mem, "pods", "110", "allocatable", "cpu", cpu, "memory",
        mem, "pods", "110", "conditions", "type", "Ready", "status", "True", "reason",
        "KubeletReady", "message", "kubelet is posting ready status (simulated)",
        "lastHeartbeatTime", ts, "lastTransitionTime", ts, "addresses", "type", "InternalIP",
        "address", "10.0.0.1", "nodeInfo", "kubeletVersion", "v1.32.0", "containerRuntimeVersion",
        "kiln://simulated", "operatingSystem", "linux", "architecture", "amd64", "osImage",
        "kiln dev cluster");
}

/* GPU feature discovery's nvidia.com/gpu.family for a compute capability. */
static const char *gpu_family(int major, int minor)
{
    switch (major) {
    case 1:
        return "tesla";
    case 2:
        return "fermi";
    case 3:
        return "kepler";
    case 5:
        return "maxwell";
    case 6:
        return "pascal";
    case 7:
        return minor < 5 ? "volta" : "turing";
    case 8:
        return minor < 9 ? "ampere" : "ada-lovelace";
    case 9:
        return "hopper";
    case 10:
    case 12:
        return "blackwell";
    default:
        return "undefined";
    }
}

static void set_label(json_t *labels, const char *key, const char *value)
{
    if (value && *value)
        json_object_set_new(labels, key, json_string(value));
}

/* What GPU feature discovery, node feature discovery and the device plugin
 * put on a node with these GPUs: the labels, and nvidia.com/gpu in capacity
 * and allocatable. Simulated and real (--real-gpus) nodes both come here. */
static void node_add_gpus(json_t *node, const kiln_dc_gpu_info *g)
{
    char count[16], memory[32], ccmaj[16], ccmin[16];
    snprintf(count, sizeof count, "%d", g->count);
    snprintf(memory, sizeof memory, "%lld", g->memory_mib);
    snprintf(ccmaj, sizeof ccmaj, "%d", g->cc_major);
    snprintf(ccmin, sizeof ccmin, "%d", g->cc_minor);
    bool cc = g->cc_major >= 0 && g->cc_minor >= 0;
    json_t *labels = json_object_get(json_object_get(node, "metadata"), "labels");
    set_label(labels, "nvidia.com/gpu.present", "true");
    set_label(labels, "nvidia.com/gpu.product", g->product);
    set_label(labels, "nvidia.com/gpu.count", count);
    set_label(labels, "nvidia.com/gpu.memory", g->memory_mib > 0 ? memory : NULL);
    set_label(labels, "nvidia.com/gpu.family", cc ? gpu_family(g->cc_major, g->cc_minor) : NULL);
    set_label(labels, "nvidia.com/gpu.compute.major", cc ? ccmaj : NULL);
    set_label(labels, "nvidia.com/gpu.compute.minor", cc ? ccmin : NULL);
    set_label(labels, "nvidia.com/gpu.machine", g->machine);
    set_label(labels, "nvidia.com/gpu.replicas", "1");
    set_label(labels, "nvidia.com/gpu.sharing-strategy", "none");
    set_label(labels, "nvidia.com/cuda.driver.major", g->driver[0]);
    set_label(labels, "nvidia.com/cuda.driver.minor", g->driver[1]);
    set_label(labels, "nvidia.com/cuda.driver.rev", g->driver[2]);
    set_label(labels, "nvidia.com/cuda.runtime.major", g->runtime[0]);
    set_label(labels, "nvidia.com/cuda.runtime.minor", g->runtime[1]);
    set_label(labels, "feature.node.kubernetes.io/pci-10de.present", "true");
    json_t *st = json_object_get(node, "status");
    json_object_set_new(json_object_get(st, "capacity"), "nvidia.com/gpu", json_string(count));
    json_object_set_new(json_object_get(st, "allocatable"), "nvidia.com/gpu", json_string(count));
}

int kiln_dc_gpu_nodes(kiln_devcluster *dc, const char *spec, kiln_err *err)
{
    put_node(dc, node_base("kiln-dev", "16", "64Gi"));
    if (!spec || !*spec)
        return 0;
    char *copy = kiln_xstrdup(spec);
    char *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(copy, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save)) {
        const gpu_model *m;
        int gpus, nodes;
        gpu_faults f;
        rc = parse_item(t, &m, &gpus, &nodes, &f, err);
        for (int i = 0; rc == 0 && i < nodes; i++) {
            char name[320];
            snprintf(name, sizeof name, "kiln-gpu-%sx%d%s-%d", m->key, gpus, f.suffix, i);
            json_t *node = node_base(name, "128", "1024Gi");
            kiln_dc_gpu_info g = {.count = gpus,
                                  .memory_mib = m->memory_mib,
                                  .cc_major = m->cc_major,
                                  .cc_minor = m->cc_minor,
                                  .driver = {"570", "124", "06"},
                                  .runtime = {"12", "8"},
                                  .machine = "kiln-simulated"};
            snprintf(g.product, sizeof g.product, "%s", m->product);
            node_add_gpus(node, &g);
            /* The GPU operator's own label, there on every node it manages. */
            json_object_set_new(json_object_get(json_object_get(node, "metadata"), "labels"),
                                "nvidia.com/gpu.deploy.driver", json_string("true"));
            json_t *st = json_object_get(node, "status");
            /* What the simulated kubelet (jobs.c) runs kiln-gpucheck with. */
            json_t *ann = json_pack("{s:s}", KILN_DC_ANN_GPU_MODEL, m->key);
            if (f.fail[0])
                json_object_set_new(ann, KILN_DC_ANN_SIMULATE_FAIL, json_string(f.fail));
            json_object_set_new(json_object_get(node, "metadata"), "annotations", ann);
            if (f.notready) {
                json_t *ready = json_array_get(json_object_get(st, "conditions"), 0);
                json_object_set_new(ready, "status", json_string("False"));
                json_object_set_new(ready, "reason", json_string("KubeletNotReady"));
                json_object_set_new(ready, "message",
                                    json_string("kubelet is not posting ready status (simulated "
                                                "with :notready)"));
                json_object_set_new(json_object_get(node, "spec"), "taints",
                                    json_pack("[{s:s,s:s}]", "key", "node.kubernetes.io/not-ready",
                                              "effect", "NoSchedule"));
            }
            put_node(dc, node);
        }
    }
    kiln_xfree(copy);
    return rc;
}

/* Takes what node_add_gpus put on a node away again. */
static void node_remove_gpus(json_t *node)
{
    json_t *labels = json_object_get(json_object_get(node, "metadata"), "labels");
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(labels, tmp, k, v)
    {
        if (!strncmp(k, "nvidia.com/gpu.", 15) || !strncmp(k, "nvidia.com/cuda.", 16) ||
            !strcmp(k, "feature.node.kubernetes.io/pci-10de.present"))
            json_object_del(labels, k);
    }
    json_object_del(json_object_get(json_object_get(node, "metadata"), "annotations"),
                    KILN_DC_ANN_REAL_GPUS);
    json_t *st = json_object_get(node, "status");
    json_object_del(json_object_get(st, "capacity"), "nvidia.com/gpu");
    json_object_del(json_object_get(st, "allocatable"), "nvidia.com/gpu");
}

void kiln_dc_real_gpus_apply(kiln_devcluster *dc, const kiln_dc_gpu_info *real)
{
    kiln_dc_resource *r = kiln_dc_kinds_find(dc, "", "v1", "nodes");
    kiln_dc_object *o = r ? kiln_dc_store_get(r, "", "kiln-dev") : NULL;
    if (!o)
        return;
    json_t *old = kiln_dc_store_load(o);
    json_t *ann = json_object_get(json_object_get(old, "metadata"), "annotations");
    if (!real && !json_object_get(ann, KILN_DC_ANN_REAL_GPUS)) {
        json_decref(old);
        return;
    }
    /* Start from a node without GPUs, so a restart (--data-dir) on other
     * hardware, or without --real-gpus, leaves nothing of the last probe. */
    json_t *node = json_deep_copy(old);
    node_remove_gpus(node);
    if (real) {
        node_add_gpus(node, real);
        json_t *meta = json_object_get(node, "metadata");
        if (!json_is_object(json_object_get(meta, "annotations")))
            json_object_set_new(meta, "annotations", json_object());
        json_object_set_new(json_object_get(meta, "annotations"), KILN_DC_ANN_REAL_GPUS,
                            json_string(real->summary));
    }
    if (json_equal(node, old)) {
        json_decref(node);
        json_decref(old);
        return;
    }
    write_node(dc, r, node, "kiln-dev");
    json_decref(old);
}
