/* devcluster/authz.c: impersonation and RBAC, for requests that impersonate.
 *
 * The dev cluster has one caller: whoever holds its bearer token (or anyone,
 * over plain HTTP without one). That caller acts as cluster-admin and may
 * impersonate anyone; its own requests are never authorized (the common path
 * costs one branch in router.c). A request with Impersonate-* headers runs as
 * the impersonated user, as k8s.io/apiserver's WithImpersonation filter builds
 * it, and is authorized against the stored Roles, RoleBindings, ClusterRoles and
 * ClusterRoleBindings as the RBAC authorizer does (plugin/pkg/auth/authorizer/
 * rbac): bindings whose subjects name the user, one of its groups or its
 * service account; their roleRef's rules; verbs, API groups, resources (with
 * "resource/subresource" and "*"), resourceNames and nonResourceURLs. The
 * bootstrap roles every authenticated user holds (system:discovery,
 * system:basic-user, system:public-info-viewer) are built in, as is
 * cluster-admin; every other role must be stored.
 *
 * Everything here runs under dc->mu and allocates only per request.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "devcluster/internal.h"

#define RBAC_GROUP "rbac.authorization.k8s.io"
#define SA_PREFIX "system:serviceaccount:"
#define AGGREGATION_DEPTH 8 /* aggregated roles selecting aggregated roles */

typedef struct user {
    const char *name;    /* borrowed from the request */
    const char **groups; /* array owned, strings borrowed or in sa_groups */
    size_t ngroups;
    char sa_ns[256]; /* set when name is a service account's */
    char sa_name[256];
    char sa_groups[300]; /* "system:serviceaccounts:<ns>" */
} user;

/* The request's attributes, as RequestInfoFactory.NewRequestInfo derives them. */
typedef struct attrs {
    bool resource_request;
    char verb[32];
    char group[256];
    char version[64];
    char resource[256];
    char sub[256];
    char ns[256];
    char name[256];
    const char *path;
} attrs;

typedef struct visit {
    const user *u;
    const attrs *a;
    bool allowed;
    json_t *errors; /* array of strings: roles a matching binding names but that are gone */
} visit;

static bool has(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], s))
            return true;
    return false;
}

/* ---- request attributes ---- */

static void copy_seg(char *out, size_t n, const char *s, size_t len)
{
    if (len >= n)
        len = n - 1;
    memcpy(out, s, len);
    out[len] = '\0';
}

/* The name a list or watch is limited to by fieldSelector metadata.name=X
 * (fields.Selector.RequiresExactMatch), so resourceNames rules apply to it. */
static void name_from_field_selector(attrs *a, const char *query)
{
    char *fs = kiln_dc_query_get(query, "fieldSelector");
    if (!fs)
        return;
    char *save = NULL;
    for (char *t = strtok_r(fs, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (strncmp(t, "metadata.name", 13))
            continue;
        const char *v = t + 13;
        while (*v == ' ')
            v++;
        if (!strncmp(v, "==", 2))
            v += 2;
        else if (*v == '=')
            v++;
        else
            continue;
        while (*v == ' ')
            v++;
        /* path.IsValidPathSegmentName */
        if (*v && strcmp(v, ".") && strcmp(v, "..") && !strpbrk(v, "/%"))
            snprintf(a->name, sizeof a->name, "%s", v);
        break;
    }
    kiln_xfree(fs);
}

static void request_attrs(attrs *a, const kiln_devcluster_request *req)
{
    memset(a, 0, sizeof *a);
    a->path = req->path;
    const char *segs[8];
    size_t lens[8], n = 0;
    bool too_many = false;
    for (const char *p = req->path; *p;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        size_t l = strcspn(p, "/");
        if (n == 8) {
            too_many = true;
            break;
        }
        segs[n] = p;
        lens[n++] = l;
        p += l;
    }
    size_t i = 0;
    bool api = n >= 3 && lens[0] == 3 && !strncmp(segs[0], "api", 3);
    bool apis = n >= 4 && lens[0] == 4 && !strncmp(segs[0], "apis", 4);
    if (too_many || (!api && !apis)) {
        /* Non-resource: the verb is the lowercased method. */
        size_t k = 0;
        for (const char *m = req->method; *m && k + 1 < sizeof a->verb; m++)
            a->verb[k++] = (char)tolower((unsigned char)*m);
        a->verb[k] = '\0';
        return;
    }
    a->resource_request = true;
    i = 1;
    if (apis) {
        copy_seg(a->group, sizeof a->group, segs[i], lens[i]);
        i++;
    }
    copy_seg(a->version, sizeof a->version, segs[i], lens[i]);
    i++;
    const char *m = req->method;
    snprintf(a->verb, sizeof a->verb, "%s",
             !strcmp(m, "POST")                        ? "create"
             : !strcmp(m, "GET") || !strcmp(m, "HEAD") ? "get"
             : !strcmp(m, "PUT")                       ? "update"
             : !strcmp(m, "PATCH")                     ? "patch"
             : !strcmp(m, "DELETE")                    ? "delete"
                                                       : "");
    /* /namespaces/{ns}/{resource}/...; "status" and "finalize" stay namespace subresources. */
    if (lens[i] == 10 && !strncmp(segs[i], "namespaces", 10) && i + 1 < n) {
        copy_seg(a->ns, sizeof a->ns, segs[i + 1], lens[i + 1]);
        bool ns_sub = i + 2 < n && ((lens[i + 2] == 6 && !strncmp(segs[i + 2], "status", 6)) ||
                                    (lens[i + 2] == 8 && !strncmp(segs[i + 2], "finalize", 8)));
        if (i + 2 < n && !ns_sub)
            i += 2;
    }
    copy_seg(a->resource, sizeof a->resource, segs[i], lens[i]);
    if (i + 1 < n)
        copy_seg(a->name, sizeof a->name, segs[i + 1], lens[i + 1]);
    if (i + 2 < n)
        copy_seg(a->sub, sizeof a->sub, segs[i + 2], lens[i + 2]);
    if (!a->name[0] && !strcmp(a->verb, "get")) {
        char *w = kiln_dc_query_get(req->query, "watch");
        /* As NewRequestInfo: any value but "false" and "0" watches. */
        bool watch = w && strcasecmp(w, "false") && strcmp(w, "0");
        kiln_xfree(w);
        snprintf(a->verb, sizeof a->verb, "%s", watch ? "watch" : "list");
        name_from_field_selector(a, req->query);
    }
    if (!a->name[0] && !strcmp(a->verb, "delete"))
        snprintf(a->verb, sizeof a->verb, "deletecollection");
}

/* ---- rules ---- */

static bool str_in(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *e = json_string_value(v);
        if (e && !strcmp(e, s))
            return true;
    }
    return false;
}

static bool resource_matches(const json_t *rule, const attrs *a)
{
    char combined[520];
    if (a->sub[0])
        snprintf(combined, sizeof combined, "%s/%s", a->resource, a->sub);
    else
        snprintf(combined, sizeof combined, "%s", a->resource);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(rule, "resources"), i, v)
    {
        const char *r = json_string_value(v);
        if (!r)
            continue;
        if (!strcmp(r, "*") || !strcmp(r, combined))
            return true;
        /* "*\/status" grants the status subresource of every resource. */
        if (a->sub[0] && !strncmp(r, "*/", 2) && !strcmp(r + 2, a->sub))
            return true;
    }
    return false;
}

static bool url_matches(const json_t *rule, const char *path)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(rule, "nonResourceURLs"), i, v)
    {
        const char *u = json_string_value(v);
        if (!u)
            continue;
        size_t n = strlen(u);
        if (!strcmp(u, "*") || !strcmp(u, path))
            return true;
        if (n && u[n - 1] == '*' && !strncmp(path, u, n - 1))
            return true;
    }
    return false;
}

static bool rule_allows(const json_t *rule, const attrs *a)
{
    const json_t *verbs = json_object_get(rule, "verbs");
    if (!str_in(verbs, "*") && !str_in(verbs, a->verb))
        return false;
    if (!a->resource_request)
        return url_matches(rule, a->path);
    const json_t *groups = json_object_get(rule, "apiGroups");
    if (!str_in(groups, "*") && !str_in(groups, a->group))
        return false;
    if (!resource_matches(rule, a))
        return false;
    const json_t *names = json_object_get(rule, "resourceNames");
    return json_array_size(names) == 0 || str_in(names, a->name);
}

static void visit_rules(visit *v, const json_t *rules)
{
    size_t i;
    json_t *rule;
    json_array_foreach(rules, i, rule)
    {
        if (rule_allows(rule, v->a)) {
            v->allowed = true;
            return;
        }
    }
}

/* ---- roles ---- */

static kiln_dc_resource *rbac_kind(kiln_devcluster *dc, const char *plural)
{
    return kiln_dc_kinds_find(dc, RBAC_GROUP, "v1", plural);
}

/* metav1.LabelSelector (borrowed) against obj's labels. */
static bool selector_matches(const json_t *sel, const json_t *obj)
{
    const json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(sel, "matchLabels"), k, v)
    {
        const char *have = json_string_value(json_object_get(labels, k));
        if (!have || !json_is_string(v) || strcmp(have, json_string_value(v)))
            return false;
    }
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(sel, "matchExpressions"), i, e)
    {
        const char *key = json_string_value(json_object_get(e, "key"));
        const char *op = json_string_value(json_object_get(e, "operator"));
        if (!key || !op)
            return false;
        const char *have = json_string_value(json_object_get(labels, key));
        const json_t *vals = json_object_get(e, "values");
        bool ok = !strcmp(op, "In")             ? have && str_in(vals, have)
                  : !strcmp(op, "NotIn")        ? !have || !str_in(vals, have)
                  : !strcmp(op, "Exists")       ? have != NULL
                  : !strcmp(op, "DoesNotExist") ? have == NULL
                                                : false;
        if (!ok)
            return false;
    }
    return true;
}

static void visit_cluster_role(visit *v, kiln_devcluster *dc, const json_t *role, int depth);

/* An aggregated ClusterRole's rules are what the aggregation controller would
 * write: the union of the rules of every ClusterRole a selector matches. */
static void visit_aggregated(visit *v, kiln_devcluster *dc, const json_t *role, int depth)
{
    const json_t *sels =
        json_object_get(json_object_get(role, "aggregationRule"), "clusterRoleSelectors");
    const char *self = kiln_dc_meta_str(role, "name");
    kiln_dc_resource *cr = rbac_kind(dc, "clusterroles");
    size_t n = 0;
    kiln_dc_object **objs = cr ? kiln_dc_store_sorted(cr, &n) : NULL;
    for (size_t i = 0; i < n && !v->allowed; i++) {
        json_t *other = kiln_dc_store_load(objs[i]);
        const char *name = kiln_dc_meta_str(other, "name");
        bool match = false;
        size_t j;
        json_t *sel;
        json_array_foreach(sels, j, sel) match |= selector_matches(sel, other);
        if (match && name && self && strcmp(name, self))
            visit_cluster_role(v, dc, other, depth + 1);
        json_decref(other);
    }
    kiln_xfree(objs);
}

static void visit_cluster_role(visit *v, kiln_devcluster *dc, const json_t *role, int depth)
{
    if (json_is_object(json_object_get(role, "aggregationRule"))) {
        if (depth < AGGREGATION_DEPTH)
            visit_aggregated(v, dc, role, depth);
        return;
    }
    visit_rules(v, json_object_get(role, "rules"));
}

static void not_found_error(visit *v, const char *kind, const char *name)
{
    char msg[400];
    snprintf(msg, sizeof msg, "%s.%s \"%s\" not found", kind, RBAC_GROUP, name);
    size_t i;
    json_t *e;
    json_array_foreach(v->errors, i, e) if (!strcmp(json_string_value(e), msg)) return;
    json_array_append_new(v->errors, json_string(msg));
}

/* GetRoleReferenceRules: roleRef of a binding in ns ("" for a ClusterRoleBinding). */
static void visit_role_ref(visit *v, kiln_devcluster *dc, const json_t *ref, const char *ns)
{
    const char *kind = json_string_value(json_object_get(ref, "kind"));
    const char *name = json_string_value(json_object_get(ref, "name"));
    if (!kind || !name)
        return;
    if (!strcmp(kind, "ClusterRole")) {
        kiln_dc_resource *cr = rbac_kind(dc, "clusterroles");
        kiln_dc_object *o = cr ? kiln_dc_store_get(cr, "", name) : NULL;
        if (!o) {
            if (!strcmp(name, "cluster-admin"))
                v->allowed = true; /* bootstrap: every verb on everything */
            else
                not_found_error(v, "clusterrole", name);
            return;
        }
        json_t *role = kiln_dc_store_load(o);
        visit_cluster_role(v, dc, role, 0);
        json_decref(role);
    } else if (!strcmp(kind, "Role")) {
        kiln_dc_resource *rr = rbac_kind(dc, "roles");
        kiln_dc_object *o = rr && ns[0] ? kiln_dc_store_get(rr, ns, name) : NULL;
        if (!o) {
            not_found_error(v, "role", name);
            return;
        }
        json_t *role = kiln_dc_store_load(o);
        visit_rules(v, json_object_get(role, "rules"));
        json_decref(role);
    }
}

/* appliesToUser; ns is the binding's namespace ("" for ClusterRoleBindings). */
static bool subject_matches(const json_t *s, const user *u, const char *ns)
{
    const char *kind = json_string_value(json_object_get(s, "kind"));
    const char *name = json_string_value(json_object_get(s, "name"));
    if (!kind || !name)
        return false;
    if (!strcmp(kind, "User"))
        return !strcmp(u->name, name);
    if (!strcmp(kind, "Group"))
        return has(u->groups, u->ngroups, name);
    if (!strcmp(kind, "ServiceAccount")) {
        const char *sns = json_string_value(json_object_get(s, "namespace"));
        if (!sns || !*sns)
            sns = ns;
        if (!*sns)
            return false;
        return u->sa_ns[0] && !strcmp(u->sa_ns, sns) && !strcmp(u->sa_name, name);
    }
    return false;
}

static void visit_bindings(visit *v, kiln_devcluster *dc, const char *plural, const char *ns)
{
    kiln_dc_resource *br = rbac_kind(dc, plural);
    size_t n = 0;
    kiln_dc_object **objs = br ? kiln_dc_store_sorted(br, &n) : NULL;
    size_t nslen = strlen(ns);
    for (size_t i = 0; i < n && !v->allowed; i++) {
        /* Keys are "ns/name"; a RoleBinding grants only in its own namespace. */
        if (ns[0] && (strncmp(objs[i]->key, ns, nslen) || objs[i]->key[nslen] != '/'))
            continue;
        json_t *b = kiln_dc_store_load(objs[i]);
        bool applies = false;
        size_t j;
        json_t *s;
        json_array_foreach(json_object_get(b, "subjects"), j, s) applies |=
            subject_matches(s, v->u, ns);
        if (applies)
            visit_role_ref(v, dc, json_object_get(b, "roleRef"), ns);
        json_decref(b);
    }
    kiln_xfree(objs);
}

/* system:public-info-viewer (everyone), system:discovery and system:basic-user
 * (system:authenticated), as bootstrap policy binds them. */
static bool bootstrap_allows(const user *u, const attrs *a)
{
    static const char *const public_urls[] = {"/healthz", "/livez", "/readyz", "/version",
                                              "/version/"};
    bool authenticated = has(u->groups, u->ngroups, "system:authenticated");
    if (!a->resource_request) {
        if (strcmp(a->verb, "get"))
            return false;
        if (has(public_urls, sizeof public_urls / sizeof public_urls[0], a->path))
            return true;
        if (!authenticated)
            return false;
        const char *p = a->path;
        return !strcmp(p, "/api") || !strncmp(p, "/api/", 5) || !strcmp(p, "/apis") ||
               !strncmp(p, "/apis/", 6) || !strcmp(p, "/openapi") || !strncmp(p, "/openapi/", 9);
    }
    if (!authenticated || strcmp(a->verb, "create"))
        return false;
    return (!strcmp(a->group, "authorization.k8s.io") &&
            (!strcmp(a->resource, "selfsubjectaccessreviews") ||
             !strcmp(a->resource, "selfsubjectrulesreviews"))) ||
           (!strcmp(a->group, "authentication.k8s.io") &&
            !strcmp(a->resource, "selfsubjectreviews"));
}

/* ---- messages ---- */

/* Go's %q for the plain strings of names and paths, then the sanitizer
 * responsewriters applies (& < > as HTML entities). */
static void quote(kiln_buf *b, const char *s)
{
    kiln_buf_puts(b, "\"", NULL);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char tmp[8];
        if (*p == '"' || *p == '\\')
            snprintf(tmp, sizeof tmp, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            snprintf(tmp, sizeof tmp, "\\x%02x", *p);
        else if (*p == '&')
            snprintf(tmp, sizeof tmp, "&amp;");
        else if (*p == '<')
            snprintf(tmp, sizeof tmp, "&lt;");
        else if (*p == '>')
            snprintf(tmp, sizeof tmp, "&gt;");
        else
            snprintf(tmp, sizeof tmp, "%c", *p);
        kiln_buf_puts(b, tmp, NULL);
    }
    kiln_buf_puts(b, "\"", NULL);
}

/* responsewriters.Forbidden + apierrors.NewForbidden. */
static void forbidden(kiln_devcluster_response *resp, const user *u, const attrs *a,
                      const json_t *errors)
{
    kiln_buf m;
    kiln_buf_init(&m, 8192);
    if (!a->resource_request) {
        kiln_buf_puts(&m, "forbidden: User ", NULL);
        quote(&m, u->name);
        kiln_buf_printf(&m, NULL, " cannot %s path ", a->verb);
        quote(&m, a->path);
    } else {
        kiln_buf_puts(&m, a->resource, NULL);
        if (a->group[0])
            kiln_buf_printf(&m, NULL, ".%s", a->group);
        if (a->name[0]) {
            kiln_buf_puts(&m, " ", NULL);
            quote(&m, a->name);
        }
        kiln_buf_puts(&m, " is forbidden: User ", NULL);
        quote(&m, u->name);
        kiln_buf_printf(&m, NULL, " cannot %s resource ", a->verb);
        char res[520];
        snprintf(res, sizeof res, "%s%s%s", a->resource, a->sub[0] ? "/" : "", a->sub);
        quote(&m, res);
        kiln_buf_puts(&m, " in API group ", NULL);
        quote(&m, a->group);
        if (a->ns[0]) {
            kiln_buf_puts(&m, " in the namespace ", NULL);
            quote(&m, a->ns);
        } else {
            kiln_buf_puts(&m, " at the cluster scope", NULL);
        }
    }
    /* The RBAC authorizer's reason: roles that matching bindings name but are gone. */
    size_t nerr = json_array_size(errors);
    if (nerr) {
        kiln_buf_puts(&m, ": RBAC: ", NULL);
        if (nerr > 1)
            kiln_buf_puts(&m, "[", NULL);
        for (size_t i = 0; i < nerr; i++)
            kiln_buf_printf(&m, NULL, "%s%s", i ? ", " : "",
                            json_string_value(json_array_get(errors, i)));
        if (nerr > 1)
            kiln_buf_puts(&m, "]", NULL);
    }
    json_t *d = json_object();
    if (a->resource_request) {
        if (a->name[0])
            json_object_set_new(d, "name", json_string(a->name));
        if (a->group[0])
            json_object_set_new(d, "group", json_string(a->group));
        json_object_set_new(d, "kind", json_string(a->resource));
    }
    kiln_dc_status(resp, 403, "Forbidden", d, "%s", m.data ? m.data : "");
    kiln_buf_free(&m);
}

/* buildImpersonationRequests refuses groups, extras or a uid without a user,
 * and WithImpersonation answers that with responsewriters.InternalError: a
 * plain-text 500 naming the request URI and the []ObjectReference it built. */
static void no_user(kiln_devcluster_response *resp, const kiln_devcluster_request *req,
                    const kiln_devcluster_impersonation *imp)
{
    kiln_buf uri, m;
    kiln_buf_init(&uri, 1 << 20);
    kiln_buf_init(&m, 1 << 20);
    kiln_buf_puts(&uri, req->path, NULL);
    if (req->query && *req->query)
        kiln_buf_printf(&uri, NULL, "?%s", req->query);
    kiln_buf_puts(&m, "Internal Server Error: ", NULL);
    quote(&m, uri.data);
    kiln_buf_puts(&m, ": requested [", NULL);
    bool first = true;
    for (size_t i = 0; i < imp->ngroups; i++, first = false)
        kiln_buf_printf(&m, NULL, "%s{Group  %s    }", first ? "" : " ", imp->groups[i]);
    for (size_t i = 0; i < imp->nextra; i++, first = false) {
        char key[256];
        snprintf(key, sizeof key, "%s", imp->extra[2 * i]);
        for (char *k = key; *k; k++)
            *k = (char)tolower((unsigned char)*k);
        kiln_dc_percent_decode(key, false);
        kiln_buf_printf(&m, NULL, "%s{UserExtra  %s  authentication.k8s.io/v1  %s}",
                        first ? "" : " ", imp->extra[2 * i + 1], key);
    }
    if (imp->uid && *imp->uid)
        kiln_buf_printf(&m, NULL, "%s{UID  %s  authentication.k8s.io/v1  }", first ? "" : " ",
                        imp->uid);
    kiln_buf_puts(&m, "] without impersonating a user\n", NULL);
    kiln_buf_reset(&resp->body);
    kiln_buf_append(&resp->body, m.data, m.len, NULL);
    resp->status = 500;
    snprintf(resp->content_type, sizeof resp->content_type, "text/plain; charset=utf-8");
    kiln_buf_free(&uri);
    kiln_buf_free(&m);
}

/* serviceaccount.SplitUsername. */
static bool split_sa(user *u)
{
    if (strncmp(u->name, SA_PREFIX, strlen(SA_PREFIX)))
        return false;
    const char *rest = u->name + strlen(SA_PREFIX);
    const char *colon = strchr(rest, ':');
    if (!colon || strchr(colon + 1, ':'))
        return false;
    size_t nl = (size_t)(colon - rest);
    if (nl >= sizeof u->sa_ns || strlen(colon + 1) >= sizeof u->sa_name)
        return false;
    memcpy(u->sa_ns, rest, nl);
    u->sa_ns[nl] = '\0';
    snprintf(u->sa_name, sizeof u->sa_name, "%s", colon + 1);
    if (!kiln_dc_valid_label_name(u->sa_ns) || !kiln_dc_valid_subdomain(u->sa_name)) {
        u->sa_ns[0] = u->sa_name[0] = '\0';
        return false;
    }
    return true;
}

/* WithImpersonation's user: the impersonated name; the given groups, else a
 * service account's fixed ones; then system:authenticated (or, for
 * system:anonymous, system:unauthenticated) unless already there. */
static void build_user(user *u, const kiln_devcluster_impersonation *imp)
{
    u->name = imp->user;
    u->groups = kiln_xcalloc(imp->ngroups + 3, sizeof *u->groups);
    bool sa = split_sa(u);
    for (size_t i = 0; i < imp->ngroups; i++)
        u->groups[u->ngroups++] = imp->groups[i];
    if (sa && imp->ngroups == 0) {
        snprintf(u->sa_groups, sizeof u->sa_groups, "system:serviceaccounts:%s", u->sa_ns);
        u->groups[u->ngroups++] = "system:serviceaccounts";
        u->groups[u->ngroups++] = u->sa_groups;
    }
    bool anonymous = !strcmp(u->name, "system:anonymous");
    bool unauth = has(u->groups, u->ngroups, "system:unauthenticated");
    if (!anonymous && !unauth && !has(u->groups, u->ngroups, "system:authenticated"))
        u->groups[u->ngroups++] = "system:authenticated";
    else if (anonymous && !unauth)
        u->groups[u->ngroups++] = "system:unauthenticated";
}

bool kiln_dc_authz_check(kiln_devcluster *dc, const kiln_devcluster_request *req,
                         kiln_devcluster_response *resp)
{
    const kiln_devcluster_impersonation *imp = req->impersonate;
    bool has_user = imp->user && *imp->user;
    if (!has_user) {
        if (imp->ngroups || imp->nextra || (imp->uid && *imp->uid)) {
            no_user(resp, req, imp);
            return false;
        }
        return true; /* only empty headers: not impersonating at all */
    }
    user u = {0};
    build_user(&u, imp);
    attrs a;
    request_attrs(&a, req);
    /* The authorizer's privileged group short-circuits everything. */
    bool allowed = has(u.groups, u.ngroups, "system:masters") || bootstrap_allows(&u, &a);
    visit v = {.u = &u, .a = &a, .allowed = allowed, .errors = json_array()};
    if (!v.allowed)
        visit_bindings(&v, dc, "clusterrolebindings", "");
    if (!v.allowed && a.resource_request && a.ns[0])
        visit_bindings(&v, dc, "rolebindings", a.ns);
    if (!v.allowed)
        forbidden(resp, &u, &a, v.errors);
    json_decref(v.errors);
    kiln_xfree(u.groups);
    return v.allowed;
}
