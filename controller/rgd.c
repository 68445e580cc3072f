/* controller/rgd.c: the ResourceGraphDefinition reconciler.
 *
 * Compile once per generation; an invalid generation (or one whose CRD change
 * would break stored instances without kiln.dev/allow-breaking-changes:
 * "true") sets GraphAccepted=False and the last good graph keeps serving.
 * The CRD is server-side applied only when its hash differs from the
 * kiln.dev/applied-hash annotation on the cached CRD, so a steady RGD sends
 * nothing. Once the CRD is Established the instance informer of the kind
 * starts (ControllerReady) and, whenever the graph changed, every instance is
 * queued. Deletion is held by kiln.dev/finalizer while instances exist.
 */
#include <stdio.h>
#include <string.h>

#include "controller/internal.h"
#include "controller/status.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "graph/compat.h"

static int scope_fn(void *ud, const char *api_version, const char *kind)
{
    kiln_manager *m = ud;
    kiln_kube_resource_info info;
    if (kiln_kube_discovery_resolve(&info, m->disc, api_version, kind, NULL) < 0)
        return -1;
    return info.namespaced ? 0 : 1;
}

/* Templates are checked against the OpenAPI schema the cluster publishes for
 * their kind. The documents stay referenced in docs until compile returns. */
typedef struct schema_ctx {
    kiln_manager *m;
    json_t *docs; /* array of the documents handed out */
} schema_ctx;

static const json_t *kind_schema_fn(void *ud, const char *api_version, const char *kind)
{
    schema_ctx *c = ud;
    char group[256] = "", version[64];
    const char *slash = strchr(api_version, '/');
    if (slash) {
        snprintf(group, sizeof(group), "%.*s", (int)(slash - api_version), api_version);
        snprintf(version, sizeof(version), "%s", slash + 1);
    } else {
        snprintf(version, sizeof(version), "%s", api_version);
    }
    json_t *doc = NULL;
    if (kiln_kube_openapi_document(&doc, c->m->disc, group, version, NULL) < 0)
        return NULL;
    json_array_append_new(c->docs, doc);
    return kiln_kube_openapi_find_kind(doc, group, version, kind);
}

static const json_t *crd_version_schema(const json_t *crd, const char *version)
{
    size_t i;
    json_t *v;
    json_array_foreach(kiln_json_get_path(crd, "spec.versions"), i, v)
    {
        const char *name = json_string_value(json_object_get(v, "name"));
        if (name && strcmp(name, version) == 0)
            return kiln_json_get_path(v, "schema.openAPIV3Schema");
    }
    return NULL;
}

static bool crd_established(const json_t *crd)
{
    size_t i;
    json_t *c;
    json_array_foreach(kiln_json_get_path(crd, "status.conditions"), i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        const char *s = json_string_value(json_object_get(c, "status"));
        if (t && s && strcmp(t, "Established") == 0 && strcmp(s, "True") == 0)
            return true;
    }
    return false;
}

/* Joins up to 5 errors into one condition message. */
static char *join_errors(const kiln_errs *errs, const char *prefix)
{
    kiln_buf b;
    kiln_buf_init(&b, 4096);
    kiln_buf_puts(&b, prefix, NULL);
    for (size_t i = 0; i < errs->len && i < 5; i++)
        kiln_buf_printf(&b, NULL, "%s%s", i ? "; " : "", errs->items[i].msg);
    if (errs->len > 5)
        kiln_buf_printf(&b, NULL, "; and %zu more", errs->len - 5);
    return kiln_buf_steal(&b);
}

/* Names of the instances still cached for e, "ns/a, ns/b" (at most 10). */
static char *instance_names(kiln_manager *m, kiln_rgd_entry *e, size_t *count)
{
    *count = 0;
    pthread_mutex_lock(&m->lock);
    kiln_kube_informer *inf = e->instances;
    pthread_mutex_unlock(&m->lock);
    json_t *list = NULL;
    if (!inf || kiln_kube_informer_list(&list, inf, NULL, NULL) < 0)
        return NULL;
    kiln_buf b;
    kiln_buf_init(&b, 4096);
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        if (i < 10) {
            const char *ns = kiln_json_get_string(o, "metadata.namespace");
            kiln_buf_printf(&b, NULL, "%s%s%s%s", i ? ", " : "", ns ? ns : "", ns ? "/" : "",
                            kiln_json_get_string(o, "metadata.name"));
        }
    }
    *count = json_array_size(list);
    if (*count > 10)
        kiln_buf_printf(&b, NULL, " and %zu more", *count - 10);
    json_decref(list);
    return kiln_buf_steal(&b);
}

/* Compiles the RGD's current generation and, when the CRD change is
 * acceptable, installs it. Leaves e->compile_error set on refusal. */
static void compile_generation(kiln_manager *m, kiln_rgd_entry *e, const json_t *rgd, int64_t gen)
{
    kiln_errs errs = {0};
    kiln_graph *g = NULL;
    kiln_graph_options gopts = {0};
    schema_ctx sc = {m, json_array()};
    gopts.scope = scope_fn;
    gopts.scope_userdata = m;
    gopts.kind_schema = kind_schema_fn;
    gopts.kind_schema_userdata = &sc;
    kiln_xfree(e->compile_error);
    e->compile_error = NULL;
    e->tried_generation = gen;
    int crc = kiln_graph_compile(&g, rgd, &gopts, &errs);
    json_decref(sc.docs);
    if (crc < 0) {
        e->compile_error = join_errors(&errs, "");
        KILN_LOG(KILN_LOG_WARN, "rgd %s generation %lld rejected: %s", e->name, (long long)gen,
                 e->compile_error);
        kiln_errs_free(&errs);
        return;
    }
    /* The breaking-change guard compares with the CRD the cluster serves. */
    const json_t *crd = kiln_graph_crd(g);
    json_t *live =
        kiln_kube_informer_get(m->crds, NULL, kiln_json_get_string(crd, "metadata.name"));
    const json_t *old_schema = crd_version_schema(live, kiln_graph_version(g));
    const json_t *new_schema = crd_version_schema(crd, kiln_graph_version(g));
    const char *allow = json_string_value(
        json_object_get(kiln_json_get_path(rgd, "metadata.annotations"), KILN_ANN_ALLOW_BREAKING));
    if (old_schema && new_schema && !(allow && strcmp(allow, "true") == 0)) {
        kiln_errs breaking = {0};
        int n = kiln_crd_breaking_changes(&breaking, old_schema, new_schema);
        if (n > 0) {
            e->compile_error = join_errors(
                &breaking, "breaking change to the generated CRD (annotate the RGD with "
                           "kiln.dev/allow-breaking-changes: \"true\" to allow it): ");
            kiln_errs_free(&breaking);
            kiln_graph_free(g);
            json_decref(live);
            return;
        }
        kiln_errs_free(&breaking);
    }
    json_decref(live);
    const json_t *names = kiln_json_get_path(crd, "spec.names");
    bool gvr_changed = strcmp(e->group, kiln_graph_group(g)) != 0 ||
                       strcmp(e->version, kiln_graph_version(g)) != 0 ||
                       strcmp(e->kind, kiln_graph_kind(g)) != 0;
    if (gvr_changed)
        kiln_manager_unwatch_instances(m, e);
    /* Instance reconciles read these under the lock. */
    pthread_mutex_lock(&m->lock);
    snprintf(e->group, sizeof(e->group), "%s", kiln_graph_group(g));
    snprintf(e->version, sizeof(e->version), "%s", kiln_graph_version(g));
    snprintf(e->kind, sizeof(e->kind), "%s", kiln_graph_kind(g));
    snprintf(e->resource, sizeof(e->resource), "%s",
             json_string_value(json_object_get(names, "plural")));
    e->cluster_scoped = kiln_graph_cluster_scoped(g);
    e->graph_generation = gen;
    pthread_mutex_unlock(&m->lock);
    e->established = false;
    kiln_manager_graph_install(m, e, g);
    KILN_LOG(KILN_LOG_INFO, "rgd %s generation %lld accepted: kind %s.%s/%s", e->name,
             (long long)gen, e->kind, e->group, e->version);
}

/* Applies the CRD when the cluster's copy carries another hash; sets
 * *established from the cluster's (or the apply response's) conditions. */
static int ensure_crd(kiln_manager *m, kiln_ctl_graph *cg, bool *established, kiln_err *err)
{
    json_t *crd = json_deep_copy(kiln_graph_crd(cg->g));
    char hash[KILN_SHA256_HEX_LEN + 1];
    kiln_hash_json(hash, crd);
    json_t *md = json_object_get(crd, "metadata");
    json_t *ann = json_object_get(md, "annotations");
    if (!json_is_object(ann)) {
        ann = json_object();
        json_object_set_new(md, "annotations", ann);
    }
    json_object_set_new(ann, KILN_ANN_APPLIED_HASH, json_string(hash));
    const char *name = kiln_json_get_string(crd, "metadata.name");
    json_t *live = kiln_kube_informer_get(m->crds, NULL, name);
    const char *live_hash = json_string_value(
        json_object_get(kiln_json_get_path(live, "metadata.annotations"), KILN_ANN_APPLIED_HASH));
    int rc = 0;
    if (live && live_hash && strcmp(live_hash, hash) == 0 &&
        !kiln_json_get_path(live, "metadata.deletionTimestamp")) {
        *established = crd_established(live);
        goto out;
    }
    json_t *applied = NULL;
    kiln_kube_ref ref = {.group = "apiextensions.k8s.io",
                         .version = "v1",
                         .resource = "customresourcedefinitions",
                         .name = name};
    rc = kiln_kube_apply(&applied, m->client, &ref, crd, KILN_FIELD_MANAGER, true, err);
    if (rc == 0)
        *established = crd_established(applied);
    else
        kiln_err_prefix(err, "applying CRD %s", name);
    json_decref(applied);
out:
    json_decref(live);
    json_decref(crd);
    return rc;
}

int kiln_rgd_reconcile(kiln_worker *w, const char *name, int64_t *requeue_ms, kiln_err *err)
{
    kiln_manager *m = w->mgr;
    kiln_kube_ref ref = {.group = KILN_RGD_GROUP,
                         .version = KILN_RGD_VERSION,
                         .resource = KILN_RGD_RESOURCE,
                         .name = name};
    json_t *rgd = kiln_kube_informer_get(m->rgds, NULL, name);
    json_t *cur = NULL, *status = NULL;
    kiln_ctl_graph *cg = NULL;
    char *blocked = NULL;
    int rc = 0;
    char now[32];
    kiln_status_now(now);
    kiln_rgd_entry *e = kiln_manager_rgd_entry(m, name);

    if (!rgd) {
        kiln_manager_unwatch_instances(m, e);
        kiln_manager_graph_drop(m, e);
        e->deleted = true;
        goto out;
    }
    int64_t gen = json_integer_value(kiln_json_get_path(rgd, "metadata.generation"));
    const json_t *old_status = json_object_get(rgd, "status");
    const json_t *oc = json_object_get(old_status, "conditions");

    if (kiln_json_get_path(rgd, "metadata.deletionTimestamp")) {
        if (!kiln_ctl_has_finalizer(rgd))
            goto out;
        size_t count = 0;
        blocked = instance_names(m, e, &count);
        if (count > 0) {
            /* Held rather than stranding instances whose finalizer nobody
             * would remove. */
            status = json_deep_copy(old_status ? old_status : json_object());
            if (!json_is_object(status)) {
                json_decref(status);
                status = json_object();
            }
            json_t *conds = json_deep_copy(oc ? oc : json_array());
            char *msg = kiln_xasprintf("deletion is waiting for %zu instance(s) of %s to be "
                                       "deleted: %s",
                                       count, e->kind, blocked);
            kiln_status_set_condition(conds, oc, "Ready", "False", "DeletionBlocked", msg, gen,
                                      now);
            kiln_xfree(msg);
            json_object_set_new(status, "conditions", conds);
            json_object_set_new(status, "state", json_string("Inactive"));
            rc = kiln_ctl_write_status(m->client, &ref, rgd, status, err);
            /* Instance deletions do not queue the RGD: look again soon. */
            *requeue_ms = 2000;
            goto out;
        }
        kiln_manager_unwatch_instances(m, e);
        kiln_manager_graph_drop(m, e);
        e->deleted = true;
        rc = kiln_ctl_set_finalizer(NULL, m->client, &ref, rgd, false, err);
        if (rc == KILN_ENOTFOUND)
            rc = 0;
        goto out;
    }
    e->deleted = false;
    if (!kiln_ctl_has_finalizer(rgd)) {
        rc = kiln_ctl_set_finalizer(&cur, m->client, &ref, rgd, true, err);
        if (rc < 0)
            goto out;
        json_decref(rgd);
        rgd = cur;
        cur = NULL;
    }

    bool graph_changed = false;
    if (gen != e->tried_generation) {
        int64_t before = e->graph_generation;
        kiln_ctl_graph *prev = e->graph;
        compile_generation(m, e, rgd, gen);
        graph_changed = e->graph != prev || e->graph_generation != before;
    }
    cg = kiln_manager_graph_acquire(m, name);

    bool established = false, controller = false;
    char *kind_msg = NULL;
    if (cg) {
        kiln_err cerr = {0};
        if (ensure_crd(m, cg, &established, &cerr) < 0) {
            kind_msg = kiln_xstrdup(cerr.msg);
            rc = cerr.code;
            if (err)
                *err = cerr;
        } else if (!established) {
            kind_msg = kiln_xstrdup("waiting for the CRD to be Established");
        }
        if (established) {
            e->established = true;
            kiln_err ierr = {0};
            if (kiln_manager_watch_instances(m, e, &ierr) == 0) {
                controller = true;
            } else {
                kind_msg = kiln_xstrdup(ierr.msg);
                *requeue_ms = 1000;
            }
        }
        if (controller && graph_changed)
            kiln_manager_enqueue_instances(m, e);
    }

    status = json_object();
    json_t *conds = json_array();
    if (e->compile_error)
        kiln_status_set_condition(conds, oc, "GraphAccepted", "False", "InvalidResourceGraph",
                                  e->compile_error, gen, now);
    else
        kiln_status_set_condition(conds, oc, "GraphAccepted", "True", "Valid", "", gen, now);
    if (established)
        kiln_status_set_condition(conds, oc, "KindReady", "True", "Ready", "", gen, now);
    else
        kiln_status_set_condition(conds, oc, "KindReady", "False", cg ? "Waiting" : "Failed",
                                  cg ? kind_msg : "no valid graph yet", gen, now);
    if (controller)
        kiln_status_set_condition(conds, oc, "ControllerReady", "True", "Running", "", gen, now);
    else
        kiln_status_set_condition(conds, oc, "ControllerReady", "False", "NotStarted",
                                  kind_msg ? kind_msg : "", gen, now);
    bool ready = !e->compile_error && established && controller;
    if (ready) {
        char *msg = kiln_xasprintf("serving %s.%s/%s", e->kind, e->group, e->version);
        kiln_status_set_condition(conds, oc, "Ready", "True", "Ready", msg, gen, now);
        kiln_xfree(msg);
    } else {
        const char *why = e->compile_error ? e->compile_error : kind_msg ? kind_msg : "";
        if (e->compile_error && cg) {
            char *msg =
                kiln_xasprintf("generation %lld rejected, still serving generation "
                               "%lld: %s",
                               (long long)gen, (long long)e->graph_generation, e->compile_error);
            kiln_status_set_condition(conds, oc, "Ready", "False", "InvalidResourceGraph", msg, gen,
                                      now);
            kiln_xfree(msg);
        } else {
            kiln_status_set_condition(conds, oc, "Ready", "False",
                                      e->compile_error ? "InvalidResourceGraph" : "Waiting", why,
                                      gen, now);
        }
    }
    kiln_xfree(kind_msg);
    /* Ready first, as for instances. */
    json_t *sorted = json_array();
    json_array_append(sorted, json_array_get(conds, 3));
    for (size_t i = 0; i < 3; i++)
        json_array_append(sorted, json_array_get(conds, i));
    json_decref(conds);
    json_object_set_new(status, "conditions", sorted);
    json_object_set_new(status, "observedGeneration", json_integer((json_int_t)gen));
    json_object_set_new(status, "state",
                        json_string(established && controller && cg ? "Active" : "Inactive"));
    if (cg) {
        json_t *d = kiln_graph_describe(cg->g);
        json_object_set(status, "topologicalOrder", json_object_get(d, "topologicalOrder"));
        json_object_set(status, "resources", json_object_get(d, "resources"));
        json_decref(d);
    }
    int src = kiln_ctl_write_status(m->client, &ref, rgd, status, err);
    if (rc == 0)
        rc = src;
out:
    kiln_manager_graph_release(m, cg);
    kiln_xfree(blocked);
    json_decref(status);
    json_decref(cur);
    json_decref(rgd);
    return rc;
}
