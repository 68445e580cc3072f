/* graph/typecheck.c: a template's literal fields against its kind's schema.
 *
 * Lua has no static types, so kiln cannot check what an expression will
 * return; it can check everything else before the first instance exists: a
 * misspelt field (`replicsa`) or a literal of the wrong type (`replicas:
 * "two"`) is an RGD error at compile time, not an apply failure later. The
 * walk follows the structural subset of OpenAPI v3 that CRDs use; $ref,
 * allOf/anyOf/oneOf and x-kubernetes-preserve-unknown-fields accept anything
 * below them.
 */
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/mem.h"
#include "graph/impl.h"

/* At most this many levels of template are walked (documents are capped at
 * 128 anyway). */
#define MAX_DEPTH 128

static bool accepts_anything(const json_t *schema)
{
    return !json_is_object(schema) || json_object_get(schema, "$ref") ||
           json_object_get(schema, "allOf") || json_object_get(schema, "anyOf") ||
           json_object_get(schema, "oneOf") ||
           (json_is_true(json_object_get(schema, "x-kubernetes-preserve-unknown-fields")) &&
            !json_object_get(schema, "properties") && !json_object_get(schema, "type"));
}

static void describe(char *out, size_t n, const json_t *v)
{
    if (json_is_string(v))
        snprintf(out, n, "string \"%.40s%s\"", json_string_value(v),
                 json_string_length(v) > 40 ? "..." : "");
    else if (json_is_integer(v))
        snprintf(out, n, "integer %lld", (long long)json_integer_value(v));
    else
        snprintf(out, n, "%s", kiln_json_type_name(v));
}

static bool type_ok(const char *type, const json_t *v, bool int_or_string)
{
    if (int_or_string)
        return json_is_string(v) || json_is_integer(v);
    if (!type)
        return true;
    if (strcmp(type, "object") == 0)
        return json_is_object(v);
    if (strcmp(type, "array") == 0)
        return json_is_array(v);
    if (strcmp(type, "string") == 0)
        return json_is_string(v);
    if (strcmp(type, "integer") == 0)
        return json_is_integer(v);
    if (strcmp(type, "number") == 0)
        return json_is_number(v);
    if (strcmp(type, "boolean") == 0)
        return json_is_boolean(v);
    return true;
}

static void walk(const json_t *v, const json_t *schema, kiln_buf *path, int depth, kiln_errs *errs)
{
    const char *type = json_string_value(json_object_get(schema, "type"));
    bool int_or_string = json_is_true(json_object_get(schema, "x-kubernetes-int-or-string"));
    size_t len = path->len;

    if (depth > MAX_DEPTH || accepts_anything(schema))
        return;
    if (json_is_string(v) && kiln_tmpl_has_expr(json_string_value(v)))
        return;
    if (json_is_null(v) && json_is_true(json_object_get(schema, "nullable")))
        return;
    if (!type_ok(type, v, int_or_string)) {
        char got[80];
        describe(got, sizeof got, v);
        kiln_errs_add(errs, KILN_EINVAL, "%s: expected %s, got %s", path->data,
                      int_or_string ? "integer or string" : type, got);
        return;
    }
    if (json_is_object(v)) {
        const json_t *props = json_object_get(schema, "properties");
        const json_t *extra = json_object_get(schema, "additionalProperties");
        bool open = json_is_true(extra) ||
                    json_is_true(json_object_get(schema, "x-kubernetes-preserve-unknown-fields"));
        const char *key;
        json_t *child;
        json_object_foreach((json_t *)v, key, child)
        {
            const json_t *cs = json_object_get(props, key);
            if (len)
                kiln_buf_append(path, ".", 1, NULL);
            kiln_buf_puts(path, key, NULL);
            if (cs)
                walk(child, cs, path, depth + 1, errs);
            else if (json_is_object(extra))
                walk(child, extra, path, depth + 1, errs);
            else if (!open && (props || json_is_false(extra)))
                kiln_errs_add(errs, KILN_EINVAL, "%s: unknown field", path->data);
            path->len = len;
            path->data[len] = '\0';
        }
    } else if (json_is_array(v)) {
        const json_t *items = json_object_get(schema, "items");
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child)
        {
            kiln_buf_printf(path, NULL, "[%zu]", i);
            walk(child, items, path, depth + 1, errs);
            path->len = len;
            path->data[len] = '\0';
        }
    }
}

int kiln_typecheck_template(const json_t *v, const json_t *schema, const char *path,
                            kiln_errs *errs)
{
    size_t before = errs->len;
    kiln_buf p;
    kiln_buf_init(&p, KILN_BUF_DEFAULT_LIMIT);
    kiln_buf_puts(&p, path ? path : "", NULL);
    walk(v, schema, &p, 0, errs);
    kiln_buf_free(&p);
    return errs->len > before ? errs->items[before].code : 0;
}
