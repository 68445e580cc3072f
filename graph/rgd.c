/* graph/rgd.c: the shape of a ResourceGraphDefinition document.
 *
 * Checks every field the RGD may carry, with the exact path of each problem,
 * and fills the parts of a kiln_graph that need no expression scanning: the
 * generated kind's names, the SimpleSchema of its spec, and one gnode per
 * resource with its raw pieces. Problems are collected, not returned at the
 * first, because `kiln lint` reports them all.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "core/mem.h"
#include "graph/impl.h"
#include "graph/simpleschema.h"

#define PATH_MAX_LEN 512

static const char *const reserved_words[] = {
    /* kiln's variables and words kro reserves */
    "schema", "spec", "status", "metadata", "kind", "apiVersion", "self", "each", "item", "items",
    "resource", "resources", "instance", "runtime", "graph", "kiln", "namespace",
    /* Lua base names a resource would shadow */
    "string", "table", "math", "utf8", "pairs", "ipairs", "type", "tostring", "tonumber", "error",
    "assert", "select", "next", "print", "load", "require", "rawget", "rawset", "rawequal",
    "rawlen", "setmetatable", "getmetatable", "pcall", "xpcall", "os", "io", "debug", "package",
    "coroutine", "collectgarbage", "dofile", "loadfile", "_G", "_ENV", "_VERSION", NULL};

/* The helper library and the safe base (lua/sandbox.h): visible to every
 * chunk, so a reference to them is never an unknown identifier. */
static const char *const library_globals[] = {
    "k8s",          "json",     "str",      "list",     "hash",     "b64",
    "semver",       "quantity", "recipe",   "range",    "array",    "object",
    "string",       "table",    "math",     "utf8",     "pairs",    "ipairs",
    "type",         "tostring", "tonumber", "error",    "assert",   "select",
    "next",         "rawget",   "rawset",   "rawequal", "rawlen",   "setmetatable",
    "getmetatable", "pcall",    "xpcall",   "_ENV",     "_VERSION", NULL};

static bool in_list(const char *const *list, const char *name)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

bool kiln_rgd_is_library_global(const char *name)
{
    return in_list(library_globals, name);
}

bool kiln_rgd_is_reserved(const char *name)
{
    return kiln_lua_is_keyword(name) || in_list(reserved_words, name) ||
           in_list(library_globals, name);
}

static bool is_lower_camel(const char *s)
{
    if (!s[0] || !(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    for (const char *p = s + 1; *p; p++)
        if (!isalnum((unsigned char)*p))
            return false;
    return true;
}

static bool is_upper_camel(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || !(s[0] >= 'A' && s[0] <= 'Z'))
        return false;
    for (const char *p = s + 1; *p; p++)
        if (!isalnum((unsigned char)*p))
            return false;
    return true;
}

/* ^v[0-9]+((alpha|beta)[0-9]+)?$ */
static bool is_kube_version(const char *s)
{
    const char *p = s;
    if (*p++ != 'v' || !isdigit((unsigned char)*p))
        return false;
    while (isdigit((unsigned char)*p))
        p++;
    if (!*p)
        return true;
    if (strncmp(p, "alpha", 5) == 0)
        p += 5;
    else if (strncmp(p, "beta", 4) == 0)
        p += 4;
    else
        return false;
    if (!isdigit((unsigned char)*p))
        return false;
    while (isdigit((unsigned char)*p))
        p++;
    return *p == '\0';
}

/* A DNS subdomain: lowercase alphanumerics, '-' and '.', at most 253. */
static bool is_dns_subdomain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return false;
    for (const char *p = s; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '.'))
            return false;
    return true;
}

static int type_err(kiln_errs *errs, const char *path, const char *expected, const json_t *got)
{
    return kiln_errs_add(errs, KILN_EINVAL, "%s: expected %s, got %s", path, expected,
                         kiln_json_type_name(got));
}

/* Reports members of obj not in allowed (NULL-terminated). */
static int check_fields(kiln_errs *errs, const char *path, const json_t *obj,
                        const char *const *allowed)
{
    const char *key;
    json_t *v;
    int rc = 0;
    json_object_foreach((json_t *)obj, key, v)
    {
        (void)v;
        if (!in_list(allowed, key))
            rc = kiln_errs_add(errs, KILN_EINVAL, "%s%s%s: unknown field", path, *path ? "." : "",
                               key);
    }
    return rc;
}

/* A list of strings (includeWhen, readyWhen, checks, ...). */
static bool check_string_list(kiln_errs *errs, const char *path, const json_t *v)
{
    size_t i;
    json_t *item;
    if (!json_is_array(v)) {
        type_err(errs, path, "a list of strings", v);
        return false;
    }
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item)) {
            char p[PATH_MAX_LEN];
            snprintf(p, sizeof p, "%s[%zu]", path, i);
            type_err(errs, p, "string", item);
            return false;
        }
    }
    return true;
}

static const char *get_string(kiln_errs *errs, const char *path, const json_t *obj, const char *key,
                              bool required, bool *ok)
{
    json_t *v = json_object_get(obj, key);
    char p[PATH_MAX_LEN];
    snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", key);
    if (!v) {
        if (required) {
            kiln_errs_add(errs, KILN_EINVAL, "%s: required", p);
            *ok = false;
        }
        return NULL;
    }
    if (!json_is_string(v)) {
        type_err(errs, p, "string", v);
        *ok = false;
        return NULL;
    }
    if (required && json_string_length(v) == 0) {
        kiln_errs_add(errs, KILN_EINVAL, "%s: must not be empty", p);
        *ok = false;
        return NULL;
    }
    return json_string_value(v);
}

static void parse_schema(kiln_graph *g, const json_t *schema, kiln_errs *errs)
{
    static const char *const fields[] = {"apiVersion", "kind",       "group",    "scope",
                                         "spec",       "types",      "status",   "printerColumns",
                                         "shortNames", "categories", "metadata", NULL};
    const char *p = "spec.schema";
    bool ok = true;
    const char *s;
    json_t *v;

    if (!json_is_object(schema)) {
        if (!schema)
            kiln_errs_add(errs, KILN_EINVAL, "spec.schema: required");
        else
            type_err(errs, p, "object", schema);
        return;
    }
    check_fields(errs, p, schema, fields);
    s = get_string(errs, p, schema, "apiVersion", true, &ok);
    if (s && !is_kube_version(s))
        kiln_errs_add(errs, KILN_EINVAL,
                      "spec.schema.apiVersion: \"%s\" must match ^v[0-9]+((alpha|beta)[0-9]+)?$ "
                      "(v1, v1alpha1, v2beta3)",
                      s);
    else if (s)
        g->version = kiln_xstrdup(s);
    s = get_string(errs, p, schema, "kind", true, &ok);
    if (s && !is_upper_camel(s))
        kiln_errs_add(errs, KILN_EINVAL,
                      "spec.schema.kind: \"%s\" must be UpperCamelCase (^[A-Z][a-zA-Z0-9]*$, at "
                      "most 63 characters)",
                      s);
    else if (s)
        g->kind = kiln_xstrdup(s);
    s = get_string(errs, p, schema, "group", false, &ok);
    if (s && !is_dns_subdomain(s))
        kiln_errs_add(errs, KILN_EINVAL,
                      "spec.schema.group: \"%s\" must be a DNS subdomain (lowercase letters, "
                      "digits, '-' and '.')",
                      s);
    g->group = kiln_xstrdup(s && is_dns_subdomain(s) ? s : "kiln.dev");
    s = get_string(errs, p, schema, "scope", false, &ok);
    if (s && strcmp(s, "Namespaced") != 0 && strcmp(s, "Cluster") != 0)
        kiln_errs_add(errs, KILN_EINVAL,
                      "spec.schema.scope: expected \"Namespaced\" or \"Cluster\", got \"%s\"", s);
    g->cluster = s && strcmp(s, "Cluster") == 0;
    if (g->version)
        g->api_version = kiln_xasprintf("%s/%s", g->group, g->version);

    v = json_object_get(schema, "types");
    if (v && !json_is_object(v)) {
        type_err(errs, "spec.schema.types", "object", v);
        v = NULL;
    }
    json_t *spec = json_object_get(schema, "spec");
    if (spec && !json_is_object(spec)) {
        type_err(errs, "spec.schema.spec", "object", spec);
    } else {
        json_t *empty = spec ? NULL : json_object();
        kiln_simpleschema_to_openapi(&g->spec_schema, spec ? spec : empty, v, "spec.schema.spec",
                                     errs);
        json_decref(empty);
    }
    v = json_object_get(schema, "status");
    if (v && !json_is_object(v))
        type_err(errs, "spec.schema.status", "object", v);
    else
        g->status_src = v;
    v = json_object_get(schema, "printerColumns");
    if (v && !json_is_array(v))
        type_err(errs, "spec.schema.printerColumns", "a list", v);
    v = json_object_get(schema, "shortNames");
    if (v)
        check_string_list(errs, "spec.schema.shortNames", v);
    v = json_object_get(schema, "categories");
    if (v)
        check_string_list(errs, "spec.schema.categories", v);
    v = json_object_get(schema, "metadata");
    if (v && !json_is_object(v))
        type_err(errs, "spec.schema.metadata", "object", v);
}

static bool parse_object_head(gnode *n, const char *path, const json_t *obj, kiln_errs *errs)
{
    bool ok = true;
    char p[PATH_MAX_LEN];
    json_t *md;
    n->object_api_version = get_string(errs, path, obj, "apiVersion", true, &ok);
    n->object_kind = get_string(errs, path, obj, "kind", true, &ok);
    md = json_object_get(obj, "metadata");
    snprintf(p, sizeof p, "%s.metadata", path);
    if (!md) {
        kiln_errs_add(errs, KILN_EINVAL, "%s: required", p);
        ok = false;
    } else if (!json_is_object(md)) {
        type_err(errs, p, "object", md);
        ok = false;
    }
    return ok;
}

static bool parse_external_ref(gnode *n, const char *path, json_t *ref, kiln_errs *errs)
{
    static const char *const fields[] = {"apiVersion", "kind", "metadata", NULL};
    static const char *const md_fields[] = {"name", "namespace", NULL};
    bool ok = parse_object_head(n, path, ref, errs);
    char p[PATH_MAX_LEN + 32];
    if (check_fields(errs, path, ref, fields) < 0)
        ok = false;
    json_t *md = json_object_get(ref, "metadata");
    if (json_is_object(md)) {
        snprintf(p, sizeof p, "%s.metadata", path);
        if (check_fields(errs, p, md, md_fields) < 0)
            ok = false;
        if (!get_string(errs, p, md, "name", true, &ok))
            ok = false;
        get_string(errs, p, md, "namespace", false, &ok);
    }
    return ok;
}

static const char *const validation_checks[] = {"device", "memory", "hbm-bandwidth", "gemm", "pcie",
                                                "p2p",    NULL};

static bool check_int(kiln_errs *errs, const char *path, const json_t *obj, const char *key,
                      long long min, const char *what)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return true;
    if (json_is_string(v) && kiln_tmpl_has_expr(json_string_value(v)))
        return true;
    if (!json_is_integer(v)) {
        char p[PATH_MAX_LEN];
        snprintf(p, sizeof p, "%s.%s", path, key);
        type_err(errs, p, "integer", v);
        return false;
    }
    if (json_integer_value(v) < min) {
        kiln_errs_add(errs, KILN_EINVAL, "%s.%s: must be %s, got %lld", path, key, what,
                      (long long)json_integer_value(v));
        return false;
    }
    return true;
}

/* Validation nodes get their defaults written into the source, so the
 * rendered spec always says what will run. */
static bool parse_validation(gnode *n, const char *path, json_t *val, kiln_errs *errs)
{
    static const char *const fields[] = {
        "accelerator", "checks", "nodeSelector", "gpusPerNode", "maxNodes", "timeoutSeconds", NULL};
    bool ok = true;
    char p[PATH_MAX_LEN + 32];
    json_t *v;
    (void)n;
    if (check_fields(errs, path, val, fields) < 0)
        ok = false;
    get_string(errs, path, val, "accelerator", false, &ok);
    v = json_object_get(val, "checks");
    snprintf(p, sizeof p, "%s.checks", path);
    if (v) {
        if (!check_string_list(errs, p, v)) {
            ok = false;
        } else {
            size_t i;
            json_t *c;
            json_array_foreach(v, i, c)
            {
                if (!in_list(validation_checks, json_string_value(c))) {
                    kiln_errs_add(errs, KILN_EINVAL,
                                  "%s[%zu]: unknown check \"%s\" (known: device, memory, "
                                  "hbm-bandwidth, gemm, pcie, p2p)",
                                  p, i, json_string_value(c));
                    ok = false;
                }
            }
        }
    } else {
        json_t *all = json_array();
        for (size_t i = 0; validation_checks[i]; i++)
            json_array_append_new(all, json_string(validation_checks[i]));
        json_object_set_new(val, "checks", all);
    }
    v = json_object_get(val, "nodeSelector");
    if (v) {
        const char *k;
        json_t *s;
        snprintf(p, sizeof p, "%s.nodeSelector", path);
        if (!json_is_object(v)) {
            type_err(errs, p, "a map of strings", v);
            ok = false;
        } else {
            json_object_foreach(v, k, s)
            {
                if (!json_is_string(s)) {
                    kiln_errs_add(errs, KILN_EINVAL, "%s.%s: expected string, got %s", p, k,
                                  kiln_json_type_name(s));
                    ok = false;
                }
            }
        }
    }
    ok = check_int(errs, path, val, "gpusPerNode", 1, "at least 1") && ok;
    ok = check_int(errs, path, val, "maxNodes", 0, "at least 0") && ok;
    ok = check_int(errs, path, val, "timeoutSeconds", 1, "greater than 0") && ok;
    if (!json_object_get(val, "maxNodes"))
        json_object_set_new(val, "maxNodes", json_integer(0));
    if (!json_object_get(val, "timeoutSeconds"))
        json_object_set_new(val, "timeoutSeconds", json_integer(600));
    return ok;
}

static bool parse_foreach(kiln_graph *g, gnode *n, const char *path, const json_t *fe,
                          kiln_errs *errs)
{
    char p[PATH_MAX_LEN];
    bool ok = true;
    size_t i;
    json_t *item;
    snprintf(p, sizeof p, "%s.forEach", path);
    if (!json_is_array(fe)) {
        type_err(errs, p, "a list of single-entry maps", fe);
        return false;
    }
    if (json_array_size(fe) == 0) {
        kiln_errs_add(errs, KILN_EINVAL, "%s: must have at least one iterator", p);
        return false;
    }
    if (json_array_size(fe) > g->max_dims) {
        kiln_errs_add(errs, KILN_EINVAL, "%s: %zu iterators exceed the limit of %zu dimensions", p,
                      json_array_size(fe), g->max_dims);
        return false;
    }
    n->iters = kiln_xcalloc(json_array_size(fe), sizeof *n->iters);
    json_array_foreach(fe, i, item)
    {
        const char *name;
        json_t *v;
        char ip[PATH_MAX_LEN + 32];
        snprintf(ip, sizeof ip, "%s[%zu]", p, i);
        if (!json_is_object(item)) {
            type_err(errs, ip, "a single-entry map {name: \"${list}\"}", item);
            ok = false;
            continue;
        }
        if (json_object_size(item) != 1) {
            kiln_errs_add(errs, KILN_EINVAL,
                          "%s: expected a map with exactly one iterator, got %zu keys", ip,
                          json_object_size(item));
            ok = false;
            continue;
        }
        json_object_foreach(item, name, v)
        {
            if (!json_is_string(v)) {
                char *vp = kiln_xasprintf("%s.%s", ip, name);
                type_err(errs, vp, "string", v);
                kiln_xfree(vp);
                ok = false;
                continue;
            }
            if (!is_lower_camel(name)) {
                kiln_errs_add(errs, KILN_EINVAL,
                              "%s: iterator \"%s\" must be lowerCamelCase (^[a-z][a-zA-Z0-9]*$)",
                              ip, name);
                ok = false;
            } else if (kiln_rgd_is_reserved(name)) {
                kiln_errs_add(errs, KILN_EINVAL, "%s: iterator \"%s\" is a reserved name", ip,
                              name);
                ok = false;
            }
            for (size_t j = 0; j < n->niters; j++) {
                if (strcmp(n->iters[j].name, name) == 0) {
                    kiln_errs_add(errs, KILN_EINVAL, "%s: duplicate iterator \"%s\"", ip, name);
                    ok = false;
                }
            }
            n->iters[n->niters].name = name;
            n->iters[n->niters].src = json_string_value(v);
            n->niters++;
        }
    }
    return ok;
}

static void parse_resource(kiln_graph *g, size_t i, json_t *res, kiln_errs *errs)
{
    static const char *const fields[] = {"id",          "template",   "script",
                                         "externalRef", "validation", "includeWhen",
                                         "readyWhen",   "forEach",    NULL};
    static const char *const bodies[] = {"template", "script", "externalRef", "validation"};
    gnode *n = &g->nodes[i];
    char path[64], p[PATH_MAX_LEN];
    bool ok = true;
    const char *id;
    int nbodies = 0;
    json_t *v;

    n->index = i;
    snprintf(path, sizeof path, "spec.resources[%zu]", i);
    if (!json_is_object(res)) {
        type_err(errs, path, "object", res);
        return;
    }
    if (check_fields(errs, path, res, fields) < 0)
        ok = false;
    id = get_string(errs, path, res, "id", true, &ok);
    if (id) {
        snprintf(p, sizeof p, "%s.id", path);
        if (!is_lower_camel(id)) {
            kiln_errs_add(errs, KILN_EINVAL,
                          "%s: \"%s\" must be lowerCamelCase (^[a-z][a-zA-Z0-9]*$)", p, id);
            ok = false;
        } else if (kiln_rgd_is_reserved(id)) {
            kiln_errs_add(errs, KILN_EINVAL, "%s: \"%s\" is a reserved name", p, id);
            ok = false;
        } else {
            for (size_t j = 0; j < i; j++) {
                if (g->nodes[j].id && strcmp(g->nodes[j].id, id) == 0) {
                    kiln_errs_add(errs, KILN_EINVAL,
                                  "%s: duplicate id \"%s\" (first at spec.resources[%zu])", p, id,
                                  j);
                    ok = false;
                    id = NULL;
                    break;
                }
            }
            n->id = id;
        }
    }
    if (!n->id)
        ok = false;

    for (size_t k = 0; k < 4; k++)
        if (json_object_get(res, bodies[k]))
            nbodies++;
    if (nbodies != 1) {
        kiln_errs_add(errs, KILN_EINVAL,
                      "%s: exactly one of template, script, externalRef or validation is "
                      "required, got %d",
                      path, nbodies);
        ok = false;
    } else if ((v = json_object_get(res, "template"))) {
        n->kind = KILN_GRAPH_NODE_TEMPLATE;
        snprintf(p, sizeof p, "%s.template", path);
        if (!json_is_object(v)) {
            type_err(errs, p, "object", v);
            ok = false;
        } else {
            ok = parse_object_head(n, p, v, errs) && ok;
            n->source = v;
            n->sets_namespace = json_object_get(json_object_get(v, "metadata"), "namespace");
        }
    } else if ((v = json_object_get(res, "script"))) {
        n->kind = KILN_GRAPH_NODE_SCRIPT;
        snprintf(p, sizeof p, "%s.script", path);
        if (!json_is_string(v)) {
            type_err(errs, p, "string", v);
            ok = false;
        } else if (json_string_length(v) == 0) {
            kiln_errs_add(errs, KILN_EINVAL, "%s: must not be empty", p);
            ok = false;
        } else {
            n->script = json_string_value(v);
        }
    } else if ((v = json_object_get(res, "externalRef"))) {
        n->kind = KILN_GRAPH_NODE_EXTERNAL_REF;
        snprintf(p, sizeof p, "%s.externalRef", path);
        if (!json_is_object(v)) {
            type_err(errs, p, "object", v);
            ok = false;
        } else {
            ok = parse_external_ref(n, p, v, errs) && ok;
            n->source = v;
        }
    } else {
        v = json_object_get(res, "validation");
        n->kind = KILN_GRAPH_NODE_VALIDATION;
        snprintf(p, sizeof p, "%s.validation", path);
        if (!json_is_object(v)) {
            type_err(errs, p, "object", v);
            ok = false;
        } else {
            ok = parse_validation(n, p, v, errs) && ok;
            n->source = v;
        }
    }

    if ((v = json_object_get(res, "includeWhen"))) {
        snprintf(p, sizeof p, "%s.includeWhen", path);
        if (check_string_list(errs, p, v)) {
            n->include_src = v;
            n->flags |= KILN_GRAPH_NODE_INCLUDE_WHEN;
        } else {
            ok = false;
        }
    }
    if ((v = json_object_get(res, "readyWhen"))) {
        snprintf(p, sizeof p, "%s.readyWhen", path);
        if (check_string_list(errs, p, v)) {
            n->ready_src = v;
            n->flags |= KILN_GRAPH_NODE_READY_WHEN;
        } else {
            ok = false;
        }
    }
    if ((v = json_object_get(res, "forEach"))) {
        if (n->kind == KILN_GRAPH_NODE_EXTERNAL_REF || n->kind == KILN_GRAPH_NODE_VALIDATION) {
            kiln_errs_add(errs, KILN_EINVAL, "%s.forEach: not allowed on %s resources", path,
                          kiln_graph_node_kind_name(n->kind));
            ok = false;
        } else if (parse_foreach(g, n, path, v, errs)) {
            n->flags |= KILN_GRAPH_NODE_FOREACH;
        } else {
            ok = false;
        }
    }
    n->valid = ok;
}

/* A DNS-1123 subdomain: what a ServiceAccount's name must be. */
static bool sa_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && c != '.')
            return false;
        if ((i == 0 || i == n - 1) && !alnum)
            return false;
    }
    return true;
}

int kiln_rgd_parse(kiln_graph *g, const json_t *rgd, kiln_errs *errs)
{
    static const char *const top_fields[] = {"apiVersion", "kind",   "metadata",
                                             "spec",       "status", NULL};
    static const char *const spec_fields[] = {"schema", "lua", "resources", "serviceAccountName",
                                              NULL};
    size_t before = errs->len;
    bool ok = true;
    const char *s;
    json_t *spec, *v;

    if (!json_is_object(rgd)) {
        type_err(errs, "<document>", "a ResourceGraphDefinition object", rgd);
        return KILN_EINVAL;
    }
    check_fields(errs, "", rgd, top_fields);
    s = get_string(errs, "", rgd, "apiVersion", true, &ok);
    if (s && strcmp(s, "kiln.dev/v1alpha1") != 0)
        kiln_errs_add(errs, KILN_EINVAL, "apiVersion: expected \"kiln.dev/v1alpha1\", got \"%s\"",
                      s);
    s = get_string(errs, "", rgd, "kind", true, &ok);
    if (s && strcmp(s, "ResourceGraphDefinition") != 0)
        kiln_errs_add(errs, KILN_EINVAL, "kind: expected \"ResourceGraphDefinition\", got \"%s\"",
                      s);
    v = json_object_get(rgd, "metadata");
    if (!json_is_object(v)) {
        if (v)
            type_err(errs, "metadata", "object", v);
        else
            kiln_errs_add(errs, KILN_EINVAL, "metadata: required");
    } else if ((s = get_string(errs, "metadata", v, "name", true, &ok))) {
        g->name = kiln_xstrdup(s);
    }

    spec = json_object_get(rgd, "spec");
    if (!json_is_object(spec)) {
        if (spec)
            type_err(errs, "spec", "object", spec);
        else
            kiln_errs_add(errs, KILN_EINVAL, "spec: required");
        goto out;
    }
    check_fields(errs, "spec", spec, spec_fields);
    parse_schema(g, json_object_get(spec, "schema"), errs);
    g->helpers = get_string(errs, "spec", spec, "lua", false, &ok);
    g->service_account = get_string(errs, "spec", spec, "serviceAccountName", false, &ok);
    if (g->service_account && !sa_name_ok(g->service_account)) {
        kiln_errs_add(errs, KILN_EINVAL,
                      "spec.serviceAccountName: \"%s\" is not a valid ServiceAccount name (a "
                      "DNS-1123 subdomain: lowercase letters, digits, '-' and '.', at most 253)",
                      g->service_account);
        g->service_account = NULL;
    }

    v = json_object_get(spec, "resources");
    if (v && !json_is_array(v)) {
        type_err(errs, "spec.resources", "a list", v);
    } else if (v) {
        size_t i;
        json_t *res;
        g->nnodes = json_array_size(v);
        g->nodes = kiln_xcalloc(g->nnodes ? g->nnodes : 1, sizeof *g->nodes);
        json_array_foreach(v, i, res) parse_resource(g, i, res, errs);
        /* Iterators may not shadow a resource: check once every id is known. */
        for (i = 0; i < g->nnodes; i++) {
            for (size_t k = 0; k < g->nodes[i].niters; k++) {
                for (size_t j = 0; j < g->nnodes; j++) {
                    if (g->nodes[j].id && strcmp(g->nodes[j].id, g->nodes[i].iters[k].name) == 0) {
                        kiln_errs_add(errs, KILN_EINVAL,
                                      "spec.resources[%zu].forEach[%zu]: iterator \"%s\" is also "
                                      "a resource id (spec.resources[%zu])",
                                      i, k, g->nodes[i].iters[k].name, j);
                        g->nodes[i].valid = false;
                    }
                }
            }
        }
    }
out:
    return errs->len > before ? errs->items[before].code : 0;
}
