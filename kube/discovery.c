#include "kube/discovery.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "kube/internal.h"

#define DEFAULT_MIN_REFRESH_MS 10000
/* A cluster serves a few hundred group-versions at most; a server answering
 * with more is misbehaving. */
#define MAX_GROUP_VERSIONS 1000

struct kiln_kube_discovery {
    kiln_kube_client *c;
    long min_refresh_ms;
    kiln_kube_clock clock;
    pthread_mutex_t mu;
    json_t *kinds; /* "apiVersion/Kind" -> [group, version, resource, namespaced, verbs, status,
                      scale] */
    bool fetched;
    int64_t refreshed_ms;
    json_t *openapi_index; /* /openapi/v3 "paths", or NULL */
    int64_t index_ms;
    json_t *openapi_docs; /* serverRelativeURL -> document */
};

kiln_kube_discovery *kiln_kube_discovery_new(kiln_kube_client *c,
                                             const kiln_kube_discovery_opts *opts)
{
    kiln_kube_discovery *d = kiln_xcalloc(1, sizeof(*d));
    d->c = c;
    d->min_refresh_ms =
        opts && opts->min_refresh_ms > 0 ? opts->min_refresh_ms : DEFAULT_MIN_REFRESH_MS;
    if (opts)
        d->clock = opts->clock;
    pthread_mutex_init(&d->mu, NULL);
    d->kinds = json_object();
    d->openapi_docs = json_object();
    return d;
}

void kiln_kube_discovery_free(kiln_kube_discovery *d)
{
    if (!d)
        return;
    json_decref(d->kinds);
    json_decref(d->openapi_index);
    json_decref(d->openapi_docs);
    pthread_mutex_destroy(&d->mu);
    kiln_xfree(d);
}

static unsigned verb_bits(const json_t *verbs)
{
    static const char *const names[] = {"get",    "list",  "watch",  "create",
                                        "update", "patch", "delete", "deletecollection"};
    unsigned bits = 0;
    size_t i;
    json_t *v;
    json_array_foreach(verbs, i, v)
    {
        for (unsigned k = 0; k < sizeof(names) / sizeof(names[0]); k++)
            if (json_is_string(v) && strcmp(json_string_value(v), names[k]) == 0)
                bits |= 1u << k;
    }
    return bits;
}

/* Adds the kinds of one APIResourceList to map. */
static void add_resource_list(json_t *map, const char *group, const char *version,
                              const json_t *list)
{
    json_t *res = json_object_get(list, "resources");
    size_t i;
    json_t *r;
    /* Parents first, so subresource entries can mark them. */
    json_array_foreach(res, i, r)
    {
        const char *name = kiln_json_get_string(r, "name");
        const char *kind = kiln_json_get_string(r, "kind");
        if (!name || !kind || strchr(name, '/'))
            continue;
        char *key = *group ? kiln_xasprintf("%s/%s/%s", group, version, kind)
                           : kiln_xasprintf("%s/%s", version, kind);
        /* The first resource with a kind wins: kinds served under two names
         * are rare and the first is the primary one in discovery order. */
        if (!json_object_get(map, key))
            json_object_set_new(
                map, key,
                json_pack("{s:s, s:s, s:s, s:s, s:b, s:i, s:b, s:b}", "group", group, "version",
                          version, "resource", name, "kind", kind, "namespaced",
                          json_is_true(json_object_get(r, "namespaced")), "verbs",
                          (int)verb_bits(json_object_get(r, "verbs")), "status", 0, "scale", 0));
        kiln_xfree(key);
    }
    json_array_foreach(res, i, r)
    {
        const char *name = kiln_json_get_string(r, "name");
        const char *slash = name ? strchr(name, '/') : NULL;
        if (!slash)
            continue;
        const char *k;
        json_t *e;
        json_object_foreach(map, k, e)
        {
            const char *rn = kiln_json_get_string(e, "resource");
            if (strlen(rn) == (size_t)(slash - name) &&
                strncmp(rn, name, (size_t)(slash - name)) == 0 &&
                strcmp(kiln_json_get_string(e, "group"), group) == 0 &&
                strcmp(kiln_json_get_string(e, "version"), version) == 0) {
                if (strcmp(slash + 1, "status") == 0)
                    json_object_set_new(e, "status", json_true());
                else if (strcmp(slash + 1, "scale") == 0)
                    json_object_set_new(e, "scale", json_true());
            }
        }
    }
}

static int fetch_gv(json_t *map, kiln_kube_client *c, const char *group, const char *version,
                    kiln_err *err)
{
    char *path =
        *group ? kiln_xasprintf("/apis/%s/%s", group, version) : kiln_xasprintf("/api/%s", version);
    json_t *list = NULL;
    int rc = kiln_kube_do(&list, c, "GET", path, NULL, NULL, 0, err);
    if (!rc)
        add_resource_list(map, group, version, list);
    json_decref(list);
    kiln_xfree(path);
    return rc;
}

/* client-go's Accept for aggregated discovery; parameters must be ordered
 * g, v, as (discovery_client.go). Servers without it answer the legacy form. */
#define AGGREGATED_ACCEPT                                                                          \
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"

static bool is_aggregated(const char *content_type)
{
    return strstr(content_type, "g=apidiscovery.k8s.io") &&
           strstr(content_type, "as=APIGroupDiscoveryList");
}

/* Adds every kind of an APIGroupDiscoveryList (apidiscovery.k8s.io/v2). */
static void add_aggregated(json_t *map, const json_t *list)
{
    size_t i, k, r, x;
    json_t *item, *ver, *res, *sub;
    json_array_foreach(json_object_get(list, "items"), i, item)
    {
        const char *group = kiln_json_get_string(item, "metadata.name");
        if (!group)
            group = "";
        json_array_foreach(json_object_get(item, "versions"), k, ver)
        {
            const char *version = kiln_json_get_string(ver, "version");
            if (!version || strchr(version, '/') || strchr(group, '/'))
                continue;
            json_array_foreach(json_object_get(ver, "resources"), r, res)
            {
                const char *name = kiln_json_get_string(res, "resource");
                const char *kind = kiln_json_get_string(res, "responseKind.kind");
                const char *scope = kiln_json_get_string(res, "scope");
                if (!name || !kind || !*kind)
                    continue;
                bool status = false, scale = false;
                json_array_foreach(json_object_get(res, "subresources"), x, sub)
                {
                    const char *sn = kiln_json_get_string(sub, "subresource");
                    status = status || (sn && strcmp(sn, "status") == 0);
                    scale = scale || (sn && strcmp(sn, "scale") == 0);
                }
                char *key = *group ? kiln_xasprintf("%s/%s/%s", group, version, kind)
                                   : kiln_xasprintf("%s/%s", version, kind);
                if (!json_object_get(map, key))
                    json_object_set_new(
                        map, key,
                        json_pack("{s:s, s:s, s:s, s:s, s:b, s:i, s:b, s:b}", "group", group,
                                  "version", version, "resource", name, "kind", kind, "namespaced",
                                  scope && strcmp(scope, "Namespaced") == 0, "verbs",
                                  (int)verb_bits(json_object_get(res, "verbs")), "status", status,
                                  "scale", scale));
                kiln_xfree(key);
            }
        }
    }
}

/* Legacy discovery: one request per group-version listed in /api and /apis. */
static int add_legacy(json_t *map, kiln_kube_client *c, const json_t *api, const json_t *apis,
                      kiln_err *err)
{
    size_t fetched = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(api, "versions"), i, v)
    {
        kiln_err gv_err = {0};
        if (json_is_string(v) && fetch_gv(map, c, "", json_string_value(v), &gv_err) != 0)
            KILN_LOG(KILN_LOG_WARN, "discovery of %s skipped: %s", json_string_value(v),
                     gv_err.msg);
    }
    json_t *g;
    json_array_foreach(json_object_get(apis, "groups"), i, g)
    {
        const char *group = kiln_json_get_string(g, "name");
        size_t k;
        json_t *gv;
        json_array_foreach(json_object_get(g, "versions"), k, gv)
        {
            const char *version = kiln_json_get_string(gv, "version");
            if (!group || !*group || !version || strchr(group, '/') || strchr(version, '/'))
                continue;
            if (++fetched > MAX_GROUP_VERSIONS)
                return kiln_err_set(err, KILN_ELIMIT, "discovery: more than %d group-versions",
                                    MAX_GROUP_VERSIONS);
            kiln_err gv_err = {0};
            /* One broken aggregated API must not hide every other group
             * (client-go reports it as a partial discovery failure). */
            if (fetch_gv(map, c, group, version, &gv_err) != 0)
                KILN_LOG(KILN_LOG_WARN, "discovery of %s/%s skipped: %s", group, version,
                         gv_err.msg);
        }
    }
    return 0;
}

/* Builds a fresh map; called with d->mu held. Aggregated discovery takes two
 * requests; the legacy fallback one per group-version. */
static int refresh_locked(kiln_kube_discovery *d, kiln_err *err)
{
    json_t *map = json_object();
    json_t *api = NULL, *apis = NULL;
    char ct_api[128], ct_apis[128];
    int rc;
    if ((rc = kiln_kube_do_accept(&api, ct_api, d->c, "/api", AGGREGATED_ACCEPT, err)) ||
        (rc = kiln_kube_do_accept(&apis, ct_apis, d->c, "/apis", AGGREGATED_ACCEPT, err)))
        goto out;
    /* The reply's Content-Type says which form it is (client-go decides the
     * same way); a server may serve one path aggregated and not the other. */
    if (is_aggregated(ct_api) && is_aggregated(ct_apis)) {
        add_aggregated(map, api);
        add_aggregated(map, apis);
    } else {
        if (is_aggregated(ct_api)) {
            json_decref(api);
            api = NULL;
            if ((rc = kiln_kube_do(&api, d->c, "GET", "/api", NULL, NULL, 0, err)))
                goto out;
        }
        if (is_aggregated(ct_apis)) {
            json_decref(apis);
            apis = NULL;
            if ((rc = kiln_kube_do(&apis, d->c, "GET", "/apis", NULL, NULL, 0, err)))
                goto out;
        }
        if ((rc = add_legacy(map, d->c, api, apis, err)))
            goto out;
    }
    json_decref(d->kinds);
    d->kinds = map;
    map = NULL;
    d->fetched = true;
out:
    d->refreshed_ms = kiln_kube_clock_mono_ms(&d->clock);
    json_decref(map);
    json_decref(api);
    json_decref(apis);
    return rc;
}

int kiln_kube_discovery_refresh(kiln_kube_discovery *d, kiln_err *err)
{
    pthread_mutex_lock(&d->mu);
    int rc = refresh_locked(d, err);
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static void fill(kiln_kube_resource_info *out, const json_t *e)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->group, sizeof(out->group), "%s", kiln_json_get_string(e, "group"));
    snprintf(out->version, sizeof(out->version), "%s", kiln_json_get_string(e, "version"));
    snprintf(out->resource, sizeof(out->resource), "%s", kiln_json_get_string(e, "resource"));
    snprintf(out->kind, sizeof(out->kind), "%s", kiln_json_get_string(e, "kind"));
    out->namespaced = json_is_true(json_object_get(e, "namespaced"));
    out->verbs = (unsigned)json_integer_value(json_object_get(e, "verbs"));
    out->has_status = json_is_true(json_object_get(e, "status"));
    out->has_scale = json_is_true(json_object_get(e, "scale"));
}

int kiln_kube_discovery_resolve(kiln_kube_resource_info *out, kiln_kube_discovery *d,
                                const char *api_version, const char *kind, kiln_err *err)
{
    int rc = 0;
    if (!api_version || !*api_version || !kind || !*kind)
        return kiln_err_set(err, KILN_EINVAL, "apiVersion and kind are required");
    char *key = kiln_xasprintf("%s/%s", api_version, kind);
    pthread_mutex_lock(&d->mu);
    json_t *e = json_object_get(d->kinds, key);
    if (!e) {
        int64_t now = kiln_kube_clock_mono_ms(&d->clock);
        /* A miss may be a CRD created since the last look; refresh, but not
         * more often than min_refresh_ms. */
        if (!d->fetched || now - d->refreshed_ms >= d->min_refresh_ms) {
            if ((rc = refresh_locked(d, err)))
                goto out;
            e = json_object_get(d->kinds, key);
        }
    }
    if (!e) {
        rc = kiln_err_set(err, KILN_ENOTFOUND,
                          "no resource for kind %s in %s: the server does not serve it (is its "
                          "CRD installed?)",
                          kind, api_version);
        goto out;
    }
    fill(out, e);
out:
    pthread_mutex_unlock(&d->mu);
    kiln_xfree(key);
    return rc;
}

/* The entry serving group/version/resource. Caller holds d->mu. A linear
 * scan: the map holds a few hundred kinds and callers look up once per
 * resource they start watching. */
static const json_t *find_resource_locked(kiln_kube_discovery *d, const char *group,
                                          const char *version, const char *resource)
{
    const char *k;
    json_t *e;
    json_object_foreach(d->kinds, k, e)
    {
        if (strcmp(kiln_json_get_string(e, "resource"), resource) == 0 &&
            strcmp(kiln_json_get_string(e, "version"), version) == 0 &&
            strcmp(kiln_json_get_string(e, "group"), group) == 0)
            return e;
    }
    return NULL;
}

int kiln_kube_discovery_resolve_resource(kiln_kube_resource_info *out, kiln_kube_discovery *d,
                                         const char *group, const char *version,
                                         const char *resource, kiln_err *err)
{
    int rc = 0;
    if (!group)
        group = "";
    if (!version || !*version || !resource || !*resource)
        return kiln_err_set(err, KILN_EINVAL, "version and resource are required");
    pthread_mutex_lock(&d->mu);
    const json_t *e = find_resource_locked(d, group, version, resource);
    if (!e) {
        int64_t now = kiln_kube_clock_mono_ms(&d->clock);
        if (!d->fetched || now - d->refreshed_ms >= d->min_refresh_ms) {
            if ((rc = refresh_locked(d, err)))
                goto out;
            e = find_resource_locked(d, group, version, resource);
        }
    }
    if (!e) {
        rc = kiln_err_set(err, KILN_ENOTFOUND, "the server does not serve %s in %s%s%s", resource,
                          group, *group ? "/" : "", version);
        goto out;
    }
    fill(out, e);
out:
    pthread_mutex_unlock(&d->mu);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* OpenAPI v3                                                                 */

int kiln_kube_openapi_document(json_t **out, kiln_kube_discovery *d, const char *group,
                               const char *version, kiln_err *err)
{
    char *gv = group && *group ? kiln_xasprintf("apis/%s/%s", group, version)
                               : kiln_xasprintf("api/%s", version);
    json_t *index = NULL;
    int rc = 0;
    *out = NULL;
    pthread_mutex_lock(&d->mu);
    for (int attempt = 0; attempt < 2; attempt++) {
        int64_t now = kiln_kube_clock_mono_ms(&d->clock);
        json_t *entry = d->openapi_index ? json_object_get(d->openapi_index, gv) : NULL;
        /* The index changes when CRDs change; a missing group-version (or the
         * first call) fetches it again, rate-limited like discovery. */
        if (!entry && (!d->openapi_index || now - d->index_ms >= d->min_refresh_ms)) {
            if ((rc = kiln_kube_do(&index, d->c, "GET", "/openapi/v3", NULL, NULL, 0, err)))
                goto out;
            json_t *paths = json_object_get(index, "paths");
            if (!json_is_object(paths)) {
                rc = kiln_err_set(err, KILN_EINVAL, "GET /openapi/v3: no \"paths\" object");
                goto out;
            }
            json_decref(d->openapi_index);
            d->openapi_index = json_incref(paths);
            d->index_ms = now;
            json_decref(index);
            index = NULL;
            entry = json_object_get(d->openapi_index, gv);
        }
        const char *url = kiln_json_get_string(entry, "serverRelativeURL");
        if (!url) {
            rc = kiln_err_set(err, KILN_ENOTFOUND, "no OpenAPI v3 document for %s", gv);
            goto out;
        }
        if (url[0] != '/') {
            rc = kiln_err_set(err, KILN_EINVAL,
                              "OpenAPI v3 index: %s: bad serverRelativeURL \"%s\"", gv, url);
            goto out;
        }
        json_t *doc = json_object_get(d->openapi_docs, url);
        if (doc) {
            *out = json_incref(doc);
            goto out;
        }
        rc = kiln_kube_do(&doc, d->c, "GET", url, NULL, NULL, 0, err);
        if (rc == 0) {
            /* Cached by its hash URL forever: that content never changes. */
            json_object_set_new(d->openapi_docs, url, doc);
            *out = json_incref(doc);
            goto out;
        }
        /* A stale hash (the document changed since the index was read) is
         * answered with 301 to the new one (kube-openapi handler3): read the
         * index again once. */
        if ((rc == KILN_ENOTFOUND || kiln_kube_last_status()->http == 301) && attempt == 0) {
            json_decref(d->openapi_index);
            d->openapi_index = NULL;
            continue;
        }
        goto out;
    }
out:
    pthread_mutex_unlock(&d->mu);
    json_decref(index);
    kiln_xfree(gv);
    return rc;
}

json_t *kiln_kube_openapi_find_kind(const json_t *doc, const char *group, const char *version,
                                    const char *kind)
{
    json_t *schemas = kiln_json_get_path(doc, "components.schemas");
    const char *name;
    json_t *s;
    json_object_foreach(schemas, name, s)
    {
        size_t i;
        json_t *gvk;
        json_array_foreach(json_object_get(s, "x-kubernetes-group-version-kind"), i, gvk)
        {
            const char *g = kiln_json_get_string(gvk, "group");
            const char *v = kiln_json_get_string(gvk, "version");
            const char *k = kiln_json_get_string(gvk, "kind");
            if (g && v && k && strcmp(g, group ? group : "") == 0 && strcmp(v, version) == 0 &&
                strcmp(k, kind) == 0)
                return s;
        }
    }
    return NULL;
}
