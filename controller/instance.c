/* controller/instance.c: the instance reconciler (DESIGN.md section 3).
 *
 * Everything is read from the informer caches. A pass renders the graph with
 * the observed children, applies each rendered child whose hash differs from
 * the kiln.dev/applied-hash it carries, puts the apply response in place of
 * the observed object and renders again, so dependents proceed in the same
 * pass; it stops when a render applies nothing new. A pass over a converged
 * instance sends no request at all: no GET (caches), no apply (hashes equal),
 * no status write (equal status).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "controller/events.h"
#include "controller/instance.h"
#include "controller/internal.h"
#include "controller/inventory.h"
#include "controller/status.h"
#include "controller/validation.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"

/* ------------------------------------------------------------------------ */
/* pure helpers                                                               */

bool kiln_instance_tracking_key(const char *key)
{
    static const char *const prefixes[] = {"argocd.argoproj.io/", "kubectl.kubernetes.io/",
                                           "kustomize.toolkit.fluxcd.io/", "meta.helm.sh/",
                                           "applyset.kubernetes.io/"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(key, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

static void strip_tracking(json_t *map)
{
    if (!json_is_object(map))
        return;
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(map, tmp, k, v)
    {
        if (kiln_instance_tracking_key(k))
            json_object_del(map, k);
    }
}

bool kiln_instance_owner_allowed(const json_t *instance, const char *child_ns)
{
    const char *ns = kiln_json_get_string(instance, "metadata.namespace");
    return ns && *ns && child_ns && strcmp(ns, child_ns) == 0;
}

static json_t *ensure_object(json_t *parent, const char *key)
{
    json_t *o = json_object_get(parent, key);
    if (!json_is_object(o)) {
        o = json_object();
        json_object_set_new(parent, key, o);
    }
    return o;
}

void kiln_instance_decorate(json_t *obj, const json_t *instance, const char *rgd, const char *node,
                            bool owner, char hash[KILN_SHA256_HEX_LEN + 1])
{
    json_t *md = ensure_object(obj, "metadata");
    json_t *labels = ensure_object(md, "labels");
    strip_tracking(labels);
    /* app.kubernetes.io/instance is a recommended label recipes set on
     * purpose, and Argo CD's tracking label too: drop it only when it is the
     * instance's own value (copied from the instance, it would make Argo CD
     * count the child as its Application's and prune it). */
    const char *own = json_string_value(json_object_get(
        kiln_json_get_path(instance, "metadata.labels"), "app.kubernetes.io/instance"));
    const char *mine = json_string_value(json_object_get(labels, "app.kubernetes.io/instance"));
    if (own && mine && strcmp(own, mine) == 0)
        json_object_del(labels, "app.kubernetes.io/instance");
    const char *ns = kiln_json_get_string(instance, "metadata.namespace");
    json_object_set_new(labels, KILN_LABEL_MANAGED_BY, json_string("kiln"));
    json_object_set_new(labels, KILN_LABEL_INSTANCE_UID,
                        json_string(kiln_json_get_string(instance, "metadata.uid")));
    json_object_set_new(labels, KILN_LABEL_INSTANCE_NAME,
                        json_string(kiln_json_get_string(instance, "metadata.name")));
    json_object_set_new(labels, KILN_LABEL_INSTANCE_NAMESPACE, json_string(ns ? ns : ""));
    json_object_set_new(labels, KILN_LABEL_RGD, json_string(rgd));
    json_object_set_new(labels, KILN_LABEL_NODE, json_string(node));
    json_t *ann = json_object_get(md, "annotations");
    if (json_is_object(ann)) {
        strip_tracking(ann);
        /* kiln's own annotations of the instance (inventory, suspend) copied
         * by a template would make every inventory change a child change. */
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(ann, tmp, k, v)
        {
            if (strncmp(k, "kiln.dev/", 9) == 0)
                json_object_del(ann, k);
        }
    }
    if (owner) {
        json_t *refs = json_object_get(md, "ownerReferences");
        if (!json_is_array(refs)) {
            refs = json_array();
            json_object_set_new(md, "ownerReferences", refs);
        }
        json_array_append_new(refs, json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "apiVersion",
                                              kiln_json_get_string(instance, "apiVersion"), "kind",
                                              kiln_json_get_string(instance, "kind"), "name",
                                              kiln_json_get_string(instance, "metadata.name"),
                                              "uid", kiln_json_get_string(instance, "metadata.uid"),
                                              "controller", 1, "blockOwnerDeletion", 1));
    }
    kiln_hash_json(hash, obj);
    ann = ensure_object(md, "annotations");
    json_object_set_new(ann, KILN_ANN_APPLIED_HASH, json_string(hash));
}

bool kiln_instance_up_to_date(const json_t *cached, const char *hash)
{
    if (!cached || kiln_json_get_path(cached, "metadata.deletionTimestamp"))
        return false;
    const char *h = json_string_value(
        json_object_get(kiln_json_get_path(cached, "metadata.annotations"), KILN_ANN_APPLIED_HASH));
    return h && strcmp(h, hash) == 0;
}

bool kiln_instance_suspended(const json_t *instance)
{
    const char *v = json_string_value(
        json_object_get(kiln_json_get_path(instance, "metadata.annotations"), KILN_ANN_RECONCILE));
    return v && strcasecmp(v, "suspended") == 0;
}

/* ------------------------------------------------------------------------ */
/* cluster helpers                                                            */

typedef struct child_ref {
    char group[254], version[64], resource[254];
    bool namespaced;
} child_ref;

static int resolve(kiln_manager *m, child_ref *out, const char *api_version, const char *kind,
                   kiln_err *err)
{
    kiln_kube_resource_info info;
    int rc = kiln_kube_discovery_resolve(&info, m->disc, api_version, kind, err);
    if (rc < 0)
        return rc;
    snprintf(out->group, sizeof(out->group), "%s", info.group);
    snprintf(out->version, sizeof(out->version), "%s", info.version);
    snprintf(out->resource, sizeof(out->resource), "%s", info.resource);
    out->namespaced = info.namespaced;
    return 0;
}

static kiln_kube_ref kref(const child_ref *cr, const char *ns, const char *name)
{
    kiln_kube_ref r = {.group = cr->group,
                       .version = cr->version,
                       .resource = cr->resource,
                       .namespace = cr->namespaced ? ns : NULL,
                       .name = name};
    return r;
}

/* Every cached child of instance uid, across the child informers: new array. */
static json_t *gather_children(kiln_manager *m, const char *uid)
{
    size_t n = 0;
    kiln_kube_informer **infs = kiln_manager_child_informers(m, &n);
    char *sel = kiln_xasprintf("%s=%s", KILN_LABEL_INSTANCE_UID, uid);
    json_t *all = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *list = NULL;
        if (kiln_kube_informer_list(&list, infs[i], sel, NULL) == 0)
            json_array_extend(all, list);
        json_decref(list);
    }
    kiln_xfree(sel);
    kiln_xfree(infs);
    return all;
}

static const char *label(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(kiln_json_get_path(obj, "metadata.labels"), key));
}

static char *identity(const json_t *obj)
{
    char group[256];
    kiln_inventory_group(group, sizeof(group), kiln_json_get_string(obj, "apiVersion"));
    const char *ns = kiln_json_get_string(obj, "metadata.namespace");
    return kiln_xasprintf("%s/%s/%s/%s", group, kiln_json_get_string(obj, "kind"), ns ? ns : "",
                          kiln_json_get_string(obj, "metadata.name"));
}

/* Writes the inventory annotation (a merge patch of our own key only). With
 * add_finalizer, kiln.dev/finalizer goes into the same write, guarded by the
 * resourceVersion so another controller's finalizer is never dropped: a new
 * instance costs one metadata write, not two. *inst is replaced by the
 * response. */
static int write_inventory(kiln_manager *m, const kiln_kube_ref *iref, json_t **inst,
                           const kiln_inventory *inv, bool add_finalizer, kiln_err *err)
{
    char *text = kiln_inventory_format(inv);
    json_t *patch = json_pack("{s:{s:{s:s}}}", "metadata", "annotations", KILN_ANN_INVENTORY, text);
    if (add_finalizer) {
        json_t *md = json_object_get(patch, "metadata");
        json_t *list = json_deep_copy(kiln_json_get_path(*inst, "metadata.finalizers"));
        if (!json_is_array(list)) {
            json_decref(list);
            list = json_array();
        }
        json_array_append_new(list, json_string(KILN_FINALIZER));
        json_object_set_new(md, "finalizers", list);
        const char *rv = kiln_json_get_string(*inst, "metadata.resourceVersion");
        json_object_set_new(md, "resourceVersion", json_string(rv ? rv : ""));
    }
    json_t *out = NULL;
    int rc = kiln_kube_patch(&out, m->client, iref, KILN_KUBE_PATCH_MERGE, patch, NULL, err);
    json_decref(patch);
    kiln_xfree(text);
    if (rc == 0) {
        json_decref(*inst);
        *inst = out;
    }
    return rc;
}

static void emit_state_event(kiln_manager *m, const json_t *inst, const json_t *old_status,
                             const json_t *status)
{
    const char *was = kiln_json_get_string(old_status, "state");
    const char *now = kiln_json_get_string(status, "state");
    if (!now || (was && strcmp(was, now) == 0))
        return;
    const json_t *ready = kiln_status_condition(status, "Ready");
    const char *msg = kiln_json_get_string(ready, "message");
    char *text = kiln_xasprintf("%s -> %s%s%s", was ? was : "(none)", now, msg && *msg ? ": " : "",
                                msg ? msg : "");
    kiln_events_record(m->client, inst, strcmp(now, "ERROR") == 0 ? "Warning" : "Normal",
                       strcmp(now, "ACTIVE") == 0     ? "Ready"
                       : strcmp(now, "ERROR") == 0    ? "Stalled"
                       : strcmp(now, "DELETING") == 0 ? "Deleting"
                                                      : "Progressing",
                       text, "kiln-controller");
    kiln_xfree(text);
}

/* The user an RGD's spec.serviceAccountName makes kiln write children as,
 * or NULL for kiln's own identity (new string). The account lives in the
 * instance's namespace; a cluster-scoped instance's in the controller's. */
static char *children_user(kiln_manager *m, const kiln_graph *g, const json_t *inst)
{
    const char *sa = g ? kiln_graph_service_account(g) : NULL;
    if (!sa)
        return NULL;
    const char *ns = kiln_json_get_string(inst, "metadata.namespace");
    if (!ns || !*ns)
        ns = kiln_kube_client_config(m->client)->namespace;
    return kiln_xasprintf("system:serviceaccount:%s:%s", ns && *ns ? ns : "default", sa);
}

/* Sends one child write as user (NULL: as kiln). */
static int delete_as(kiln_manager *m, const char *user, const kiln_kube_ref *r,
                     const kiln_kube_delete_opts *o, kiln_err *err)
{
    if (user && kiln_kube_impersonate(user, err) < 0)
        return err ? err->code : KILN_EINVAL;
    int rc = kiln_kube_delete(NULL, m->client, r, o, err);
    if (user)
        kiln_kube_impersonate(NULL, NULL);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* deletion                                                                   */

/* The finalizer patch's response replaces *inst, so later steps see it. */
static int set_instance_finalizer(kiln_manager *m, const kiln_kube_ref *iref, json_t **inst,
                                  bool present, kiln_err *err)
{
    json_t *out = NULL;
    int rc = kiln_ctl_set_finalizer(&out, m->client, iref, *inst, present, err);
    if (rc == 0) {
        json_decref(*inst);
        *inst = out;
    }
    return rc;
}

/* An instance deleted meanwhile has no status left to write. */
static int write_instance_status(kiln_manager *m, const kiln_kube_ref *iref, const json_t *inst,
                                 json_t *status, kiln_err *err)
{
    int rc = kiln_ctl_write_status(m->client, iref, inst, status, err);
    return rc == KILN_ENOTFOUND ? 0 : rc;
}

static int reconcile_delete(kiln_manager *m, const kiln_kube_ref *iref, json_t **inst,
                            const char *user, int64_t *requeue_ms, kiln_err *err)
{
    const char *uid = kiln_json_get_string(*inst, "metadata.uid");
    kiln_inventory inv;
    kiln_err perr = {0};
    int rc = 0;
    bool *exists = NULL, *now = NULL;
    json_t *extra = NULL;
    if (kiln_inventory_parse(
            &inv,
            json_string_value(json_object_get(kiln_json_get_path(*inst, "metadata.annotations"),
                                              KILN_ANN_INVENTORY)),
            &perr) < 0)
        KILN_LOG(KILN_LOG_WARN, "instance %s: %s; deleting what the caches hold",
                 kiln_json_get_string(*inst, "metadata.name"), perr.msg);

    /* The inventory's objects, looked up in the caches (the informer of a
     * kind is started here after a restart). */
    exists = kiln_xcalloc(inv.len + 1, sizeof(bool));
    now = kiln_xcalloc(inv.len + 1, sizeof(bool));
    json_t *objs = json_array();
    for (size_t i = 0; i < inv.len; i++) {
        kiln_inventory_item *it = &inv.items[i];
        child_ref cr;
        json_t *o = NULL;
        if (resolve(m, &cr, it->api_version, it->kind, NULL) == 0) {
            kiln_kube_informer *inf =
                kiln_manager_child_informer(m, cr.group, cr.version, cr.resource, NULL);
            if (inf)
                o = kiln_kube_informer_get(inf, cr.namespaced ? it->namespace : NULL, it->name);
        }
        /* Never delete what another instance took over. */
        if (o && (!label(o, KILN_LABEL_INSTANCE_UID) ||
                  strcmp(label(o, KILN_LABEL_INSTANCE_UID), uid) != 0)) {
            json_decref(o);
            o = NULL;
        }
        exists[i] = o != NULL;
        json_array_append_new(objs, o ? o : json_null());
    }
    /* Children the inventory does not name (written by a crashed pass) go
     * first, as kro deletes objects of unknown order first. */
    json_t *children = gather_children(m, uid);
    extra = kiln_inventory_prune_set(children, &inv);
    json_decref(children);
    json_t *todo = json_array();
    if (json_array_size(extra) > 0) {
        json_array_extend(todo, extra);
    } else {
        kiln_inventory_next_wave(&inv, exists, now);
        for (size_t i = 0; i < inv.len; i++)
            if (now[i])
                json_array_append(todo, json_array_get(objs, i));
    }
    json_decref(objs);

    if (json_array_size(todo) == 0) {
        json_decref(todo);
        rc = set_instance_finalizer(m, iref, inst, false, err);
        if (rc == KILN_ENOTFOUND)
            rc = 0;
        goto out;
    }
    size_t i;
    json_t *o;
    json_array_foreach(todo, i, o)
    {
        if (kiln_json_get_path(o, "metadata.deletionTimestamp"))
            continue; /* a child finalizer holds this wave */
        child_ref cr;
        if (resolve(m, &cr, kiln_json_get_string(o, "apiVersion"), kiln_json_get_string(o, "kind"),
                    err) < 0) {
            rc = err ? err->code : KILN_EIO;
            break;
        }
        kiln_kube_ref r = kref(&cr, kiln_json_get_string(o, "metadata.namespace"),
                               kiln_json_get_string(o, "metadata.name"));
        kiln_kube_delete_opts dopts = {.propagation_policy = "Background",
                                       .precondition_uid = kiln_json_get_string(o, "metadata.uid")};
        int drc = delete_as(m, user, &r, &dopts, err);
        if (drc < 0 && drc != KILN_ENOTFOUND) {
            rc = drc;
            break;
        }
    }
    /* The deletions come back as watch events; this is only a safety net. */
    if (rc == 0)
        *requeue_ms = 5000;
    json_decref(todo);
out:
    json_decref(extra);
    kiln_xfree(exists);
    kiln_xfree(now);
    kiln_inventory_free(&inv);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* the pass                                                                   */

typedef struct pass {
    kiln_manager *m;
    kiln_worker *w;
    const kiln_graph *g;
    const char *rgd;
    json_t *inst; /* latest copy (responses replace it) */
    kiln_kube_ref iref;
    char *uid;           /* copied: inst is replaced by responses */
    json_t *observed;    /* node id -> object or array */
    json_t *latest;      /* identity -> latest known object */
    json_t *applied;     /* identity -> hash applied in this pass */
    json_t *node_err;    /* node id -> message of an apply failure */
    kiln_inventory inv;  /* recorded */
    kiln_inventory keep; /* what this pass rendered */
    int wave_of[1024];
    char *stalled;
    char *retrying;
    int fail_code;
    size_t applies;
    bool external_missing;
    bool need_finalizer;          /* kiln.dev/finalizer not on the instance yet */
    const json_t *old_validation; /* status.validation before this pass; borrowed */
    json_t *validation;           /* node id -> status.validation entry of this pass */
    char *validation_failed;
    char *validation_running;
    int64_t requeue_ms; /* > 0: come back after this long (validation deadlines) */
    char *user;         /* children are written as this user (spec.serviceAccountName) */
} pass;

static int wave(pass *p, size_t node)
{
    return node < 1024 ? p->wave_of[node] : 0;
}

/* Reads an externalRef's object from a cache that watches only it: it is
 * not labelled, so no child cache holds it, and its changes must queue us. */
static void fetch_external(pass *p, const kiln_render_node *rn)
{
    child_ref cr;
    const json_t *d = rn->desired;
    if (resolve(p->m, &cr, kiln_json_get_string(d, "apiVersion"), kiln_json_get_string(d, "kind"),
                NULL) < 0) {
        p->external_missing = true;
        return;
    }
    char *key = kiln_xasprintf("inst:%s:%s:%s", p->rgd, p->iref.namespace ? p->iref.namespace : "",
                               p->iref.name);
    json_t *o = kiln_manager_external_get(
        p->m, cr.group, cr.version, cr.resource,
        cr.namespaced ? kiln_json_get_string(d, "metadata.namespace") : NULL,
        kiln_json_get_string(d, "metadata.name"), key);
    kiln_xfree(key);
    if (o)
        json_object_set_new(p->observed, rn->id, o);
}

/* Applies one rendered item; *out is the observed object afterwards (new). */
static int apply_item(pass *p, const kiln_render_node *rn, const json_t *item, json_t **out,
                      bool *sent, kiln_err *err)
{
    int rc = 0;
    *out = NULL;
    *sent = false;
    json_t *obj = json_deep_copy(item);
    const char *ns = kiln_json_get_string(obj, "metadata.namespace");
    const char *name = kiln_json_get_string(obj, "metadata.name");
    child_ref cr;
    rc = resolve(p->m, &cr, kiln_json_get_string(obj, "apiVersion"),
                 kiln_json_get_string(obj, "kind"), err);
    if (rc < 0)
        goto out;
    kiln_kube_informer *inf =
        kiln_manager_child_informer(p->m, cr.group, cr.version, cr.resource, err);
    if (!inf) {
        rc = err && err->code ? err->code : KILN_EIO;
        goto out;
    }
    char hash[KILN_SHA256_HEX_LEN + 1];
    kiln_instance_decorate(obj, p->inst, p->rgd, rn->id,
                           cr.namespaced && kiln_instance_owner_allowed(p->inst, ns), hash);
    char *id = identity(obj);
    kiln_inventory_add_object(&p->keep, wave(p, rn->node), rn->id, obj);

    json_t *cached = kiln_kube_informer_get(inf, cr.namespaced ? ns : NULL, name);
    const char *owner = label(cached, KILN_LABEL_INSTANCE_UID);
    if (cached && owner && strcmp(owner, p->uid) != 0) {
        rc = kiln_err_set(err, KILN_ECONFLICT,
                          "%s %s%s%s is managed by another instance (%s %s/%s); not touching it",
                          kiln_json_get_string(obj, "kind"), ns ? ns : "", ns ? "/" : "", name,
                          label(cached, KILN_LABEL_RGD),
                          label(cached, KILN_LABEL_INSTANCE_NAMESPACE),
                          label(cached, KILN_LABEL_INSTANCE_NAME));
        json_decref(cached);
        kiln_xfree(id);
        goto out;
    }
    const json_t *latest = json_object_get(p->latest, id);
    const char *done = json_string_value(json_object_get(p->applied, id));
    if (done && strcmp(done, hash) == 0 && latest) {
        *out = json_incref((json_t *)latest);
    } else if (!done && kiln_instance_up_to_date(latest ? latest : cached, hash)) {
        *out = json_incref(latest ? (json_t *)latest : cached);
    } else {
        /* Record it before creating it, so deletion can always find it. */
        if (kiln_inventory_find(&p->inv, kiln_json_get_string(obj, "apiVersion"),
                                kiln_json_get_string(obj, "kind"), ns, name) < 0) {
            kiln_inventory_add_object(&p->inv, wave(p, rn->node), rn->id, obj);
            rc = write_inventory(p->m, &p->iref, &p->inst, &p->inv, p->need_finalizer, err);
            if (rc == 0)
                p->need_finalizer = false;
            if (rc < 0) {
                json_decref(cached);
                kiln_xfree(id);
                goto out;
            }
        }
        kiln_kube_ref r = kref(&cr, ns, name);
        rc = p->user ? kiln_kube_impersonate(p->user, err) : 0;
        if (rc == 0)
            rc = kiln_kube_apply(out, p->m->client, &r, obj, KILN_FIELD_MANAGER, true, err);
        if (p->user)
            kiln_kube_impersonate(NULL, NULL);
        if (rc == 0) {
            /* As the caches hold it: templates see the same object whether
             * it was observed through a watch or this response. */
            json_object_del(json_object_get(*out, "metadata"), "managedFields");
            *sent = true;
            p->applies++;
            json_object_set_new(p->applied, id, json_string(hash));
            json_object_set(p->latest, id, *out);
        }
    }
    json_decref(cached);
    kiln_xfree(id);
out:
    json_decref(obj);
    return rc;
}

/* One step of a validation node, once per pass: its result becomes the
 * node's observed object, so the next render judges it and its dependents
 * go on in the same pass once it passed. */
static bool run_validation(pass *p, const kiln_render_node *rn)
{
    if (json_object_get(p->validation, rn->id))
        return false;
    kiln_validation_outcome o;
    kiln_validation_step(p->m, p->inst, p->rgd, rn->id, rn->desired,
                         json_object_get(p->old_validation, rn->id), p->m->gpucheck_image, &o);
    json_object_set(p->validation, rn->id, o.status);
    json_object_set(p->observed, rn->id, o.observed);
    if (o.phase == KILN_VALIDATION_FAILED && !p->validation_failed)
        p->validation_failed = kiln_xasprintf("%s: %s", rn->id, o.message ? o.message : "failed");
    else if (o.phase == KILN_VALIDATION_RUNNING && !p->validation_running)
        p->validation_running = kiln_xasprintf("%s: %s", rn->id, o.message ? o.message : "running");
    if (o.requeue_ms > 0 && (p->requeue_ms == 0 || o.requeue_ms < p->requeue_ms))
        p->requeue_ms = o.requeue_ms;
    kiln_validation_outcome_free(&o);
    return true;
}

/* Applies what one render asks for; returns true when anything was sent or
 * newly observed (worth another render). */
static bool apply_render(pass *p, const kiln_render_result *r)
{
    bool progress = false;
    for (size_t i = 0; i < r->nnodes; i++) {
        const kiln_render_node *rn = &r->nodes[i];
        if (!rn->desired || rn->state == KILN_NODE_ERROR || rn->state == KILN_NODE_WAITING ||
            rn->state == KILN_NODE_EXCLUDED)
            continue;
        kiln_graph_node_kind kind = kiln_graph_node_kind_of(p->g, rn->node);
        if (kind == KILN_GRAPH_NODE_VALIDATION) {
            progress = run_validation(p, rn) || progress;
            continue;
        }
        if (rn->read_only) {
            if (!rn->observed) {
                fetch_external(p, rn);
                progress = progress || json_object_get(p->observed, rn->id) != NULL;
            }
            continue;
        }
        bool many = json_is_array(rn->desired);
        json_t *results = json_array();
        size_t k;
        json_t *item;
        bool failed = false;
        json_t *items = many ? json_incref(rn->desired) : json_pack("[O]", rn->desired);
        json_array_foreach(items, k, item)
        {
            json_t *res = NULL;
            bool sent = false;
            kiln_err err = {0};
            int rc = apply_item(p, rn, item, &res, &sent, &err);
            if (rc < 0) {
                failed = true;
                json_object_set_new(p->node_err, rn->id, json_string(err.msg));
                KILN_LOG(KILN_LOG_WARN, "instance %s/%s node %s: %s",
                         p->iref.namespace ? p->iref.namespace : "", p->iref.name, rn->id, err.msg);
                /* Invalid objects and conflicts do not heal by retrying; a
                 * refusal (403: the RGD's service account, or kiln, may not
                 * write it) needs someone to act, so it is Stalled too, but
                 * retried with backoff so a granted role is picked up. */
                bool forbidden = kiln_kube_last_status()->http == 403;
                if (forbidden) {
                    if (!p->stalled)
                        p->stalled = kiln_xasprintf("%s: %s", rn->id, err.msg);
                    p->fail_code = rc;
                } else if (rc == KILN_EINVAL || rc == KILN_ECONFLICT) {
                    if (!p->stalled)
                        p->stalled = kiln_xasprintf("%s: %s", rn->id, err.msg);
                } else {
                    if (!p->retrying)
                        p->retrying = kiln_xasprintf("%s: %s", rn->id, err.msg);
                    p->fail_code = rc;
                }
                continue;
            }
            progress = progress || sent;
            json_array_append_new(results, res);
        }
        json_decref(items);
        /* Found in a cache only now (an informer started this pass): the
         * next render sees it. */
        if (!failed && !rn->observed && json_array_size(results) > 0)
            progress = true;
        if (!failed) {
            if (many)
                json_object_set(p->observed, rn->id, results);
            else if (json_array_size(results) == 1)
                json_object_set(p->observed, rn->id, json_array_get(results, 0));
        }
        json_decref(results);
    }
    return progress;
}

/* Observed objects from the caches, grouped by node. */
static void initial_observed(pass *p, const json_t *children)
{
    json_t *by_node = json_object();
    size_t i;
    json_t *c;
    json_array_foreach(children, i, c)
    {
        const char *node = label(c, KILN_LABEL_NODE);
        if (!node)
            continue;
        json_t *arr = json_object_get(by_node, node);
        if (!arr) {
            arr = json_array();
            json_object_set_new(by_node, node, arr);
        }
        json_array_append(arr, c);
        char *id = identity(c);
        json_object_set(p->latest, id, c);
        kiln_xfree(id);
    }
    size_t n = kiln_graph_node_count(p->g);
    for (size_t k = 0; k < n; k++) {
        const char *id = kiln_graph_node_id(p->g, k);
        json_t *arr = json_object_get(by_node, id);
        if (!arr)
            continue;
        if ((kiln_graph_node_flags(p->g, k) & KILN_GRAPH_NODE_FOREACH) || json_array_size(arr) > 1)
            json_object_set(p->observed, id, arr);
        else
            json_object_set(p->observed, id, json_array_get(arr, 0));
    }
    json_decref(by_node);
}

/* A script node may return a list: its observed objects must be a list too. */
static bool fix_shapes(pass *p, const kiln_render_result *r)
{
    bool changed = false;
    for (size_t i = 0; i < r->nnodes; i++) {
        const kiln_render_node *rn = &r->nodes[i];
        json_t *o = json_object_get(p->observed, rn->id);
        if (o && json_is_array(rn->desired) && json_is_object(o)) {
            json_object_set_new(p->observed, rn->id, json_pack("[O]", o));
            changed = true;
        }
    }
    return changed;
}

static json_t *resource_entry(const char *id, const json_t *obj, const char *state,
                              const char *message, const char *kind_fallback)
{
    const char *ns = kiln_json_get_string(obj, "metadata.namespace");
    const char *kind = kiln_json_get_string(obj, "kind");
    json_t *e = json_pack("{s:s}", "id", id);
    if (kind || kind_fallback)
        json_object_set_new(e, "kind", json_string(kind ? kind : kind_fallback));
    if (kiln_json_get_string(obj, "metadata.name"))
        json_object_set_new(e, "name", json_string(kiln_json_get_string(obj, "metadata.name")));
    if (ns)
        json_object_set_new(e, "namespace", json_string(ns));
    json_object_set_new(e, "state", json_string(state));
    if (message && *message)
        json_object_set_new(e, "message", json_string(message));
    return e;
}

/* The summary status is built from. */
static void summarize(pass *p, const kiln_render_result *r, kiln_status_input *in,
                      json_t *resources, char **not_ready, bool *resolved)
{
    *resolved = true;
    for (size_t i = 0; i < r->nnodes; i++) {
        const kiln_render_node *rn = &r->nodes[i];
        const char *kind_written = kiln_graph_node_object_kind(p->g, rn->node);
        if (kind_written && strstr(kind_written, "${"))
            kind_written = NULL;
        const char *apply_err = json_string_value(json_object_get(p->node_err, rn->id));
        kiln_node_state st = rn->state;
        const char *msg = rn->message;
        if (apply_err) {
            st = KILN_NODE_ERROR;
            msg = apply_err;
        }
        bool validation = kiln_graph_node_kind_of(p->g, rn->node) == KILN_GRAPH_NODE_VALIDATION;
        if (st != KILN_NODE_EXCLUDED) {
            if (validation) {
                in->validations++;
                if (st == KILN_NODE_READY)
                    in->validations_ready++;
            } else {
                in->nodes++;
                if (st == KILN_NODE_READY)
                    in->ready++;
            }
        }
        if (st == KILN_NODE_WAITING || st == KILN_NODE_ERROR ||
            (st == KILN_NODE_PENDING && !rn->desired))
            *resolved = false;
        if (st == KILN_NODE_ERROR && !apply_err && rn->code != KILN_EIO &&
            rn->code != KILN_ETIMEOUT && !p->stalled)
            p->stalled = kiln_xasprintf("%s: %s", rn->id, msg ? msg : "error");
        if (st != KILN_NODE_READY && st != KILN_NODE_EXCLUDED && !validation && !*not_ready)
            *not_ready = kiln_xasprintf("%s: %s", rn->id, msg ? msg : kiln_node_state_name(st));
        const char *sname = kiln_node_state_name(st);
        json_t *obs = json_object_get(p->observed, rn->id);
        const json_t *shown = rn->desired ? rn->desired : obs;
        if (validation) {
            json_array_append_new(resources, resource_entry(rn->id, NULL, sname, msg, NULL));
        } else if (json_is_array(shown)) {
            size_t k;
            json_t *o;
            json_array_foreach(shown, k, o) json_array_append_new(
                resources, resource_entry(rn->id, o, sname, msg, kind_written));
            if (json_array_size(shown) == 0)
                json_array_append_new(resources,
                                      resource_entry(rn->id, NULL, sname, msg, kind_written));
        } else {
            json_array_append_new(resources,
                                  resource_entry(rn->id, shown, sname, msg, kind_written));
        }
    }
}

static int prune(pass *p, const json_t *children, kiln_err *err)
{
    int rc = 0;
    json_t *gone = kiln_inventory_prune_set(children, &p->keep);
    size_t i;
    json_t *o;
    json_array_foreach(gone, i, o)
    {
        /* Validation Jobs and their pods are the validation step's to
         * keep or delete. */
        if (kiln_json_get_path(o, "metadata.deletionTimestamp") || label(o, KILN_LABEL_VALIDATION))
            continue;
        child_ref cr;
        if (resolve(p->m, &cr, kiln_json_get_string(o, "apiVersion"),
                    kiln_json_get_string(o, "kind"), err) < 0) {
            rc = err ? err->code : KILN_EIO;
            break;
        }
        kiln_kube_ref r = kref(&cr, kiln_json_get_string(o, "metadata.namespace"),
                               kiln_json_get_string(o, "metadata.name"));
        kiln_kube_delete_opts dopts = {.propagation_policy = "Background",
                                       .precondition_uid = kiln_json_get_string(o, "metadata.uid")};
        KILN_LOG(KILN_LOG_INFO, "pruning %s %s (node %s)", kiln_json_get_string(o, "kind"),
                 kiln_json_get_string(o, "metadata.name"), label(o, KILN_LABEL_NODE));
        int drc = delete_as(p->m, p->user, &r, &dopts, err);
        if (drc < 0 && drc != KILN_ENOTFOUND) {
            rc = drc;
            break;
        }
    }
    json_decref(gone);
    /* Shrink the record to what is there now. */
    if (rc == 0 && !kiln_inventory_subset(&p->inv, &p->keep))
        rc = write_inventory(p->m, &p->iref, &p->inst, &p->keep, false, err);
    return rc;
}

int kiln_instance_reconcile(kiln_worker *w, const char *rgd, const char *ns, const char *name,
                            int64_t *requeue_ms, kiln_err *err)
{
    kiln_manager *m = w->mgr;
    int rc = 0;
    pass p;
    memset(&p, 0, sizeof(p));
    kiln_inventory_init(&p.inv);
    kiln_inventory_init(&p.keep);
    kiln_render_result *r = NULL;
    json_t *children = NULL, *status = NULL, *resources = NULL, *old_status = NULL, *kept = NULL;
    char *not_ready = NULL, *graph_error = NULL;
    kiln_status_input in;
    memset(&in, 0, sizeof(in));
    char now[32];
    kiln_status_now(now);

    kiln_rgd_entry *e = kiln_manager_rgd_entry(m, rgd);
    pthread_mutex_lock(&m->lock);
    kiln_kube_informer *inf = e->instances;
    pthread_mutex_unlock(&m->lock);
    if (!inf)
        return 0;
    p.inst = kiln_kube_informer_get(inf, ns && *ns ? ns : NULL, name);
    if (!p.inst)
        return 0;
    old_status = json_incref(json_object_get(p.inst, "status"));
    kiln_ctl_graph *cg = kiln_manager_graph_acquire(m, rgd);
    p.m = m;
    p.w = w;
    p.rgd = rgd;
    const char *uid = kiln_json_get_string(p.inst, "metadata.uid");
    p.uid = kiln_xstrdup(uid ? uid : "");
    /* The kind's resource comes from the informer that cached the object. */
    pthread_mutex_lock(&m->lock);
    char group[254], version[64], resource[254];
    snprintf(group, sizeof(group), "%s", e->group);
    snprintf(version, sizeof(version), "%s", e->version);
    snprintf(resource, sizeof(resource), "%s", e->resource);
    pthread_mutex_unlock(&m->lock);
    p.iref = (kiln_kube_ref){.group = group,
                             .version = version,
                             .resource = resource,
                             .namespace = ns && *ns ? ns : NULL,
                             .name = name};
    int64_t gen = json_integer_value(kiln_json_get_path(p.inst, "metadata.generation"));
    in.generation = gen;

    if (kiln_json_get_path(p.inst, "metadata.deletionTimestamp")) {
        if (!kiln_ctl_has_finalizer(p.inst))
            goto out;
        in.deleting = true;
        status = kiln_status_instance(old_status, &in, now);
        /* Keep what status said about the children while they go. */
        json_t *res = json_object_get(old_status, "resources");
        if (res)
            json_object_set(status, "resources", res);
        if (write_instance_status(m, &p.iref, p.inst, status, NULL) == 0)
            emit_state_event(m, p.inst, old_status, status);
        p.user = children_user(m, cg ? cg->g : NULL, p.inst);
        rc = reconcile_delete(m, &p.iref, &p.inst, p.user, requeue_ms, err);
        goto out;
    }

    if (!cg) {
        graph_error = kiln_xasprintf("ResourceGraphDefinition %s has no accepted graph", rgd);
        in.graph_error = graph_error;
        goto write;
    }
    p.g = cg->g;
    p.user = children_user(m, p.g, p.inst);
    if (kiln_instance_suspended(p.inst)) {
        in.suspended = true;
        goto write;
    }
    /* Added with the first inventory write, before any child exists. */
    p.need_finalizer = !kiln_ctl_has_finalizer(p.inst);
    kiln_err ierr = {0};
    if (kiln_inventory_parse(
            &p.inv,
            json_string_value(json_object_get(kiln_json_get_path(p.inst, "metadata.annotations"),
                                              KILN_ANN_INVENTORY)),
            &ierr) < 0)
        KILN_LOG(KILN_LOG_WARN, "instance %s: %s (starting a new one)", name, ierr.msg);

    size_t norder = 0;
    const size_t *order = kiln_graph_topological_order(p.g, &norder);
    for (size_t i = 0; i < norder && i < 1024; i++)
        if (order[i] < 1024)
            p.wave_of[order[i]] = (int)i;

    p.observed = json_object();
    p.latest = json_object();
    p.applied = json_object();
    p.node_err = json_object();
    p.validation = json_object();
    p.old_validation = json_object_get(old_status, "validation");
    children = gather_children(m, p.uid);
    initial_observed(&p, children);

    /* Each round renders with what the last one applied; a DAG of depth D
     * needs at most D + 1 rounds when every object is ready at once. */
    for (size_t round = 0; round <= norder + 1; round++) {
        kiln_render_result_free(r);
        r = NULL;
        kiln_err rerr = {0};
        if (kiln_graph_render(&r, p.g, w->L, p.inst, p.observed, NULL, &rerr) < 0) {
            p.stalled = kiln_xasprintf("the instance is invalid: %s", rerr.msg);
            break;
        }
        pthread_mutex_lock(&m->lock);
        cg->bound |= (uint64_t)1 << w->index;
        pthread_mutex_unlock(&m->lock);
        if (fix_shapes(&p, r))
            continue;
        if (!apply_render(&p, r))
            break;
    }

    resources = json_array();
    bool resolved = false;
    if (r) {
        summarize(&p, r, &in, resources, &not_ready, &resolved);
        in.projected = r->status;
    }
    /* Prune only when every node resolved: a node that is merely waiting must
     * not lose its object. */
    if (r && resolved && json_object_size(p.node_err) == 0 && !p.stalled) {
        kiln_err perr = {0};
        if (prune(&p, children, &perr) < 0) {
            p.retrying = kiln_xasprintf("prune: %s", perr.msg);
            p.fail_code = perr.code ? perr.code : KILN_EIO;
        }
    }
    if (p.need_finalizer) {
        rc = set_instance_finalizer(m, &p.iref, &p.inst, true, err);
        if (rc < 0)
            goto out;
    }
    in.resources = resources;
    in.not_ready = not_ready;
    in.stalled = p.stalled;
    in.retrying = p.retrying;
    in.validation_failed = p.validation_failed;
    in.validation_running = p.validation_running;
    if (json_object_size(p.validation) > 0)
        in.validation = p.validation;
    if (p.requeue_ms > 0 && (*requeue_ms <= 0 || p.requeue_ms < *requeue_ms))
        *requeue_ms = p.requeue_ms;
    /* A missing discovery entry (the kind's CRD not installed yet) is not
     * watched: look again later. */
    if (p.external_missing && (*requeue_ms <= 0 || *requeue_ms > 30000))
        *requeue_ms = 30000;

write:
    /* Suspended or without a graph, nothing was rendered: the projected
     * fields last written stay (kiln's own fields are rebuilt). */
    if (!r && json_is_object(old_status)) {
        static const char *const own[] = {"observedGeneration", "conditions", "state", "resources",
                                          "validation"};
        kept = json_deep_copy(old_status);
        for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
            json_object_del(kept, own[i]);
        in.projected = kept;
    }
    if (!status) {
        status = kiln_status_instance(old_status, &in, now);
        if (!in.resources && old_status && json_object_get(old_status, "resources"))
            json_object_set(status, "resources", json_object_get(old_status, "resources"));
        /* Results stay on record while suspended or without a graph. */
        if (!in.validation && !in.resources && json_object_get(old_status, "validation"))
            json_object_set(status, "validation", json_object_get(old_status, "validation"));
    }
    {
        kiln_err serr = {0};
        int src = write_instance_status(m, &p.iref, p.inst, status, &serr);
        if (src == 0)
            emit_state_event(m, p.inst, old_status, status);
        else if (rc == 0) {
            rc = src;
            if (err)
                *err = serr;
        }
    }
    if (rc == 0 && p.fail_code) {
        rc = p.fail_code;
        kiln_err_set(err, rc, "%s", p.retrying ? p.retrying : "apply failed");
    }
out:
    json_decref(kept);
    kiln_render_result_free(r);
    kiln_manager_graph_release(m, cg);
    json_decref(children);
    json_decref(status);
    json_decref(resources);
    json_decref(old_status);
    json_decref(p.inst);
    json_decref(p.observed);
    json_decref(p.latest);
    json_decref(p.applied);
    json_decref(p.node_err);
    json_decref(p.validation);
    kiln_xfree(p.validation_failed);
    kiln_xfree(p.validation_running);
    kiln_inventory_free(&p.inv);
    kiln_inventory_free(&p.keep);
    kiln_xfree(p.stalled);
    kiln_xfree(p.retrying);
    kiln_xfree(p.uid);
    kiln_xfree(p.user);
    kiln_xfree(not_ready);
    kiln_xfree(graph_error);
    return rc;
}
