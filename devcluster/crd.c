/* devcluster/crd.c: CustomResourceDefinitions and the custom resources they
 * define: CRD checks and status (NamesAccepted, Established), serving the new
 * kind at once, and per-object defaulting, pruning and structural-schema
 * validation through core/schema.h (types, required, enum, bounds, pattern,
 * lengths, items, list types) with 422 Invalid Status causes named by field,
 * as apiextensions-apiserver does. x-kubernetes-validations (CEL) rules are
 * not evaluated (docs/devcluster.md).
 */
#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/schema.h"
#include "devcluster/internal.h"

/* ---------------- JSONPath (printer columns, scale paths) ---------------- */

static void jp_eval(const json_t *cur, const char *p, json_t *out, int depth);

static const char *jp_name(const char *p, char *name, size_t n)
{
    size_t w = 0;
    while (*p && *p != '.' && *p != '[') {
        if (*p == '\\' && p[1])
            p++;
        if (w + 1 < n)
            name[w++] = *p;
        p++;
    }
    name[w] = '\0';
    return p;
}

static bool jp_filter_match(const json_t *item, const char *expr)
{
    /* @.a.b=="v" or @.a=='v' or @.a==3 */
    const char *eq = strstr(expr, "==");
    bool ne = false;
    if (!eq) {
        eq = strstr(expr, "!=");
        ne = eq != NULL;
    }
    if (!eq || strncmp(expr, "@.", 2))
        return false;
    char path[256];
    size_t plen = (size_t)(eq - expr - 1);
    if (plen >= sizeof path)
        return false;
    memcpy(path, expr + 1, plen);
    path[plen] = '\0';
    while (plen && isspace((unsigned char)path[plen - 1]))
        path[--plen] = '\0';
    const char *v = eq + 2;
    while (isspace((unsigned char)*v))
        v++;
    char want[256];
    snprintf(want, sizeof want, "%s", v);
    size_t wl = strlen(want);
    while (wl && isspace((unsigned char)want[wl - 1]))
        want[--wl] = '\0';
    bool quoted = wl >= 2 && (want[0] == '"' || want[0] == '\'');
    if (quoted) {
        memmove(want, want + 1, wl - 2);
        want[wl - 2] = '\0';
    }
    json_t *found = json_array();
    jp_eval(item, path, found, 0);
    json_t *have = json_array_get(found, 0);
    bool match = false;
    if (json_is_string(have))
        match = !strcmp(json_string_value(have), want);
    else if (json_is_integer(have))
        match = !quoted && strtoll(want, NULL, 10) == json_integer_value(have);
    else if (json_is_boolean(have))
        match = !strcmp(want, json_is_true(have) ? "true" : "false");
    json_decref(found);
    return ne ? !match && have : match;
}

static void jp_eval(const json_t *cur, const char *p, json_t *out, int depth)
{
    if (!cur || depth > 64)
        return;
    if (!*p) {
        json_array_append(out, (json_t *)cur);
        return;
    }
    if (*p == '.') {
        if (p[1] == '.' || p[1] == '\0') {
            jp_eval(cur, p + 1, out, depth + 1);
            return;
        }
        char name[256];
        const char *rest = jp_name(p + 1, name, sizeof name);
        if (!strcmp(name, "*")) {
            const char *k;
            json_t *v;
            json_object_foreach((json_t *)cur, k, v) jp_eval(v, rest, out, depth + 1);
            return;
        }
        jp_eval(json_object_get(cur, name), rest, out, depth + 1);
        return;
    }
    if (*p == '[') {
        const char *close = NULL;
        int nest = 0;
        for (const char *q = p; *q; q++) {
            if (*q == '[' || *q == '(')
                nest++;
            else if (*q == ']' || *q == ')')
                nest--;
            if (*q == ']' && nest == 0) {
                close = q;
                break;
            }
        }
        if (!close)
            return;
        char inner[512];
        size_t n = (size_t)(close - p - 1);
        if (n >= sizeof inner)
            return;
        memcpy(inner, p + 1, n);
        inner[n] = '\0';
        const char *rest = close + 1;
        if (!strcmp(inner, "*")) {
            size_t i;
            json_t *v;
            json_array_foreach((json_t *)cur, i, v) jp_eval(v, rest, out, depth + 1);
        } else if (inner[0] == '?' && inner[1] == '(' && n > 3) {
            inner[n - 1] = '\0';
            size_t i;
            json_t *v;
            json_array_foreach((json_t *)cur, i, v) if (jp_filter_match(v, inner + 2))
                jp_eval(v, rest, out, depth + 1);
        } else if (inner[0] == '\'' || inner[0] == '"') {
            inner[n - 1] = '\0';
            jp_eval(json_object_get(cur, inner + 1), rest, out, depth + 1);
        } else {
            long idx = strtol(inner, NULL, 10);
            if (idx < 0)
                idx += (long)json_array_size(cur);
            if (idx >= 0)
                jp_eval(json_array_get(cur, (size_t)idx), rest, out, depth + 1);
        }
    }
}

json_t *kiln_dc_jsonpath(const json_t *obj, const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    char *p = buf;
    size_t n = strlen(p);
    if (n >= 2 && p[0] == '{' && p[n - 1] == '}') {
        p[n - 1] = '\0';
        p++;
    }
    if (*p != '.' && *p != '[') {
        memmove(p + 1, p, strlen(p) + 1);
        *p = '.';
    }
    json_t *out = json_array();
    jp_eval(obj, p, out, 0);
    json_t *res = NULL;
    if (json_array_size(out) == 1)
        res = json_incref(json_array_get(out, 0));
    else if (json_array_size(out) > 1)
        res = json_incref(out);
    json_decref(out);
    return res;
}

/* ---------------- CRD objects ---------------- */

typedef struct causes {
    json_t *list; /* [{reason, message, field}] */
    kiln_buf msg;
} causes;

static void cause(causes *c, const char *reason, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void cause(causes *c, const char *reason, const char *field, const char *fmt, ...)
{
    char m[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    if (json_array_size(c->list) >= 100)
        return;
    json_array_append_new(
        c->list, json_pack("{s:s,s:s,s:s}", "reason", reason, "message", m, "field", field));
    if (c->msg.len)
        kiln_buf_puts(&c->msg, ", ", NULL);
    kiln_buf_printf(&c->msg, NULL, "%s: %s", field, m);
}

static void invalid_reply(kiln_devcluster_response *resp, const char *kind_q, const char *name,
                          const char *group, const char *kind, causes *c)
{
    json_t *d = json_pack("{s:s,s:s,s:s,s:O}", "name", name ? name : "", "group", group, "kind",
                          kind, "causes", c->list);
    bool many = json_array_size(c->list) > 1;
    kiln_dc_status(resp, 422, "Invalid", d, "%s \"%s\" is invalid: %s%s%s", kind_q,
                   name ? name : "", many ? "[" : "", c->msg.data ? c->msg.data : "",
                   many ? "]" : "");
}

/* Structural-schema rule 1: a type everywhere, except int-or-string and
 * preserve-unknown-fields nodes (apiextensions structural schema). */
static void structural(const json_t *s, const char *path, causes *c, int depth)
{
    if (!json_is_object(s) || depth > 64)
        return;
    bool ios = json_is_true(json_object_get(s, "x-kubernetes-int-or-string"));
    bool pres = json_is_true(json_object_get(s, "x-kubernetes-preserve-unknown-fields"));
    if (!json_object_get(s, "type") && !ios && !pres) {
        char f[600];
        snprintf(f, sizeof f, "%s.type", path);
        cause(c, "FieldValueRequired", f, "Required value: must not be empty for specified %s",
              depth == 0 ? "object fields" : "object fields");
    }
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(s, "properties"), k, v)
    {
        char p[600];
        snprintf(p, sizeof p, "%s.properties[%s]", path, k);
        structural(v, p, c, depth + 1);
    }
    json_t *items = json_object_get(s, "items");
    if (json_is_object(items)) {
        char p[600];
        snprintf(p, sizeof p, "%s.items", path);
        structural(items, p, c, depth + 1);
    }
    json_t *ap = json_object_get(s, "additionalProperties");
    if (json_is_object(ap)) {
        char p[600];
        snprintf(p, sizeof p, "%s.additionalProperties", path);
        structural(ap, p, c, depth + 1);
    }
}

int kiln_dc_crd_check(kiln_devcluster *dc, json_t *crd, kiln_devcluster_response *resp)
{
    (void)dc;
    causes c = {.list = json_array()};
    kiln_buf_init(&c.msg, 65536);
    json_t *spec = json_object_get(crd, "spec");
    const char *name = kiln_dc_meta_str(crd, "name");
    const char *group = json_string_value(json_object_get(spec, "group"));
    json_t *names = json_object_get(spec, "names");
    const char *plural = json_string_value(json_object_get(names, "plural"));
    const char *kind = json_string_value(json_object_get(names, "kind"));
    const char *scope = json_string_value(json_object_get(spec, "scope"));
    json_t *versions = json_object_get(spec, "versions");
    int rc = 0;
    if (!group || !*group)
        cause(&c, "FieldValueRequired", "spec.group", "Required value");
    else if (!strchr(group, '.') || !kiln_dc_valid_subdomain(group))
        cause(&c, "FieldValueInvalid", "spec.group",
              "Invalid value: \"%s\": should be a domain with at least one dot", group);
    if (!plural || !*plural)
        cause(&c, "FieldValueRequired", "spec.names.plural", "Required value");
    else if (!kiln_dc_valid_label_name(plural))
        cause(&c, "FieldValueInvalid", "spec.names.plural",
              "Invalid value: \"%s\": a lowercase RFC 1123 label must consist of lower case "
              "alphanumeric characters or '-'",
              plural);
    if (!kind || !*kind)
        cause(&c, "FieldValueRequired", "spec.names.kind", "Required value");
    if (!scope || (strcmp(scope, "Namespaced") && strcmp(scope, "Cluster")))
        cause(&c, "FieldValueNotSupported", "spec.scope",
              "Unsupported value: \"%s\": supported values: \"Cluster\", \"Namespaced\"",
              scope ? scope : "");
    if (group && plural && name) {
        char want[600];
        snprintf(want, sizeof want, "%s.%s", plural, group);
        if (strcmp(want, name))
            cause(&c, "FieldValueInvalid", "metadata.name",
                  "Invalid value: \"%s\": must be spec.names.plural+\".\"+spec.group", name);
    }
    size_t storage = 0;
    if (json_array_size(versions) == 0)
        cause(&c, "FieldValueInvalid", "spec.versions",
              "Invalid value: []: must have exactly one version marked as storage version");
    size_t i;
    json_t *v;
    json_array_foreach(versions, i, v)
    {
        storage += json_is_true(json_object_get(v, "storage"));
        char f[300];
        snprintf(f, sizeof f, "spec.versions[%zu].schema.openAPIV3Schema", i);
        json_t *schema = json_object_get(json_object_get(v, "schema"), "openAPIV3Schema");
        if (!json_is_object(schema))
            cause(&c, "FieldValueRequired", f, "Required value: schemas are required");
        else
            structural(schema, f, &c, 0);
        if (!json_string_value(json_object_get(v, "name")))
            cause(&c, "FieldValueRequired", "spec.versions[].name", "Required value");
    }
    if (json_array_size(versions) && storage != 1)
        cause(&c, "FieldValueInvalid", "spec.versions",
              "Invalid value: %zu: must have exactly one version marked as storage version",
              storage);
    if (json_array_size(c.list)) {
        invalid_reply(resp, "CustomResourceDefinition.apiextensions.k8s.io", name,
                      "apiextensions.k8s.io", "CustomResourceDefinition", &c);
        rc = KILN_EINVAL;
        goto done;
    }
    /* Defaults the API server fills in, then the status the establishing
     * controller would write: both are immediate here. */
    if (!json_object_get(names, "singular")) {
        char *low = kiln_xstrdup(kind);
        for (char *p = low; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        json_object_set_new(names, "singular", json_string(low));
        kiln_xfree(low);
    }
    if (!json_object_get(names, "listKind")) {
        char *lk = kiln_xasprintf("%sList", kind);
        json_object_set_new(names, "listKind", json_string(lk));
        kiln_xfree(lk);
    }
    if (!json_object_get(spec, "conversion"))
        json_object_set_new(spec, "conversion", json_pack("{s:s}", "strategy", "None"));
    const char *storage_name = NULL;
    json_array_foreach(versions, i, v) if (json_is_true(json_object_get(v, "storage")))
        storage_name = json_string_value(json_object_get(v, "name"));
    char ts[32];
    kiln_dc_timestamp(ts);
    json_t *st = json_object_get(crd, "status");
    json_t *conds = json_object_get(st, "conditions");
    const char *est_ts = ts, *na_ts = ts;
    json_t *cd;
    json_array_foreach(conds, i, cd)
    {
        const char *t = json_string_value(json_object_get(cd, "type"));
        const char *lt = json_string_value(json_object_get(cd, "lastTransitionTime"));
        if (t && lt && !strcmp(t, "Established"))
            est_ts = lt;
        if (t && lt && !strcmp(t, "NamesAccepted"))
            na_ts = lt;
    }
    json_t *nst =
        json_pack("{s:O,s:[s],s:[{s:s,s:s,s:s,s:s,s:s},{s:s,s:s,s:s,s:s,s:s}]}", "acceptedNames",
                  names, "storedVersions", storage_name ? storage_name : "v1", "conditions", "type",
                  "NamesAccepted", "status", "True", "reason", "NoConflicts", "message",
                  "no conflicts found", "lastTransitionTime", na_ts, "type", "Established",
                  "status", "True", "reason", "InitialNamesAccepted", "message",
                  "the initial names have been accepted", "lastTransitionTime", est_ts);
    json_object_set_new(crd, "status", nst);
done:
    json_decref(c.list);
    kiln_buf_free(&c.msg);
    return rc;
}

void kiln_dc_crd_serve(kiln_devcluster *dc, json_t *crd)
{
    json_t *spec = json_object_get(crd, "spec");
    const char *crd_name = kiln_dc_meta_str(crd, "name");
    const char *group = json_string_value(json_object_get(spec, "group"));
    json_t *names = json_object_get(spec, "names");
    const char *plural = json_string_value(json_object_get(names, "plural"));
    const char *kind = json_string_value(json_object_get(names, "kind"));
    const char *singular = json_string_value(json_object_get(names, "singular"));
    bool namespaced =
        !strcmp(json_string_value(json_object_get(spec, "scope")) ?: "", "Namespaced");
    if (!group || !plural || !kind || !crd_name)
        return;
    /* Versions no longer served go away. */
    for (size_t i = dc->nres; i-- > 0;) {
        kiln_dc_resource *r = dc->res[i];
        if (!r->is_crd || strcmp(r->crd_name, crd_name))
            continue;
        bool served = false;
        size_t j;
        json_t *v;
        json_array_foreach(json_object_get(spec, "versions"), j, v)
        {
            if (json_is_true(json_object_get(v, "served")) &&
                !strcmp(json_string_value(json_object_get(v, "name")) ?: "", r->version))
                served = true;
        }
        if (!served || strcmp(r->plural, plural))
            kiln_dc_kinds_remove(dc, r);
    }
    size_t j;
    json_t *v;
    json_array_foreach(json_object_get(spec, "versions"), j, v)
    {
        if (!json_is_true(json_object_get(v, "served")))
            continue;
        const char *ver = json_string_value(json_object_get(v, "name"));
        if (!ver)
            continue;
        kiln_dc_resource *r = kiln_dc_kinds_find(dc, group, ver, plural);
        if (r && !r->is_crd)
            continue; /* never shadow a built-in */
        if (!r) {
            r = kiln_dc_kinds_add(dc, group, ver, plural, singular ? singular : plural, kind,
                                  namespaced);
            r->is_crd = true;
            r->crd_name = kiln_xstrdup(crd_name);
        } else {
            r->namespaced = namespaced;
            kiln_xfree(r->kind);
            r->kind = kiln_xstrdup(kind);
            kiln_xfree(r->list_kind);
            r->list_kind = kiln_xasprintf("%sList", kind);
            dc->discovery_gen++;
        }
        json_t *sn = json_object_get(names, "shortNames");
        json_decref(r->short_names);
        r->short_names = json_is_array(sn) ? json_deep_copy(sn) : json_array();
        json_t *cats = json_object_get(names, "categories");
        json_decref(r->categories);
        r->categories = json_is_array(cats) ? json_deep_copy(cats) : json_array();
        json_decref(r->schema);
        r->schema =
            json_deep_copy(json_object_get(json_object_get(v, "schema"), "openAPIV3Schema"));
        json_decref(r->columns);
        json_t *cols = json_object_get(v, "additionalPrinterColumns");
        r->columns = json_array_size(cols) ? json_deep_copy(cols) : NULL;
        json_t *subs = json_object_get(v, "subresources");
        r->status_sub = json_object_get(subs, "status") != NULL;
        json_t *scale = json_object_get(subs, "scale");
        r->scale_sub = scale != NULL;
        kiln_xfree(r->scale_spec);
        kiln_xfree(r->scale_status);
        kiln_xfree(r->scale_selector);
        r->scale_spec = r->scale_status = r->scale_selector = NULL;
        if (scale) {
            const char *a = json_string_value(json_object_get(scale, "specReplicasPath"));
            const char *b = json_string_value(json_object_get(scale, "statusReplicasPath"));
            const char *c = json_string_value(json_object_get(scale, "labelSelectorPath"));
            r->scale_spec = a ? kiln_xstrdup(a) : NULL;
            r->scale_status = b ? kiln_xstrdup(b) : NULL;
            r->scale_selector = c ? kiln_xstrdup(c) : NULL;
        }
        r->generation = true;
    }
}

void kiln_dc_crd_unserve(kiln_devcluster *dc, const char *crd_name)
{
    for (size_t i = dc->nres; i-- > 0;) {
        kiln_dc_resource *r = dc->res[i];
        if (!r->is_crd || strcmp(r->crd_name, crd_name))
            continue;
        /* Custom resources go with their CRD, each with a DELETED event
         * (the customresourcecleanup finalizer's work, done at once). */
        size_t n = 0;
        kiln_dc_object **objs = kiln_dc_store_sorted(r, &n);
        for (size_t k = 0; k < n; k++) {
            json_t *obj = kiln_dc_store_load(objs[k]);
            objs[k] = NULL;
            kiln_dc_store_delete(dc, r, obj);
            json_decref(obj);
        }
        kiln_xfree(objs);
        kiln_dc_kinds_remove(dc, r);
    }
}

/* ---------------- custom resources ---------------- */

static void prune(const json_t *s, json_t *v, const char *path, json_t *pruned, int depth,
                  bool root)
{
    if (!json_is_object(s) || depth > 64)
        return;
    if (json_is_object(v)) {
        bool keep_unknown =
            json_is_true(json_object_get(s, "x-kubernetes-preserve-unknown-fields"));
        bool embedded = json_is_true(json_object_get(s, "x-kubernetes-embedded-resource"));
        json_t *props = json_object_get(s, "properties");
        json_t *ap = json_object_get(s, "additionalProperties");
        const char *k;
        json_t *val;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, val)
        {
            char p[1024];
            snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", k);
            if ((root || embedded) &&
                (!strcmp(k, "apiVersion") || !strcmp(k, "kind") || !strcmp(k, "metadata")))
                continue;
            json_t *ps = json_object_get(props, k);
            if (ps) {
                prune(ps, val, p, pruned, depth + 1, false);
            } else if (json_is_object(ap)) {
                prune(ap, val, p, pruned, depth + 1, false);
            } else if (!keep_unknown && !json_is_true(ap)) {
                json_array_append_new(pruned, json_string(p));
                json_object_del(v, k);
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            char p[1024];
            snprintf(p, sizeof p, "%s[%zu]", path, i);
            prune(json_object_get(s, "items"), e, p, pruned, depth + 1, false);
        }
    }
}

int kiln_dc_crd_admit(kiln_dc_resource *r, json_t *obj, bool strict, kiln_devcluster_response *resp)
{
    if (!r->schema)
        return 0;
    int rc = 0;
    if (strict) {
        /* fieldValidation=Strict turns fields pruning would drop into a 400
         * (API concepts, "Field validation"); find them on a copy. */
        json_t *copy = json_deep_copy(obj);
        json_t *pruned = json_array();
        prune(r->schema, copy, "", pruned, 0, true);
        if (json_array_size(pruned)) {
            kiln_buf m;
            kiln_buf_init(&m, 65536);
            size_t i;
            json_t *p;
            json_array_foreach(pruned, i, p) kiln_buf_printf(&m, NULL, "%sunknown field \"%s\"",
                                                             i ? ", " : "", json_string_value(p));
            kiln_dc_status(resp, 400, "BadRequest", NULL, "strict decoding error: %s",
                           m.data ? m.data : "");
            kiln_buf_free(&m);
            rc = KILN_EINVAL;
        }
        json_decref(pruned);
        json_decref(copy);
        if (rc < 0)
            return rc;
    }
    /* The API server's order: prune, default, validate (core/schema.h). */
    kiln_schema_prune(obj, r->schema, true);
    kiln_schema_default(obj, r->schema);
    kiln_schema_errors errs = {0};
    if (kiln_schema_validate(obj, r->schema, NULL, &errs) < 0) {
        char q[300];
        snprintf(q, sizeof q, "%s.%s", r->kind, r->group);
        const char *name = kiln_dc_meta_str(obj, "name");
        json_t *list = json_array();
        for (size_t i = 0; i < errs.len && i < 100; i++)
            json_array_append_new(list, json_pack("{s:s,s:s,s:s}", "reason", errs.items[i].reason,
                                                  "message", errs.items[i].message, "field",
                                                  errs.items[i].field));
        char *msg = kiln_schema_errors_format(&errs, q, name ? name : "");
        json_t *d = json_pack("{s:s,s:s,s:s,s:o}", "name", name ? name : "", "group", r->group,
                              "kind", r->kind, "causes", list);
        kiln_dc_status(resp, 422, "Invalid", d, "%s", msg);
        free(msg);
        rc = KILN_EINVAL;
    }
    kiln_schema_errors_free(&errs);
    return rc;
}
