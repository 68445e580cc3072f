/* devcluster/router.c: REST paths to verbs (get, list, watch, create, update,
 * patch, delete, deletecollection) and the object semantics around them:
 * uid, creationTimestamp, resourceVersion, generation, status/scale
 * subresources, finalizers and deletionTimestamp, managedFields.
 *
 * Paths follow API concepts "Resource URIs": /api/v1/... for the core group,
 * /apis/{group}/{version}/... otherwise, optionally /namespaces/{ns}/ before
 * the resource, then {name} and a subresource.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "devcluster/internal.h"

typedef struct ctx {
    kiln_devcluster *dc;
    const kiln_devcluster_request *req;
    kiln_devcluster_response *resp;
    kiln_dc_resource *r;
    char ns[256];
    bool has_ns;
    char name[256];
    bool has_name;
    char sub[32];
    char manager[160];
} ctx;

#define MAX_NAME 253

static void not_found_obj(ctx *c)
{
    char q[300];
    kiln_dc_qualified(c->r, q, sizeof q);
    kiln_dc_status(c->resp, 404, "NotFound", kiln_dc_details(c->r, c->name), "%s \"%s\" not found",
                   q, c->name);
}

static void not_found_path(kiln_devcluster_response *resp)
{
    kiln_dc_status(resp, 404, "NotFound", json_pack("{}"),
                   "the server could not find the requested resource");
}

static void invalid(ctx *c, const char *name, const char *field, const char *reason,
                    const char *detail)
{
    json_t *d = kiln_dc_details(c->r, name);
    json_object_set_new(d, "kind", json_string(c->r->kind));
    json_object_set_new(
        d, "causes",
        json_pack("[{s:s,s:s,s:s}]", "reason", reason, "message", detail, "field", field));
    char q[300];
    if (c->r->group[0])
        snprintf(q, sizeof q, "%s.%s", c->r->kind, c->r->group);
    else
        snprintf(q, sizeof q, "%s", c->r->kind);
    kiln_dc_status(c->resp, 422, "Invalid", d, "%s \"%s\" is invalid: %s: %s", q, name ? name : "",
                   field, detail);
}

static const char *rv_of(const json_t *obj)
{
    return kiln_dc_meta_str(obj, "resourceVersion");
}

static json_t *meta(json_t *obj)
{
    json_t *md = json_object_get(obj, "metadata");
    if (!json_is_object(md)) {
        md = json_object();
        json_object_set_new(obj, "metadata", md);
    }
    return md;
}

static bool name_ok(const kiln_dc_resource *r, const char *name, const char **why)
{
    if (!strcmp(r->plural, "namespaces")) {
        *why = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
               "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
               "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
        return kiln_dc_valid_label_name(name);
    }
    if (!strcmp(r->plural, "services")) {
        *why = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
               "with an alphabetic character, and end with an alphanumeric character (e.g. "
               "'my-name',  or 'abc-123', regex used for validation is "
               "'[a-z]([-a-z0-9]*[a-z0-9])?')";
        return kiln_dc_valid_label_name(name) && isalpha((unsigned char)name[0]);
    }
    if (!strncmp(r->group, "rbac.", 5)) {
        /* RBAC names are path segments: anything but "/", "%", "." and "..". */
        *why = "may not contain '/' or '%'";
        return *name && !strpbrk(name, "/%") && strcmp(name, ".") && strcmp(name, "..");
    }
    *why = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
           "'-' or '.', and must start and end with an alphanumeric character (e.g. "
           "'example.com', regex used for validation is "
           "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    return kiln_dc_valid_subdomain(name);
}

static void field_manager(ctx *c)
{
    char *fm = kiln_dc_query_get(c->req->query, "fieldManager");
    if (fm && *fm) {
        snprintf(c->manager, sizeof c->manager, "%s", fm);
    } else {
        /* Default manager: the User-Agent up to the first '/' (handlers/create.go). */
        const char *ua = c->req->user_agent ? c->req->user_agent : "unknown";
        size_t n = strcspn(ua, "/");
        if (n >= sizeof c->manager)
            n = sizeof c->manager - 1;
        memcpy(c->manager, ua, n);
        c->manager[n] = '\0';
    }
    kiln_xfree(fm);
}

static bool namespace_usable(ctx *c)
{
    if (!c->r->namespaced)
        return true;
    kiln_dc_resource *nsr = kiln_dc_kinds_find(c->dc, "", "v1", "namespaces");
    kiln_dc_object *o = kiln_dc_store_get(nsr, "", c->ns);
    if (!o) {
        kiln_dc_status(c->resp, 404, "NotFound",
                       json_pack("{s:s,s:s}", "name", c->ns, "kind", "namespaces"),
                       "namespaces \"%s\" not found", c->ns);
        return false;
    }
    if (strstr(o->json, "\"deletionTimestamp\"")) {
        kiln_dc_status(c->resp, 403, "Forbidden",
                       json_pack("{s:s,s:s}", "name", c->ns, "kind", "namespaces"),
                       "unable to create new content in namespace %s because it is being "
                       "terminated",
                       c->ns);
        return false;
    }
    return true;
}

/* The object without metadata and status: what generation tracks. */
static bool spec_equal(const json_t *a, const json_t *b)
{
    json_t *x = json_copy((json_t *)a), *y = json_copy((json_t *)b);
    json_object_del(x, "metadata");
    json_object_del(y, "metadata");
    json_object_del(x, "status");
    json_object_del(y, "status");
    bool eq = json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return eq;
}

static bool same_ignoring_managed_time(const json_t *a, const json_t *b)
{
    json_t *x = json_deep_copy(a), *y = json_deep_copy(b);
    json_t *mx = json_object_get(json_object_get(x, "metadata"), "managedFields");
    json_t *my = json_object_get(json_object_get(y, "metadata"), "managedFields");
    size_t i;
    json_t *e;
    json_array_foreach(mx, i, e) json_object_del(e, "time");
    json_array_foreach(my, i, e) json_object_del(e, "time");
    bool eq = json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return eq;
}

static void builtin_defaults(kiln_devcluster *dc, kiln_dc_resource *r, json_t *obj, bool create)
{
    if (r->is_crd)
        return;
    json_t *spec = json_object_get(obj, "spec");
    if (!strcmp(r->plural, "namespaces")) {
        json_object_set_new(obj, "spec", json_pack("{s:[s]}", "finalizers", "kubernetes"));
        if (create || !json_object_get(obj, "status"))
            json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Active"));
        json_t *labels = json_object_get(meta(obj), "labels");
        if (!json_is_object(labels)) {
            labels = json_object();
            json_object_set_new(meta(obj), "labels", labels);
        }
        json_object_set_new(labels, "kubernetes.io/metadata.name",
                            json_string(kiln_dc_meta_str(obj, "name")));
    } else if (!strcmp(r->plural, "services") && json_is_object(spec)) {
        if (!json_object_get(spec, "type"))
            json_object_set_new(spec, "type", json_string("ClusterIP"));
        const char *type = json_string_value(json_object_get(spec, "type"));
        if (create && type && strcmp(type, "ExternalName") && !json_object_get(spec, "clusterIP")) {
            char ip[32];
            snprintf(ip, sizeof ip, "10.96.%llu.%llu", (unsigned long long)(dc->rv / 250) % 250,
                     (unsigned long long)(dc->rv % 250) + 2);
            json_object_set_new(spec, "clusterIP", json_string(ip));
            json_object_set_new(spec, "clusterIPs", json_pack("[s]", ip));
        }
        if (!json_object_get(spec, "sessionAffinity"))
            json_object_set_new(spec, "sessionAffinity", json_string("None"));
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(spec, "ports"), i, p)
        {
            if (!json_object_get(p, "protocol"))
                json_object_set_new(p, "protocol", json_string("TCP"));
            if (!json_object_get(p, "targetPort") && json_object_get(p, "port"))
                json_object_set(p, "targetPort", json_object_get(p, "port"));
        }
    } else if (!strcmp(r->plural, "deployments") && json_is_object(spec)) {
        if (!json_object_get(spec, "replicas"))
            json_object_set_new(spec, "replicas", json_integer(1));
        if (!json_object_get(spec, "revisionHistoryLimit"))
            json_object_set_new(spec, "revisionHistoryLimit", json_integer(10));
        if (!json_object_get(spec, "progressDeadlineSeconds"))
            json_object_set_new(spec, "progressDeadlineSeconds", json_integer(600));
        if (!json_object_get(spec, "strategy"))
            json_object_set_new(spec, "strategy",
                                json_pack("{s:s,s:{s:s,s:s}}", "type", "RollingUpdate",
                                          "rollingUpdate", "maxSurge", "25%", "maxUnavailable",
                                          "25%"));
    } else if ((!strcmp(r->plural, "statefulsets") || !strcmp(r->plural, "replicasets")) &&
               json_is_object(spec)) {
        if (!json_object_get(spec, "replicas"))
            json_object_set_new(spec, "replicas", json_integer(1));
    } else if (!strcmp(r->plural, "pods") && create) {
        json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Pending"));
    }
}

/* Checks and fills what every create needs; false when resp holds an error. */
static bool prepare_create(ctx *c, json_t *obj)
{
    json_t *md = meta(obj);
    char av[300];
    kiln_dc_api_version(c->r, av, sizeof av);
    const char *bav = json_string_value(json_object_get(obj, "apiVersion"));
    const char *bkind = json_string_value(json_object_get(obj, "kind"));
    if ((bav && strcmp(bav, av)) || (bkind && strcmp(bkind, c->r->kind))) {
        kiln_dc_status(c->resp, 400, "BadRequest", NULL,
                       "the API version in the data (%s) does not match the expected API version "
                       "(%s)",
                       bav ? bav : "", av);
        return false;
    }
    json_object_set_new(obj, "apiVersion", json_string(av));
    json_object_set_new(obj, "kind", json_string(c->r->kind));
    const char *bns = json_string_value(json_object_get(md, "namespace"));
    if (c->r->namespaced) {
        if (bns && *bns && strcmp(bns, c->ns)) {
            kiln_dc_status(c->resp, 400, "BadRequest", NULL,
                           "the namespace of the provided object does not match the namespace "
                           "sent on the request");
            return false;
        }
        json_object_set_new(md, "namespace", json_string(c->ns));
    } else {
        json_object_del(md, "namespace");
    }
    const char *name = json_string_value(json_object_get(md, "name"));
    const char *gen = json_string_value(json_object_get(md, "generateName"));
    char generated[MAX_NAME + 8];
    if ((!name || !*name) && gen && *gen) {
        static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
        size_t glen = strlen(gen);
        if (glen > 58)
            glen = 58;
        memcpy(generated, gen, glen);
        for (int i = 0; i < 5; i++)
            generated[glen + (size_t)i] = alnum[rand() % (int)(sizeof alnum - 1)];
        generated[glen + 5] = '\0';
        json_object_set_new(md, "name", json_string(generated));
        name = json_string_value(json_object_get(md, "name"));
    }
    if (!name || !*name) {
        invalid(c, "", "metadata.name", "FieldValueRequired",
                "Required value: name or generateName is required");
        return false;
    }
    const char *why;
    if (!name_ok(c->r, name, &why)) {
        char detail[900];
        snprintf(detail, sizeof detail, "Invalid value: \"%.200s\": %s", name, why);
        invalid(c, name, "metadata.name", "FieldValueInvalid", detail);
        return false;
    }
    snprintf(c->name, sizeof c->name, "%s", name);
    c->has_name = true;
    json_t *owners = json_object_get(md, "ownerReferences");
    size_t i, controllers = 0;
    json_t *o;
    json_array_foreach(owners, i, o) controllers += json_is_true(json_object_get(o, "controller"));
    if (controllers > 1) {
        invalid(c, name, "metadata.ownerReferences", "FieldValueInvalid",
                "Invalid value: []: Only one reference can have Controller set to true");
        return false;
    }
    char uid[37], ts[32];
    kiln_dc_uid(uid);
    kiln_dc_timestamp(ts);
    json_object_set_new(md, "uid", json_string(uid));
    json_object_set_new(md, "creationTimestamp", json_string(ts));
    json_object_del(md, "resourceVersion");
    json_object_del(md, "deletionTimestamp");
    json_object_del(md, "deletionGracePeriodSeconds");
    json_object_del(md, "selfLink");
    if (c->r->generation || c->r->is_crd)
        json_object_set_new(md, "generation", json_integer(1));
    else
        json_object_del(md, "generation");
    /* Status is server-owned where a status subresource exists: reset on create. */
    if (c->r->status_sub && strcmp(c->r->plural, "customresourcedefinitions"))
        json_object_del(obj, "status");
    builtin_defaults(c->dc, c->r, obj, true);
    return true;
}

static void reply_object(ctx *c, int code, const kiln_dc_object *o)
{
    if (kiln_dc_wants_table(c->req->accept)) {
        json_t *arr = json_array();
        json_array_append_new(arr, kiln_dc_store_load(o));
        char rv[24];
        snprintf(rv, sizeof rv, "%llu", (unsigned long long)o->rv);
        json_t *t = kiln_dc_table_new(c->r, arr, true, rv);
        kiln_dc_reply_json(c->resp, code, t);
        json_decref(t);
        json_decref(arr);
        return;
    }
    kiln_buf_reset(&c->resp->body);
    kiln_buf_append(&c->resp->body, o->json, o->len, NULL);
    c->resp->status = code;
    snprintf(c->resp->content_type, sizeof c->resp->content_type, "application/json");
}

static bool admit(ctx *c, json_t *obj)
{
    if (c->r->is_crd) {
        char *fv = kiln_dc_query_get(c->req->query, "fieldValidation");
        bool strict = fv && !strcmp(fv, "Strict");
        kiln_xfree(fv);
        if (kiln_dc_crd_admit(c->r, obj, strict, c->resp) < 0)
            return false;
    }
    if (!strcmp(c->r->plural, "customresourcedefinitions") && c->r->group[0] == 'a' &&
        !strcmp(c->r->group, "apiextensions.k8s.io")) {
        if (kiln_dc_crd_check(c->dc, obj, c->resp) < 0)
            return false;
    }
    return true;
}

static bool is_crd_kind(const kiln_dc_resource *r)
{
    return !strcmp(r->plural, "customresourcedefinitions") &&
           !strcmp(r->group, "apiextensions.k8s.io");
}

static void do_create(ctx *c, json_t *obj, bool apply)
{
    if (!prepare_create(c, obj))
        return;
    if (kiln_dc_store_get(c->r, c->ns, c->name)) {
        char q[300];
        kiln_dc_qualified(c->r, q, sizeof q);
        kiln_dc_status(c->resp, 409, "AlreadyExists", kiln_dc_details(c->r, c->name),
                       "%s \"%s\" already exists", q, c->name);
        return;
    }
    if (!admit(c, obj))
        return;
    if (!apply) {
        char av[300];
        kiln_dc_api_version(c->r, av, sizeof av);
        json_object_del(meta(obj), "managedFields");
        kiln_dc_managed_update(obj, NULL, c->manager, av, NULL);
    }
    kiln_dc_object *o = kiln_dc_store_put(c->dc, c->r, obj, true);
    if (is_crd_kind(c->r))
        kiln_dc_crd_serve(c->dc, obj);
    reply_object(c, 201, o);
}

/* Removes an object for good: DELETED event, CRD unserving, dependents left to GC. */
static void finalize_delete(kiln_devcluster *dc, kiln_dc_resource *r, json_t *obj)
{
    bool crd = is_crd_kind(r);
    char *crd_name = crd ? kiln_xstrdup(kiln_dc_meta_str(obj, "name")) : NULL;
    kiln_dc_store_delete(dc, r, obj);
    if (crd)
        kiln_dc_crd_unserve(dc, crd_name);
    kiln_xfree(crd_name);
}

/* Stores an update of old (borrowed) to obj (borrowed), handling generation,
 * deletion by finalizer removal and no-ops. Replies with code. */
static void commit(ctx *c, const json_t *old, json_t *obj, bool apply, const char *sub, int code)
{
    json_t *md = meta(obj);
    json_t *omd = json_object_get(old, "metadata");
    static const char *keep[] = {
        "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "namespace",
        "name"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        json_t *v = json_object_get(omd, keep[i]);
        if (v)
            json_object_set(md, keep[i], v);
        else
            json_object_del(md, keep[i]);
    }
    char av[300];
    kiln_dc_api_version(c->r, av, sizeof av);
    json_object_set_new(obj, "apiVersion", json_string(av));
    json_object_set_new(obj, "kind", json_string(c->r->kind));
    if (c->r->status_sub && !is_crd_kind(c->r)) {
        if (sub && !strcmp(sub, "status")) {
            /* /status writes change only .status (API conventions, status subresource). */
            /* As the built-in status strategies: everything but metadata and
             * status comes from the stored object. */
            json_t *base = json_deep_copy(old);
            json_object_del(base, "metadata");
            json_object_del(base, "status");
            json_t *st = json_object_get(obj, "status");
            if (st)
                json_object_set(base, "status", st);
            json_object_set(base, "metadata", md);
            json_object_clear(obj);
            json_object_update(obj, base);
            json_decref(base);
            md = meta(obj);
        } else {
            json_t *st = json_object_get(old, "status");
            if (st)
                json_object_set(obj, "status", st);
            else
                json_object_del(obj, "status");
        }
    }
    if (!strcmp(c->r->plural, "namespaces"))
        builtin_defaults(c->dc, c->r, obj, false);
    json_t *ogen = json_object_get(omd, "generation");
    if (ogen) {
        json_int_t g = json_integer_value(ogen);
        if (!spec_equal(old, obj))
            g++;
        json_object_set_new(md, "generation", json_integer(g));
    }
    if (!admit(c, obj))
        return;
    bool deleting = json_object_get(omd, "deletionTimestamp") != NULL;
    if (deleting) {
        json_t *of = json_object_get(omd, "finalizers");
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(md, "finalizers"), i, f)
        {
            bool had = false;
            size_t j;
            json_t *g;
            json_array_foreach(of, j, g) had |= json_equal(f, g);
            if (!had) {
                invalid(c, c->name, "metadata.finalizers", "FieldValueForbidden",
                        "Forbidden: no new finalizers can be added if the object is being "
                        "deleted");
                return;
            }
        }
    }
    if (!apply) {
        /* A non-apply write that sets managedFields to [{}] resets them (SSA docs). */
        json_t *mf = json_object_get(md, "managedFields");
        if (json_array_size(mf) == 1 && json_object_size(json_array_get(mf, 0)) == 0)
            json_object_del(md, "managedFields");
        else {
            /* The stored entries, copied: the update edits them in place. */
            json_t *omf = json_object_get(omd, "managedFields");
            json_object_set_new(md, "managedFields", omf ? json_deep_copy(omf) : json_array());
        }
        kiln_dc_managed_update(obj, old, c->manager, av, sub);
        if (json_array_size(json_object_get(md, "managedFields")) == 0)
            json_object_del(md, "managedFields");
    }
    json_object_set(md, "resourceVersion", json_object_get(omd, "resourceVersion"));
    if (deleting && json_array_size(json_object_get(md, "finalizers")) == 0) {
        finalize_delete(c->dc, c->r, obj);
        kiln_dc_reply_json(c->resp, 200, obj);
        return;
    }
    /* A no-op keeps its resourceVersion, so `kubectl patch` can say "(no change)". */
    if (same_ignoring_managed_time(old, obj)) {
        kiln_dc_object *o = kiln_dc_store_get(c->r, c->ns, c->name);
        reply_object(c, 200, o);
        return;
    }
    kiln_dc_object *o = kiln_dc_store_put(c->dc, c->r, obj, false);
    reply_object(c, code, o);
}

static bool check_rv_precondition(ctx *c, const json_t *old, const json_t *body)
{
    const char *want = rv_of(body);
    if (want && *want && strcmp(want, rv_of(old))) {
        char q[300];
        kiln_dc_qualified(c->r, q, sizeof q);
        kiln_dc_status(c->resp, 409, "Conflict", kiln_dc_details(c->r, c->name),
                       "Operation cannot be fulfilled on %s \"%s\": the object has been modified; "
                       "please apply your changes to the latest version and try again",
                       q, c->name);
        return false;
    }
    return true;
}

/* ---- scale ---- */

static json_t *path_get(const json_t *obj, const char *dotted)
{
    if (!dotted)
        return NULL;
    return kiln_dc_jsonpath(obj, dotted);
}

static json_t *scale_of(ctx *c, const json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    json_t *st = json_object_get(obj, "status");
    json_int_t want = 1, have = 0;
    char selector[1024] = "";
    if (c->r->is_crd) {
        json_t *v = path_get(obj, c->r->scale_spec);
        want = json_integer_value(v);
        json_decref(v);
        v = path_get(obj, c->r->scale_status);
        have = json_integer_value(v);
        json_decref(v);
        v = path_get(obj, c->r->scale_selector);
        if (json_is_string(v))
            snprintf(selector, sizeof selector, "%s", json_string_value(v));
        json_decref(v);
    } else {
        if (json_is_integer(json_object_get(spec, "replicas")))
            want = json_integer_value(json_object_get(spec, "replicas"));
        have = json_integer_value(json_object_get(st, "replicas"));
        json_t *ml = json_object_get(json_object_get(spec, "selector"), "matchLabels");
        const char *k;
        json_t *v;
        size_t len = 0;
        json_object_foreach(ml, k, v)
        {
            len += (size_t)snprintf(selector + len, sizeof selector - len, "%s%s=%s",
                                    len ? "," : "", k, json_string_value(v));
            if (len >= sizeof selector)
                break;
        }
    }
    json_t *omd = json_object_get(obj, "metadata");
    json_t *md = json_object();
    static const char *keys[] = {"name", "namespace", "uid", "resourceVersion",
                                 "creationTimestamp"};
    for (size_t i = 0; i < 5; i++)
        if (json_object_get(omd, keys[i]))
            json_object_set(md, keys[i], json_object_get(omd, keys[i]));
    json_t *s = json_pack("{s:s,s:s,s:o,s:{s:I},s:{s:I}}", "kind", "Scale", "apiVersion",
                          "autoscaling/v1", "metadata", md, "spec", "replicas", (json_int_t)want,
                          "status", "replicas", (json_int_t)have);
    if (selector[0])
        json_object_set_new(json_object_get(s, "status"), "selector", json_string(selector));
    return s;
}

static void set_replicas(ctx *c, json_t *obj, json_int_t n)
{
    if (c->r->is_crd && c->r->scale_spec) {
        /* ".spec.size" style path: walk, creating objects. */
        char *p =
            kiln_xstrdup(c->r->scale_spec[0] == '.' ? c->r->scale_spec + 1 : c->r->scale_spec);
        json_t *cur = obj;
        char *save = NULL;
        char *seg = strtok_r(p, ".", &save);
        while (seg) {
            char *next = strtok_r(NULL, ".", &save);
            if (!next) {
                json_object_set_new(cur, seg, json_integer(n));
                break;
            }
            json_t *child = json_object_get(cur, seg);
            if (!json_is_object(child)) {
                child = json_object();
                json_object_set_new(cur, seg, child);
            }
            cur = child;
            seg = next;
        }
        kiln_xfree(p);
        return;
    }
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec)) {
        spec = json_object();
        json_object_set_new(obj, "spec", spec);
    }
    json_object_set_new(spec, "replicas", json_integer(n));
}

/* ---- verbs ---- */

static void do_get(ctx *c)
{
    kiln_dc_object *o = kiln_dc_store_get(c->r, c->ns, c->name);
    if (!o) {
        not_found_obj(c);
        return;
    }
    if (!strcmp(c->sub, "scale")) {
        json_t *obj = kiln_dc_store_load(o);
        json_t *s = scale_of(c, obj);
        kiln_dc_reply_json(c->resp, 200, s);
        json_decref(s);
        json_decref(obj);
        return;
    }
    reply_object(c, 200, o);
}

static void do_list(ctx *c)
{
    kiln_err err = {0};
    kiln_dc_selector ls = {0}, fs = {0};
    char *lstr = kiln_dc_query_get(c->req->query, "labelSelector");
    char *fstr = kiln_dc_query_get(c->req->query, "fieldSelector");
    char *limit_s = kiln_dc_query_get(c->req->query, "limit");
    char *cont = kiln_dc_query_get(c->req->query, "continue");
    kiln_dc_object **objs = NULL;
    json_t *table_items = NULL;
    kiln_buf tok = {0};
    if (kiln_dc_selector_parse(&ls, lstr, false, &err) < 0 ||
        kiln_dc_selector_parse(&fs, fstr, true, &err) < 0 ||
        kiln_dc_fields_check(&fs, c->r, &err) < 0) {
        kiln_dc_status(c->resp, 400, "BadRequest", NULL, "unable to parse requirement: %s",
                       err.msg);
        goto done;
    }
    long limit = limit_s ? strtol(limit_s, NULL, 10) : 0;
    char start_after[600] = "";
    unsigned long long list_rv = c->dc->rv;
    if (cont && *cont) {
        /* continue = base64({"rv":N,"start":"<last key>"}), opaque to clients. */
        kiln_buf_init(&tok, 4096);
        json_t *t = NULL;
        if (kiln_dc_unbase64(cont, &tok) == 0)
            t = json_loads(tok.data, 0, NULL);
        const char *s = json_string_value(json_object_get(t, "start"));
        if (!s || strlen(s) >= sizeof start_after) {
            json_decref(t);
            kiln_dc_status(c->resp, 400, "BadRequest", NULL,
                           "continue key is not valid: incorrect encoded start resourceVersion "
                           "(version meta.k8s.io/v1)");
            goto done;
        }
        snprintf(start_after, sizeof start_after, "%s", s);
        list_rv = (unsigned long long)json_integer_value(json_object_get(t, "rv"));
        json_decref(t);
    }
    bool table = kiln_dc_wants_table(c->req->accept);
    if (table)
        table_items = json_array();
    size_t n = 0;
    objs = kiln_dc_store_sorted(c->r, &n);
    char av[300];
    kiln_dc_api_version(c->r, av, sizeof av);
    kiln_buf *b = &c->resp->body;
    kiln_buf_reset(b);
    kiln_buf_printf(b, NULL, "{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":{",
                    c->r->list_kind, av);
    kiln_buf items;
    kiln_buf_init(&items, (size_t)1 << 32);
    kiln_buf_puts(&items, "", NULL);
    long count = 0;
    const char *last_key = NULL;
    bool more = false;
    for (size_t i = 0; i < n; i++) {
        kiln_dc_object *o = objs[i];
        if (start_after[0] && strcmp(o->key, start_after) <= 0)
            continue;
        char ns[256];
        const char *name;
        kiln_dc_key_split(o->key, ns, sizeof ns, &name);
        if (c->has_ns && strcmp(ns, c->ns))
            continue;
        bool decided = false;
        if (!kiln_dc_fields_match_key(&fs, ns, name, &decided))
            continue;
        json_t *parsed = NULL;
        if (!decided || !kiln_dc_selector_empty(&ls) || table) {
            parsed = kiln_dc_store_load(o);
            if (!kiln_dc_labels_match(&ls, parsed) || !kiln_dc_fields_match(&fs, parsed)) {
                json_decref(parsed);
                continue;
            }
        }
        if (limit > 0 && count == limit) {
            more = true;
            json_decref(parsed);
            break;
        }
        if (table) {
            json_array_append(table_items, parsed);
        } else {
            if (count)
                kiln_buf_puts(&items, ",", NULL);
            kiln_buf_append(&items, o->json, o->len, NULL);
        }
        json_decref(parsed);
        count++;
        last_key = o->key;
    }
    char rv[24];
    snprintf(rv, sizeof rv, "%llu", list_rv);
    char *continue_tok = NULL;
    if (more && last_key) {
        json_t *t = json_pack("{s:I,s:s}", "rv", (json_int_t)list_rv, "start", last_key);
        char *s = kiln_dc_dump(t);
        json_decref(t);
        kiln_buf enc;
        kiln_buf_init(&enc, 8192);
        kiln_dc_base64((const unsigned char *)s, strlen(s), &enc);
        free(s);
        continue_tok = kiln_buf_steal(&enc);
        kiln_buf_free(&enc);
    }
    if (table) {
        json_t *t = kiln_dc_table_new(c->r, table_items, true, rv);
        if (continue_tok)
            json_object_set_new(json_object_get(t, "metadata"), "continue",
                                json_string(continue_tok));
        kiln_dc_reply_json(c->resp, 200, t);
        json_decref(t);
    } else {
        kiln_buf_printf(b, NULL, "\"resourceVersion\":\"%s\"", rv);
        if (continue_tok)
            kiln_buf_printf(b, NULL, ",\"continue\":\"%s\"", continue_tok);
        kiln_buf_puts(b, "},\"items\":[", NULL);
        kiln_buf_append(b, items.data, items.len, NULL);
        kiln_buf_puts(b, "]}", NULL);
        c->resp->status = 200;
        snprintf(c->resp->content_type, sizeof c->resp->content_type, "application/json");
    }
    kiln_xfree(continue_tok);
    kiln_buf_free(&items);
done:
    kiln_buf_free(&tok);
    json_decref(table_items);
    kiln_xfree(objs);
    kiln_dc_selector_free(&ls);
    kiln_dc_selector_free(&fs);
    kiln_xfree(lstr);
    kiln_xfree(fstr);
    kiln_xfree(limit_s);
    kiln_xfree(cont);
}

static bool body_is_json(ctx *c, bool allow_missing)
{
    const char *ct = c->req->content_type;
    if (!ct || !*ct) {
        if (allow_missing)
            return true;
        ct = "";
    }
    if (!strncmp(ct, "application/json", 16) && (ct[16] == '\0' || ct[16] == ';'))
        return true;
    if (!strncmp(ct, "application/yaml", 16) && (ct[16] == '\0' || ct[16] == ';'))
        return true;
    kiln_dc_status(c->resp, 415, "UnsupportedMediaType", NULL,
                   "the body of the request was in an unknown format - accepted media types "
                   "include: application/json, application/yaml");
    return false;
}

static void do_post(ctx *c)
{
    if (!body_is_json(c, false))
        return;
    json_t *obj = kiln_dc_parse_body(c->req, c->resp);
    if (!obj)
        return;
    if (!json_is_object(obj)) {
        kiln_dc_status(c->resp, 400, "BadRequest", NULL,
                       "the body of the request must be a JSON object");
    } else if (namespace_usable(c)) {
        do_create(c, obj, false);
    }
    json_decref(obj);
}

static bool body_names_match(ctx *c, json_t *obj)
{
    const char *n = kiln_dc_meta_str(obj, "name");
    if (n && strcmp(n, c->name)) {
        kiln_dc_status(c->resp, 400, "BadRequest", NULL,
                       "the name of the object (%s) does not match the name on the URL (%s)", n,
                       c->name);
        return false;
    }
    const char *ns = kiln_dc_meta_str(obj, "namespace");
    if (c->r->namespaced && ns && *ns && strcmp(ns, c->ns)) {
        kiln_dc_status(c->resp, 400, "BadRequest", NULL,
                       "the namespace of the provided object does not match the namespace sent "
                       "on the request");
        return false;
    }
    return true;
}

static void do_put(ctx *c)
{
    if (!body_is_json(c, !strcmp(c->sub, "scale")))
        return;
    json_t *body = kiln_dc_parse_body(c->req, c->resp);
    json_t *old = NULL;
    if (!body)
        return;
    if (!json_is_object(body)) {
        kiln_dc_status(c->resp, 400, "BadRequest", NULL,
                       "the body of the request must be a JSON object");
        goto done;
    }
    kiln_dc_object *o = kiln_dc_store_get(c->r, c->ns, c->name);
    if (!o) {
        not_found_obj(c);
        goto done;
    }
    old = kiln_dc_store_load(o);
    if (!body_names_match(c, body) || !check_rv_precondition(c, old, body))
        goto done;
    if (!strcmp(c->sub, "scale")) {
        json_t *next = json_deep_copy(old);
        json_t *want = json_object_get(json_object_get(body, "spec"), "replicas");
        set_replicas(c, next, json_integer_value(want));
        commit(c, old, next, false, NULL, 200);
        if (c->resp->status == 200) {
            json_t *stored = json_loadb(c->resp->body.data, c->resp->body.len, 0, NULL);
            json_t *s = scale_of(c, stored);
            kiln_dc_reply_json(c->resp, 200, s);
            json_decref(s);
            json_decref(stored);
        }
        json_decref(next);
        goto done;
    }
    if (c->r->is_crd && !rv_of(body)) {
        invalid(c, c->name, "metadata.resourceVersion", "FieldValueInvalid",
                "Invalid value: 0x0: must be specified for an update");
        goto done;
    }
    commit(c, old, body, false, c->sub[0] ? c->sub : NULL, 200);
done:
    json_decref(old);
    json_decref(body);
}

static void do_patch(ctx *c)
{
    char ct[96] = "";
    if (c->req->content_type)
        snprintf(ct, sizeof ct, "%s", c->req->content_type);
    ct[strcspn(ct, "; ")] = '\0';
    enum { MERGE, JSONP, SMP, APPLY } kind;
    if (!strcmp(ct, "application/merge-patch+json"))
        kind = MERGE;
    else if (!strcmp(ct, "application/json-patch+json"))
        kind = JSONP;
    else if (!strcmp(ct, "application/strategic-merge-patch+json") && c->r->smp)
        kind = SMP;
    else if (!strcmp(ct, "application/apply-patch+yaml"))
        kind = APPLY;
    else {
        kiln_dc_status(c->resp, 415, "UnsupportedMediaType", NULL,
                       "the body of the request was in an unknown format - accepted media types "
                       "include: application/json-patch+json, application/merge-patch+json, "
                       "application/apply-patch+yaml%s",
                       c->r->smp ? ", application/strategic-merge-patch+json" : "");
        return;
    }
    char *force_s = kiln_dc_query_get(c->req->query, "force");
    char *fm = kiln_dc_query_get(c->req->query, "fieldManager");
    bool force = kiln_dc_parse_bool(force_s);
    json_t *patch = NULL, *old = NULL, *next = NULL;
    if (kind != APPLY && force_s) {
        kiln_dc_status(c->resp, 422, "Invalid", NULL,
                       "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be "
                       "specified for non-apply patch");
        goto done;
    }
    if (kind == APPLY && (!fm || !*fm)) {
        kiln_dc_status(c->resp, 422, "Invalid", NULL,
                       "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: "
                       "is required for apply patch");
        goto done;
    }
    patch = kiln_dc_parse_body(c->req, c->resp);
    if (!patch)
        goto done;
    if ((kind == JSONP) != json_is_array(patch) || (kind != JSONP && !json_is_object(patch))) {
        kiln_dc_status(c->resp, 400, "BadRequest", NULL,
                       kind == JSONP ? "json: cannot unmarshal object into Go value of type "
                                       "[]handlers.jsonPatchOp"
                                     : "json: cannot unmarshal array into Go value of type "
                                       "map[string]interface {}");
        goto done;
    }
    char av[300];
    kiln_dc_api_version(c->r, av, sizeof av);
    kiln_dc_object *o = kiln_dc_store_get(c->r, c->ns, c->name);
    if (!o) {
        if (kind == APPLY && !c->sub[0]) {
            /* Apply creates (201), like kube's patch handler with an apply body. */
            if (!namespace_usable(c))
                goto done;
            json_t *obj = NULL;
            if (kiln_dc_apply(&obj, NULL, patch, c->manager, force, av, NULL, c->resp) < 0)
                goto done;
            json_t *md = meta(obj);
            if (!json_object_get(md, "name"))
                json_object_set_new(md, "name", json_string(c->name));
            if (body_names_match(c, obj))
                do_create(c, obj, true);
            json_decref(obj);
            goto done;
        }
        not_found_obj(c);
        goto done;
    }
    old = kiln_dc_store_load(o);
    json_t *base = old;
    json_t *scale = NULL;
    if (!strcmp(c->sub, "scale"))
        base = scale = scale_of(c, old);
    int rc = 0;
    kiln_err err = {0};
    switch (kind) {
    case MERGE:
        next = kiln_dc_patch_merge(base, patch);
        break;
    case JSONP:
        next = json_deep_copy(base);
        rc = kiln_dc_patch_json(&next, patch, &err);
        break;
    case SMP:
        rc = kiln_dc_patch_strategic(&next, base, patch, &err);
        break;
    case APPLY:
        rc = kiln_dc_apply(&next, base, patch, c->manager, force, av, c->sub[0] ? c->sub : NULL,
                           c->resp);
        if (rc < 0) {
            json_decref(scale);
            goto done;
        }
        break;
    }
    if (rc < 0) {
        json_decref(scale);
        if (rc == KILN_EINVAL)
            kiln_dc_status(c->resp, 422, "Invalid", NULL, "%s", err.msg);
        else
            kiln_dc_status(c->resp, 400, "BadRequest", NULL, "%s", err.msg);
        goto done;
    }
    if (!json_is_object(next)) {
        json_decref(scale);
        kiln_dc_status(c->resp, 422, "Invalid", NULL, "the patch result is not an object");
        goto done;
    }
    if (!check_rv_precondition(c, old, next) || !body_names_match(c, next)) {
        json_decref(scale);
        goto done;
    }
    if (scale) {
        json_int_t want =
            json_integer_value(json_object_get(json_object_get(next, "spec"), "replicas"));
        json_decref(next);
        json_decref(scale);
        next = json_deep_copy(old);
        set_replicas(c, next, want);
        commit(c, old, next, false, NULL, 200);
        if (c->resp->status == 200) {
            json_t *stored = json_loadb(c->resp->body.data, c->resp->body.len, 0, NULL);
            json_t *s = scale_of(c, stored);
            kiln_dc_reply_json(c->resp, 200, s);
            json_decref(s);
            json_decref(stored);
        }
        goto done;
    }
    commit(c, old, next, kind == APPLY, c->sub[0] ? c->sub : NULL, 200);
done:
    json_decref(next);
    json_decref(old);
    json_decref(patch);
    kiln_xfree(force_s);
    kiln_xfree(fm);
}

typedef struct delete_opts {
    char propagation[16];
    char pre_uid[64];
    char pre_rv[32];
    bool has_uid, has_rv;
    bool dry_run;
} delete_opts;

static bool parse_delete_opts(ctx *c, delete_opts *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->propagation, sizeof d->propagation, "Background");
    if (c->req->body_len > 0) {
        /* Options come from the body when it is non-empty, else from the query,
         * never both (handlers/delete.go). */
        json_t *b = kiln_dc_parse_body(c->req, c->resp);
        if (!b)
            return false;
        const char *p = json_string_value(json_object_get(b, "propagationPolicy"));
        if (p)
            snprintf(d->propagation, sizeof d->propagation, "%s", p);
        json_t *orphan = json_object_get(b, "orphanDependents");
        if (json_is_true(orphan))
            snprintf(d->propagation, sizeof d->propagation, "Orphan");
        json_t *pre = json_object_get(b, "preconditions");
        const char *u = json_string_value(json_object_get(pre, "uid"));
        const char *rv = json_string_value(json_object_get(pre, "resourceVersion"));
        if (u) {
            d->has_uid = true;
            snprintf(d->pre_uid, sizeof d->pre_uid, "%s", u);
        }
        if (rv) {
            d->has_rv = true;
            snprintf(d->pre_rv, sizeof d->pre_rv, "%s", rv);
        }
        d->dry_run = json_array_size(json_object_get(b, "dryRun")) > 0;
        json_decref(b);
    } else {
        char *p = kiln_dc_query_get(c->req->query, "propagationPolicy");
        if (p)
            snprintf(d->propagation, sizeof d->propagation, "%s", p);
        kiln_xfree(p);
        char *dr = kiln_dc_query_get(c->req->query, "dryRun");
        d->dry_run = dr && *dr;
        kiln_xfree(dr);
    }
    if (strcmp(d->propagation, "Background") && strcmp(d->propagation, "Foreground") &&
        strcmp(d->propagation, "Orphan")) {
        kiln_dc_status(c->resp, 422, "Invalid", NULL,
                       "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported "
                       "value: \"%s\": supported values: \"Foreground\", \"Background\", "
                       "\"Orphan\", \"nil\"",
                       d->propagation);
        return false;
    }
    return true;
}

static void add_finalizer(json_t *md, const char *f)
{
    json_t *fs = json_object_get(md, "finalizers");
    if (!json_is_array(fs)) {
        fs = json_array();
        json_object_set_new(md, "finalizers", fs);
    }
    size_t i;
    json_t *e;
    json_array_foreach(fs, i,
                       e) if (!strcmp(json_string_value(e) ? json_string_value(e) : "", f)) return;
    json_array_append_new(fs, json_string(f));
}

/* Deletes one object; replies unless quiet. Returns true when it is gone or
 * marked for deletion. */
static bool delete_one(ctx *c, kiln_dc_object *o, const delete_opts *d, bool quiet)
{
    json_t *obj = kiln_dc_store_load(o);
    json_t *md = meta(obj);
    const char *uid = kiln_dc_meta_str(obj, "uid");
    if (d->has_uid && strcmp(d->pre_uid, uid ? uid : "")) {
        kiln_dc_status(c->resp, 409, "Conflict", kiln_dc_details(c->r, c->name),
                       "Precondition failed: UID in precondition: %s, UID in object meta: %s",
                       d->pre_uid, uid ? uid : "");
        json_decref(obj);
        return false;
    }
    if (d->has_rv && strcmp(d->pre_rv, rv_of(obj))) {
        kiln_dc_status(c->resp, 409, "Conflict", kiln_dc_details(c->r, c->name),
                       "Precondition failed: ResourceVersion in precondition: %s, "
                       "ResourceVersion in object meta: %s",
                       d->pre_rv, rv_of(obj));
        json_decref(obj);
        return false;
    }
    if (d->dry_run) {
        if (!quiet)
            kiln_dc_reply_json(c->resp, 200, obj);
        json_decref(obj);
        return true;
    }
    bool already = json_object_get(md, "deletionTimestamp") != NULL;
    if (!strcmp(d->propagation, "Foreground"))
        add_finalizer(md, "foregroundDeletion");
    else if (!strcmp(d->propagation, "Orphan"))
        add_finalizer(md, "orphan");
    bool ns = !strcmp(c->r->plural, "namespaces") && !c->r->group[0];
    if (ns) {
        /* The namespace controller removes the contents, then the namespace. */
        json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Terminating"));
    }
    if (json_array_size(json_object_get(md, "finalizers")) > 0 || ns) {
        if (!already) {
            char ts[32];
            kiln_dc_timestamp(ts);
            json_object_set_new(md, "deletionTimestamp", json_string(ts));
            json_object_set_new(md, "deletionGracePeriodSeconds", json_integer(0));
        }
        kiln_dc_object *stored = o;
        json_t *oldv = kiln_dc_store_load(o);
        if (!json_equal(oldv, obj))
            stored = kiln_dc_store_put(c->dc, c->r, obj, false);
        json_decref(oldv);
        if (!quiet)
            reply_object(c, 200, stored);
        json_decref(obj);
        return true;
    }
    finalize_delete(c->dc, c->r, obj);
    if (!quiet) {
        if (!strcmp(c->r->plural, "pods") && !c->r->group[0]) {
            kiln_dc_reply_json(c->resp, 200, obj);
        } else {
            json_t *det = kiln_dc_details(c->r, kiln_dc_meta_str(obj, "name"));
            json_object_set_new(det, "uid", json_string(uid ? uid : ""));
            json_t *st = json_pack("{s:s,s:s,s:{},s:s,s:o}", "kind", "Status", "apiVersion", "v1",
                                   "metadata", "status", "Success", "details", det);
            kiln_dc_reply_json(c->resp, 200, st);
            json_decref(st);
        }
    }
    json_decref(obj);
    return true;
}

static void do_delete(ctx *c)
{
    delete_opts d;
    if (!parse_delete_opts(c, &d))
        return;
    kiln_dc_object *o = kiln_dc_store_get(c->r, c->ns, c->name);
    if (!o) {
        not_found_obj(c);
        return;
    }
    delete_one(c, o, &d, false);
}

static void do_deletecollection(ctx *c)
{
    delete_opts d;
    if (!parse_delete_opts(c, &d))
        return;
    kiln_err err = {0};
    kiln_dc_selector ls = {0}, fs = {0};
    char *lstr = kiln_dc_query_get(c->req->query, "labelSelector");
    char *fstr = kiln_dc_query_get(c->req->query, "fieldSelector");
    if (kiln_dc_selector_parse(&ls, lstr, false, &err) < 0 ||
        kiln_dc_selector_parse(&fs, fstr, true, &err) < 0 ||
        kiln_dc_fields_check(&fs, c->r, &err) < 0) {
        kiln_dc_status(c->resp, 400, "BadRequest", NULL, "unable to parse requirement: %s",
                       err.msg);
    } else {
        size_t n = 0;
        kiln_dc_object **objs = kiln_dc_store_sorted(c->r, &n);
        char **keys = kiln_xcalloc(n + 1, sizeof *keys);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            char ns[256];
            const char *name;
            kiln_dc_key_split(objs[i]->key, ns, sizeof ns, &name);
            if (c->has_ns && strcmp(ns, c->ns))
                continue;
            json_t *obj = kiln_dc_store_load(objs[i]);
            if (kiln_dc_labels_match(&ls, obj) && kiln_dc_fields_match(&fs, obj))
                keys[k++] = kiln_xstrdup(objs[i]->key);
            json_decref(obj);
        }
        kiln_xfree(objs);
        for (size_t i = 0; i < k; i++) {
            char ns[256];
            const char *name;
            kiln_dc_key_split(keys[i], ns, sizeof ns, &name);
            kiln_dc_object *o = kiln_dc_store_get(c->r, ns, name);
            snprintf(c->name, sizeof c->name, "%s", name);
            if (o)
                delete_one(c, o, &d, true);
            kiln_xfree(keys[i]);
        }
        kiln_xfree(keys);
        json_t *st = json_pack("{s:s,s:s,s:{},s:s}", "kind", "Status", "apiVersion", "v1",
                               "metadata", "status", "Success");
        kiln_dc_reply_json(c->resp, 200, st);
        json_decref(st);
    }
    kiln_dc_selector_free(&ls);
    kiln_dc_selector_free(&fs);
    kiln_xfree(lstr);
    kiln_xfree(fstr);
}

/* ---- routing ---- */

static bool route(ctx *c)
{
    const char *p = c->req->path;
    char group[256] = "", version[64] = "";
    const char *rest;
    if (!strncmp(p, "/api/v1/", 8)) {
        snprintf(version, sizeof version, "v1");
        rest = p + 8;
    } else if (!strncmp(p, "/apis/", 6)) {
        const char *g = p + 6;
        const char *s1 = strchr(g, '/');
        if (!s1 || (size_t)(s1 - g) >= sizeof group)
            return false;
        memcpy(group, g, (size_t)(s1 - g));
        const char *s2 = strchr(s1 + 1, '/');
        if (!s2 || (size_t)(s2 - s1 - 1) >= sizeof version)
            return false;
        memcpy(version, s1 + 1, (size_t)(s2 - s1 - 1));
        rest = s2 + 1;
    } else {
        return false;
    }
    char *segs[6];
    size_t n = 0;
    char *copy = kiln_xstrdup(rest);
    char *save = NULL;
    bool ok = true;
    for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == 6) {
            ok = false;
            break;
        }
        segs[n++] = t;
    }
    size_t i = 0;
    if (ok && n >= 3 && !strcmp(segs[0], "namespaces")) {
        kiln_dc_resource *r = kiln_dc_kinds_find(c->dc, group, version, segs[2]);
        if (r && r->namespaced) {
            c->has_ns = true;
            snprintf(c->ns, sizeof c->ns, "%s", segs[1]);
            i = 2;
        }
    }
    if (ok && i < n) {
        c->r = kiln_dc_kinds_find(c->dc, group, version, segs[i]);
        if (!c->r || (c->has_ns && !c->r->namespaced))
            ok = false;
        if (ok && i + 1 < n) {
            c->has_name = true;
            snprintf(c->name, sizeof c->name, "%s", segs[i + 1]);
        }
        if (ok && i + 2 < n)
            snprintf(c->sub, sizeof c->sub, "%s", segs[i + 2]);
        if (ok && i + 3 < n)
            ok = false;
    } else {
        ok = false;
    }
    if (ok && c->sub[0]) {
        bool ns_finalize = !strcmp(c->sub, "finalize") && !strcmp(c->r->plural, "namespaces");
        if (ns_finalize)
            snprintf(c->sub, sizeof c->sub, "status");
        else if (!(!strcmp(c->sub, "status") && c->r->status_sub) &&
                 !(!strcmp(c->sub, "scale") && c->r->scale_sub))
            ok = false;
    }
    /* A namespaced object needs its namespace in the path. */
    if (ok && c->r->namespaced && c->has_name && !c->has_ns)
        ok = false;
    kiln_xfree(copy);
    return ok;
}

static void handle_resource(ctx *c)
{
    const char *m = c->req->method;
    field_manager(c);
    if (c->has_name && (strlen(c->name) > MAX_NAME)) {
        invalid(c, c->name, "metadata.name", "FieldValueTooLong",
                "Too long: must have at most 253 bytes");
        return;
    }
    if (!strcmp(m, "GET") || !strcmp(m, "HEAD")) {
        if (c->has_name) {
            do_get(c);
            return;
        }
        char *w = kiln_dc_query_get(c->req->query, "watch");
        bool watch = kiln_dc_parse_bool(w);
        kiln_xfree(w);
        if (watch)
            kiln_dc_watch_start(c->dc, c->r, c->has_ns ? c->ns : NULL, c->req, c->resp);
        else
            do_list(c);
        return;
    }
    if (!strcmp(m, "POST") && !c->has_name) {
        if (c->r->namespaced && !c->has_ns) {
            not_found_path(c->resp);
            return;
        }
        do_post(c);
        return;
    }
    if (!strcmp(m, "PUT") && c->has_name) {
        do_put(c);
        return;
    }
    if (!strcmp(m, "PATCH") && c->has_name) {
        do_patch(c);
        return;
    }
    if (!strcmp(m, "DELETE") && c->has_name && !c->sub[0]) {
        do_delete(c);
        return;
    }
    if (!strcmp(m, "DELETE") && !c->has_name) {
        do_deletecollection(c);
        return;
    }
    kiln_dc_status(c->resp, 405, "MethodNotAllowed", NULL,
                   "the server does not allow this method on the requested resource");
}

void kiln_devcluster_response_init(kiln_devcluster_response *resp)
{
    memset(resp, 0, sizeof *resp);
    kiln_buf_init(&resp->body, (size_t)1 << 34);
}

void kiln_devcluster_response_free(kiln_devcluster *dc, kiln_devcluster_response *resp)
{
    kiln_buf_free(&resp->body);
    if (resp->watch)
        kiln_devcluster_watch_close(dc, resp->watch);
    resp->watch = NULL;
}

static bool token_ok(kiln_devcluster *dc, const char *auth)
{
    if (!auth)
        return !dc->opts.tls; /* over plain HTTP kubectl sends no token at all */
    if (strncmp(auth, "Bearer ", 7))
        return false;
    return !strcmp(auth + 7, dc->token);
}

static bool is_write(const char *m)
{
    return strcmp(m, "GET") && strcmp(m, "HEAD");
}

void kiln_devcluster_handle(kiln_devcluster *dc, const kiln_devcluster_request *req,
                            kiln_devcluster_response *resp)
{
    resp->status = 500;
    if (!req->method || !req->path) {
        kiln_dc_status(resp, 400, "BadRequest", NULL, "malformed request");
        return;
    }
    /* Health and version are public, as system:public-info-viewer grants. */
    bool public_path = !strcmp(req->path, "/healthz") || !strcmp(req->path, "/livez") ||
                       !strcmp(req->path, "/readyz") || !strcmp(req->path, "/version");
    if (!public_path && !token_ok(dc, req->authorization)) {
        kiln_dc_status(resp, 401, "Unauthorized", NULL, "Unauthorized");
        return;
    }
    /* Impersonation: the caller (cluster-admin) becomes someone RBAC governs.
     * Without Impersonate-* headers nothing is authorized: one branch. */
    if (req->impersonate) {
        pthread_mutex_lock(&dc->mu);
        bool allowed = kiln_dc_authz_check(dc, req, resp);
        pthread_mutex_unlock(&dc->mu);
        if (!allowed)
            return;
    }
    if (req->body_too_large) {
        kiln_dc_status(resp, 413, "RequestEntityTooLarge", NULL,
                       "Request entity too large: limit is %zu", dc->opts.max_body);
        return;
    }
    if (kiln_dc_faults_handle(dc, req, resp))
        return;
    pthread_mutex_lock(&dc->mu);
    resp->delay_ms = dc->delay_ms;
    if (kiln_dc_faults_check(dc, req, resp)) {
        pthread_mutex_unlock(&dc->mu);
        return;
    }
    if (kiln_dc_discovery_handle(dc, req, resp) || kiln_dc_openapi_handle(dc, req, resp)) {
        pthread_mutex_unlock(&dc->mu);
        return;
    }
    ctx c = {.dc = dc, .req = req, .resp = resp};
    if (route(&c))
        handle_resource(&c);
    else
        not_found_path(resp);
    if (dc->ctl_dirty)
        kiln_dc_ctl_kick(dc);
    pthread_mutex_unlock(&dc->mu);
    /* Acknowledge a write only once it is on disk. */
    if (is_write(req->method) && dc->wal && resp->status < 300)
        kiln_dc_wal_sync(dc);
}

/* ---- internal writes for controllers (called with dc->mu held) ---- */

int kiln_dc_write_internal(kiln_devcluster *dc, kiln_dc_resource *r, json_t *obj, bool status)
{
    kiln_devcluster_request req = {.method = "PUT", .path = "", .user_agent = "kiln-devcluster"};
    kiln_devcluster_response resp;
    kiln_devcluster_response_init(&resp);
    ctx c = {.dc = dc, .req = &req, .resp = &resp, .r = r};
    snprintf(c.manager, sizeof c.manager, "kiln-devcluster");
    const char *ns = kiln_dc_meta_str(obj, "namespace");
    const char *name = kiln_dc_meta_str(obj, "name");
    snprintf(c.ns, sizeof c.ns, "%s", ns ? ns : "");
    c.has_ns = r->namespaced;
    snprintf(c.name, sizeof c.name, "%s", name ? name : "");
    c.has_name = true;
    kiln_dc_object *o = kiln_dc_store_get(r, c.ns, c.name);
    int rc = 0;
    if (!o) {
        do_create(&c, obj, false);
    } else {
        json_t *old = kiln_dc_store_load(o);
        commit(&c, old, obj, false, status ? "status" : NULL, 200);
        json_decref(old);
    }
    if (resp.status >= 300)
        rc = KILN_EINVAL;
    kiln_buf_free(&resp.body);
    json_decref(obj);
    return rc;
}

void kiln_dc_delete_internal(kiln_devcluster *dc, kiln_dc_resource *r, const char *ns,
                             const char *name, const char *propagation)
{
    kiln_devcluster_request req = {.method = "DELETE", .path = "", .user_agent = "kiln-devcluster"};
    kiln_devcluster_response resp;
    kiln_devcluster_response_init(&resp);
    ctx c = {.dc = dc, .req = &req, .resp = &resp, .r = r};
    snprintf(c.ns, sizeof c.ns, "%s", ns ? ns : "");
    c.has_ns = r->namespaced;
    snprintf(c.name, sizeof c.name, "%s", name);
    kiln_dc_object *o = kiln_dc_store_get(r, c.ns, name);
    if (o) {
        delete_opts d = {0};
        snprintf(d.propagation, sizeof d.propagation, "%s", propagation);
        delete_one(&c, o, &d, true);
    }
    kiln_buf_free(&resp.body);
}
