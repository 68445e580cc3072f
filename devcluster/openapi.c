/* devcluster/openapi.c: /openapi/v2 and /openapi/v3 in the forms kubectl's
 * validation needs (kubeapi.md 9.3, kubectl-wire.md 4.1).
 *
 * - /openapi/v2 answers an empty protobuf Document: kubectl 1.27/1.28 fetch it
 *   first and, finding no schema for a kind, skip client-side validation.
 * - /openapi/v3 lists every group-version; each document has, per resource, a
 *   PATCH operation carrying x-kubernetes-group-version-kind and the
 *   fieldValidation query parameter, so kubectl 1.29+ leaves validation to the
 *   server (fieldValidation=Strict), which checks CRD schemas. CRD schemas are
 *   published in components.schemas. Built-in kinds publish no schema on
 *   purpose: kubectl would otherwise build strategic merge patches from it
 *   instead of from its compiled-in patch metadata.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "devcluster/internal.h"

static void add_gv(json_t *paths, const kiln_dc_resource *r, unsigned long long gen)
{
    char key[300], url[400];
    if (r->group[0])
        snprintf(key, sizeof key, "apis/%s/%s", r->group, r->version);
    else
        snprintf(key, sizeof key, "api/%s", r->version);
    if (json_object_get(paths, key))
        return;
    snprintf(url, sizeof url, "/openapi/v3/%s?hash=%llu", key, gen);
    json_object_set_new(paths, key, json_pack("{s:s}", "serverRelativeURL", url));
}

/* "com.example.v1.Widget" for CRDs (reversed group), io.k8s.api... otherwise. */
static void schema_key(const kiln_dc_resource *r, char *out, size_t n)
{
    if (!r->is_crd) {
        snprintf(out, n, "io.k8s.api.%s.%s.%s", r->group[0] ? r->group : "core", r->version,
                 r->kind);
        return;
    }
    char rev[256] = "";
    char *copy = kiln_xstrdup(r->group);
    size_t len = 0;
    for (;;) {
        char *dot = strrchr(copy, '.');
        const char *part = dot ? dot + 1 : copy;
        len += (size_t)snprintf(rev + len, sizeof rev - len, "%s%s", len ? "." : "", part);
        if (!dot || len >= sizeof rev)
            break;
        *dot = '\0';
    }
    kiln_xfree(copy);
    snprintf(out, n, "%s.%s.%s", rev, r->version, r->kind);
}

static json_t *gv_document(kiln_devcluster *dc, const char *group, const char *version)
{
    json_t *paths = json_object();
    json_t *schemas = json_object();
    for (size_t i = 0; i < dc->nres; i++) {
        kiln_dc_resource *r = dc->res[i];
        if (strcmp(r->group, group) || strcmp(r->version, version))
            continue;
        char path[512];
        const char *prefix = r->group[0] ? "/apis/" : "/api/";
        char gv[300];
        kiln_dc_api_version(r, gv, sizeof gv);
        snprintf(path, sizeof path, "%s%s/%s%s/{name}", prefix, gv,
                 r->namespaced ? "namespaces/{namespace}/" : "", r->plural);
        json_t *gvk =
            json_pack("{s:s,s:s,s:s}", "group", r->group, "version", r->version, "kind", r->kind);
        json_t *params = json_pack(
            "[{s:s,s:s,s:{s:s}},{s:s,s:s,s:{s:s}},{s:s,s:s,s:{s:s}},{s:s,s:s,s:{s:s}}]", "name",
            "dryRun", "in", "query", "schema", "type", "string", "name", "fieldManager", "in",
            "query", "schema", "type", "string", "name", "fieldValidation", "in", "query", "schema",
            "type", "string", "name", "force", "in", "query", "schema", "type", "boolean");
        char opid[400];
        snprintf(opid, sizeof opid, "patch%s", r->kind);
        json_t *patch =
            json_pack("{s:s,s:s,s:o,s:o}", "operationId", opid, "x-kubernetes-action", "patch",
                      "x-kubernetes-group-version-kind", gvk, "parameters", params);
        json_object_set_new(paths, path, json_pack("{s:o}", "patch", patch));
        if (r->schema) {
            char key[400];
            schema_key(r, key, sizeof key);
            json_t *s = json_deep_copy(r->schema);
            json_object_set_new(s, "x-kubernetes-group-version-kind",
                                json_pack("[{s:s,s:s,s:s}]", "group", r->group, "version",
                                          r->version, "kind", r->kind));
            json_object_set_new(schemas, key, s);
        }
    }
    return json_pack("{s:s,s:{s:s,s:s},s:o,s:{s:o}}", "openapi", "3.0.0", "info", "title",
                     "Kubernetes", "version", "v1.32.0", "paths", paths, "components", "schemas",
                     schemas);
}

bool kiln_dc_openapi_handle(kiln_devcluster *dc, const kiln_devcluster_request *req,
                            kiln_devcluster_response *resp)
{
    const char *p = req->path;
    if (strncmp(p, "/openapi/", 9) && strcmp(p, "/swagger-2.0.0.pb-v1"))
        return false;
    if (strcmp(req->method, "GET")) {
        kiln_dc_status(resp, 405, "MethodNotAllowed", NULL,
                       "the server does not allow this method on the requested resource");
        return true;
    }
    if (!strcmp(p, "/openapi/v2") || !strcmp(p, "/swagger-2.0.0.pb-v1")) {
        if (req->accept && strstr(req->accept, "application/json") &&
            !strstr(req->accept, "protobuf")) {
            json_t *doc =
                json_pack("{s:s,s:{s:s,s:s},s:{},s:{}}", "swagger", "2.0", "info", "title",
                          "Kubernetes", "version", "v1.32.0", "paths", "definitions");
            kiln_dc_reply_json(resp, 200, doc);
            json_decref(doc);
            return true;
        }
        /* An empty body is a valid, empty gnostic Document: every field default. */
        resp->status = 200;
        snprintf(resp->content_type, sizeof resp->content_type,
                 "application/com.github.proto-openapi.spec.v2.v1.0+protobuf");
        return true;
    }
    if (!strcmp(p, "/openapi/v3") || !strcmp(p, "/openapi/v3/")) {
        json_t *paths = json_object();
        for (size_t i = 0; i < dc->nres; i++)
            add_gv(paths, dc->res[i], (unsigned long long)dc->discovery_gen);
        json_t *doc = json_pack("{s:o}", "paths", paths);
        kiln_dc_reply_json(resp, 200, doc);
        json_decref(doc);
        return true;
    }
    char group[256] = "", version[64] = "";
    if (!strncmp(p, "/openapi/v3/api/", 16)) {
        snprintf(version, sizeof version, "%s", p + 16);
    } else if (!strncmp(p, "/openapi/v3/apis/", 17)) {
        const char *g = p + 17;
        const char *slash = strchr(g, '/');
        if (!slash || (size_t)(slash - g) >= sizeof group) {
            kiln_dc_status(resp, 404, "NotFound", NULL, "404 page not found");
            return true;
        }
        memcpy(group, g, (size_t)(slash - g));
        snprintf(version, sizeof version, "%s", slash + 1);
    }
    bool known = false;
    for (size_t i = 0; i < dc->nres && version[0]; i++)
        if (!strcmp(dc->res[i]->group, group) && !strcmp(dc->res[i]->version, version))
            known = true;
    if (!known) {
        kiln_dc_status(resp, 404, "NotFound", NULL, "404 page not found");
        return true;
    }
    json_t *doc = gv_document(dc, group, version);
    kiln_dc_reply_json(resp, 200, doc);
    json_decref(doc);
    return true;
}
