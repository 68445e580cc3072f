/* devcluster/discovery.c: /version, /api, /apis, /api/v1, /apis/{g}/{v}, health.
 *
 * Legacy documents always work; aggregated discovery (apidiscovery.k8s.io v2
 * and v2beta1) is served when the Accept header asks for it, and the reply's
 * Content-Type echoes the media type, because client-go decides by the
 * Content-Type alone (kubectl-wire.md section 2.2). New CRD kinds appear in the
 * same request that creates them.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "devcluster/internal.h"

static json_t *verbs(void)
{
    return json_pack("[s,s,s,s,s,s,s,s]", "create", "delete", "deletecollection", "get", "list",
                     "patch", "update", "watch");
}

static json_t *sub_verbs(void)
{
    return json_pack("[s,s,s]", "get", "patch", "update");
}

static json_t *resource_list(kiln_devcluster *dc, const char *group, const char *version)
{
    json_t *list = json_array();
    for (size_t i = 0; i < dc->nres; i++) {
        kiln_dc_resource *r = dc->res[i];
        if (strcmp(r->group, group) || strcmp(r->version, version))
            continue;
        json_t *e =
            json_pack("{s:s,s:s,s:b,s:s,s:o}", "name", r->plural, "singularName", r->singular,
                      "namespaced", r->namespaced, "kind", r->kind, "verbs", verbs());
        if (json_array_size(r->short_names))
            json_object_set(e, "shortNames", r->short_names);
        if (json_array_size(r->categories))
            json_object_set(e, "categories", r->categories);
        json_array_append_new(list, e);
        if (r->status_sub) {
            char name[300];
            snprintf(name, sizeof name, "%s/status", r->plural);
            json_array_append_new(list, json_pack("{s:s,s:s,s:b,s:s,s:o}", "name", name,
                                                  "singularName", "", "namespaced", r->namespaced,
                                                  "kind", r->kind, "verbs", sub_verbs()));
        }
        if (r->scale_sub) {
            char name[300];
            snprintf(name, sizeof name, "%s/scale", r->plural);
            json_array_append_new(list, json_pack("{s:s,s:s,s:b,s:s,s:s,s:s,s:o}", "name", name,
                                                  "singularName", "", "namespaced", r->namespaced,
                                                  "group", "autoscaling", "version", "v1", "kind",
                                                  "Scale", "verbs", sub_verbs()));
        }
    }
    return list;
}

/* Distinct groups in registration order, with their versions. */
static json_t *groups(kiln_devcluster *dc)
{
    json_t *out = json_array();
    for (size_t i = 0; i < dc->nres; i++) {
        kiln_dc_resource *r = dc->res[i];
        if (!r->group[0])
            continue;
        json_t *g = NULL;
        size_t k;
        json_t *it;
        json_array_foreach(out, k, it)
        {
            if (!strcmp(json_string_value(json_object_get(it, "name")), r->group))
                g = it;
        }
        char gv[300];
        snprintf(gv, sizeof gv, "%s/%s", r->group, r->version);
        if (!g) {
            g = json_pack("{s:s,s:[],s:{s:s,s:s}}", "name", r->group, "versions",
                          "preferredVersion", "groupVersion", gv, "version", r->version);
            json_array_append_new(out, g);
        }
        json_t *vs = json_object_get(g, "versions");
        bool have = false;
        json_array_foreach(vs, k, it)
        {
            if (!strcmp(json_string_value(json_object_get(it, "version")), r->version))
                have = true;
        }
        if (!have)
            json_array_append_new(
                vs, json_pack("{s:s,s:s}", "groupVersion", gv, "version", r->version));
    }
    return out;
}

static json_t *aggregated_resources(kiln_devcluster *dc, const char *group, const char *version)
{
    json_t *list = json_array();
    for (size_t i = 0; i < dc->nres; i++) {
        kiln_dc_resource *r = dc->res[i];
        if (strcmp(r->group, group) || strcmp(r->version, version))
            continue;
        json_t *kind =
            json_pack("{s:s,s:s,s:s}", "group", r->group, "version", r->version, "kind", r->kind);
        json_t *e = json_pack("{s:s,s:o,s:s,s:s,s:o}", "resource", r->plural, "responseKind", kind,
                              "scope", r->namespaced ? "Namespaced" : "Cluster", "singularResource",
                              r->singular, "verbs", verbs());
        if (json_array_size(r->short_names))
            json_object_set(e, "shortNames", r->short_names);
        if (json_array_size(r->categories))
            json_object_set(e, "categories", r->categories);
        json_t *subs = json_array();
        if (r->status_sub)
            json_array_append_new(subs,
                                  json_pack("{s:s,s:{s:s,s:s,s:s},s:o}", "subresource", "status",
                                            "responseKind", "group", r->group, "version",
                                            r->version, "kind", r->kind, "verbs", sub_verbs()));
        if (r->scale_sub)
            json_array_append_new(subs,
                                  json_pack("{s:s,s:{s:s,s:s,s:s},s:o}", "subresource", "scale",
                                            "responseKind", "group", "autoscaling", "version", "v1",
                                            "kind", "Scale", "verbs", sub_verbs()));
        json_object_set_new(e, "subresources", subs);
        json_array_append_new(list, e);
    }
    return list;
}

static json_t *aggregated(kiln_devcluster *dc, bool core, const char *api_version)
{
    json_t *items = json_array();
    if (core) {
        json_array_append_new(items,
                              json_pack("{s:{s:s},s:[{s:s,s:s,s:o}]}", "metadata", "name", "",
                                        "versions", "version", "v1", "freshness", "Current",
                                        "resources", aggregated_resources(dc, "", "v1")));
    } else {
        json_t *gs = groups(dc);
        size_t i;
        json_t *g;
        json_array_foreach(gs, i, g)
        {
            const char *name = json_string_value(json_object_get(g, "name"));
            json_t *vs = json_array();
            size_t j;
            json_t *v;
            json_array_foreach(json_object_get(g, "versions"), j, v)
            {
                const char *ver = json_string_value(json_object_get(v, "version"));
                json_array_append_new(vs, json_pack("{s:s,s:s,s:o}", "version", ver, "freshness",
                                                    "Current", "resources",
                                                    aggregated_resources(dc, name, ver)));
            }
            json_array_append_new(
                items, json_pack("{s:{s:s},s:o}", "metadata", "name", name, "versions", vs));
        }
        json_decref(gs);
    }
    return json_pack("{s:s,s:s,s:{},s:o}", "kind", "APIGroupDiscoveryList", "apiVersion",
                     api_version, "metadata", "items", items);
}

/* Which aggregated form the Accept header asks for first, or NULL for legacy. */
static const char *aggregated_version(const char *accept)
{
    if (!accept)
        return NULL;
    const char *v2 = strstr(accept, "g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
    const char *v2b = strstr(accept, "g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList");
    if (v2 && (!v2b || v2 < v2b))
        return "v2";
    if (v2b)
        return "v2beta1";
    return NULL;
}

static bool etag_hit(kiln_devcluster *dc, const kiln_devcluster_request *req,
                     kiln_devcluster_response *resp, const char *variant)
{
    snprintf(resp->etag, sizeof resp->etag, "\"%llu-%s\"", (unsigned long long)dc->discovery_gen,
             variant);
    if (req->if_none_match && !strcmp(req->if_none_match, resp->etag)) {
        resp->status = 304;
        kiln_buf_reset(&resp->body);
        return true;
    }
    return false;
}

bool kiln_dc_discovery_handle(kiln_devcluster *dc, const kiln_devcluster_request *req,
                              kiln_devcluster_response *resp)
{
    const char *p = req->path;
    if (!strcmp(p, "/healthz") || !strcmp(p, "/livez") || !strcmp(p, "/readyz")) {
        resp->status = 200;
        snprintf(resp->content_type, sizeof resp->content_type, "text/plain");
        kiln_buf_puts(&resp->body, "ok", NULL);
        return true;
    }
    if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD"))
        return false;
    if (!strcmp(p, "/version") || !strcmp(p, "/version/")) {
        /* minor picks the client of the kubectl dispatcher (kubectl-wire.md 1.4). */
        json_t *v = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "major", "1", "minor", "32",
                              "gitVersion", "v1.32.0", "gitCommit", "kiln-dev", "gitTreeState",
                              "clean", "buildDate", dc->start_time, "goVersion", "none", "compiler",
                              "kiln", "platform", "linux/amd64");
        kiln_dc_reply_json(resp, 200, v);
        json_decref(v);
        return true;
    }
    if (!strcmp(p, "/api") || !strcmp(p, "/apis") || !strcmp(p, "/api/") || !strcmp(p, "/apis/")) {
        bool core = p[4] != 's';
        const char *agg = aggregated_version(req->accept);
        char variant[32];
        snprintf(variant, sizeof variant, "%s-%s", core ? "api" : "apis", agg ? agg : "legacy");
        if (etag_hit(dc, req, resp, variant))
            return true;
        json_t *doc;
        if (agg) {
            char av[64];
            snprintf(av, sizeof av, "apidiscovery.k8s.io/%s", agg);
            doc = aggregated(dc, core, av);
        } else if (core) {
            char addr[64];
            snprintf(addr, sizeof addr, "127.0.0.1:%d", dc->port);
            doc = json_pack("{s:s,s:[s],s:[{s:s,s:s}]}", "kind", "APIVersions", "versions", "v1",
                            "serverAddressByClientCIDRs", "clientCIDR", "0.0.0.0/0",
                            "serverAddress", addr);
        } else {
            doc = json_pack("{s:s,s:s,s:o}", "kind", "APIGroupList", "apiVersion", "v1", "groups",
                            groups(dc));
        }
        kiln_dc_reply_json(resp, 200, doc);
        json_decref(doc);
        if (agg)
            snprintf(resp->content_type, sizeof resp->content_type,
                     "application/json;g=apidiscovery.k8s.io;v=%s;as=APIGroupDiscoveryList", agg);
        return true;
    }
    if (!strcmp(p, "/api/v1") || !strcmp(p, "/api/v1/")) {
        json_t *doc = json_pack("{s:s,s:s,s:s,s:o}", "kind", "APIResourceList", "apiVersion", "v1",
                                "groupVersion", "v1", "resources", resource_list(dc, "", "v1"));
        kiln_dc_reply_json(resp, 200, doc);
        json_decref(doc);
        return true;
    }
    if (!strncmp(p, "/apis/", 6)) {
        char group[256] = "", version[64] = "";
        const char *g = p + 6;
        const char *slash = strchr(g, '/');
        size_t glen = slash ? (size_t)(slash - g) : strlen(g);
        if (glen == 0 || glen >= sizeof group)
            return false;
        memcpy(group, g, glen);
        if (slash) {
            const char *v = slash + 1;
            const char *s2 = strchr(v, '/');
            size_t vlen = s2 ? (size_t)(s2 - v) : strlen(v);
            if (s2 && s2[1])
                return false; /* a resource path, not discovery */
            if (vlen >= sizeof version)
                return false;
            memcpy(version, v, vlen);
        }
        if (!version[0]) {
            json_t *gs = groups(dc);
            size_t i;
            json_t *it;
            json_t *found = NULL;
            json_array_foreach(gs, i, it)
            {
                if (!strcmp(json_string_value(json_object_get(it, "name")), group))
                    found = it;
            }
            if (found) {
                json_object_set_new(found, "kind", json_string("APIGroup"));
                json_object_set_new(found, "apiVersion", json_string("v1"));
                kiln_dc_reply_json(resp, 200, found);
            } else {
                kiln_dc_status(resp, 404, "NotFound", NULL,
                               "the server could not find the requested resource");
            }
            json_decref(gs);
            return true;
        }
        json_t *list = resource_list(dc, group, version);
        if (json_array_size(list) == 0) {
            json_decref(list);
            kiln_dc_status(resp, 404, "NotFound", NULL,
                           "the server could not find the requested resource");
            return true;
        }
        char gv[330];
        snprintf(gv, sizeof gv, "%s/%s", group, version);
        json_t *doc = json_pack("{s:s,s:s,s:s,s:o}", "kind", "APIResourceList", "apiVersion", "v1",
                                "groupVersion", gv, "resources", list);
        kiln_dc_reply_json(resp, 200, doc);
        json_decref(doc);
        return true;
    }
    return false;
}
