#include "core/json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

/* jansson nests up to 2048 levels; Kubernetes objects never come close to 128,
 * and everything downstream (Lua conversion, YAML output) recurses per level. */
#define MAX_LOAD_DEPTH 128
/* Documents built in memory (by Lua, by merges) are not bounded by a parser;
 * this also stops a cyclic json_t from recursing forever. */
#define MAX_DUMP_DEPTH 1000

static int check_depth(const json_t *v, size_t depth)
{
    if (depth > MAX_LOAD_DEPTH)
        return -1;
    if (json_is_object(v)) {
        const char *k;
        size_t klen;
        json_t *child;
        json_object_keylen_foreach((json_t *)v, k, klen, child)
        {
            (void)k;
            (void)klen;
            if (check_depth(child, depth + 1))
                return -1;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child)
        {
            if (check_depth(child, depth + 1))
                return -1;
        }
    }
    return 0;
}

int kiln_json_load(json_t **out, const char *text, size_t len, kiln_err *err)
{
    *out = NULL;
    if (!text)
        return kiln_err_set(err, KILN_EINVAL, "json: no input");
    json_error_t jerr;
    /* Duplicate keys are rejected, as the YAML reader does: a document whose
     * meaning depends on which duplicate wins should not be hashed or applied.
     * NUL is allowed because Kubernetes strings may hold "\u0000". */
    json_t *doc =
        json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!doc) {
        /* jansson reports integers past int64 instead of rounding them. */
        if (json_error_code(&jerr) == json_error_numeric_overflow)
            return kiln_err_set(err, KILN_EINVAL, "json:%d:%d: %s (%s)", jerr.line, jerr.column,
                                strstr(jerr.text, "integer") ? "integer does not fit in 64 bits"
                                                             : "number out of range",
                                jerr.text);
        return kiln_err_set(err, KILN_EINVAL, "json:%d:%d: %s", jerr.line, jerr.column, jerr.text);
    }
    if (check_depth(doc, 1)) {
        json_decref(doc);
        return kiln_err_set(err, KILN_ELIMIT, "json: nesting deeper than %d levels",
                            MAX_LOAD_DEPTH);
    }
    *out = doc;
    return 0;
}

void kiln_json_format_real(char out[KILN_JSON_REAL_MAX], double d)
{
    /* Shortest of 15, 16, 17 significant digits that reads back exactly; 17
     * always does for a finite double. */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, KILN_JSON_REAL_MAX, "%.*g", prec, d);
        /* A host may have set LC_NUMERIC; JSON and YAML want a dot. */
        for (char *p = out; *p; p++)
            if (*p == ',')
                *p = '.';
        if (strtod(out, NULL) == d)
            break;
    }
    if (!strpbrk(out, ".eEni"))
        strcat(out, ".0");
}

typedef struct writer {
    kiln_buf *out;
    kiln_err *err;
    int flags;
} writer;

static int put(writer *w, const char *s, size_t n)
{
    return kiln_buf_append(w->out, s, n, w->err);
}

int kiln_json_write_string(kiln_buf *out, const char *s, size_t n, kiln_err *err)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[256];
    size_t t = 0;
    int rc;
    tmp[t++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        /* Room for the longest escape (\u00XX) plus the closing quote. */
        if (t > sizeof(tmp) - 8) {
            if ((rc = kiln_buf_append(out, tmp, t, err)))
                return rc;
            t = 0;
        }
        switch (c) {
        case '"':
            tmp[t++] = '\\';
            tmp[t++] = '"';
            break;
        case '\\':
            tmp[t++] = '\\';
            tmp[t++] = '\\';
            break;
        case '\b':
            tmp[t++] = '\\';
            tmp[t++] = 'b';
            break;
        case '\f':
            tmp[t++] = '\\';
            tmp[t++] = 'f';
            break;
        case '\n':
            tmp[t++] = '\\';
            tmp[t++] = 'n';
            break;
        case '\r':
            tmp[t++] = '\\';
            tmp[t++] = 'r';
            break;
        case '\t':
            tmp[t++] = '\\';
            tmp[t++] = 't';
            break;
        default:
            if (c < 0x20) {
                memcpy(tmp + t, "\\u00", 4);
                t += 4;
                tmp[t++] = hex[c >> 4];
                tmp[t++] = hex[c & 15];
            } else {
                tmp[t++] = (char)c;
            }
        }
    }
    tmp[t++] = '"';
    return kiln_buf_append(out, tmp, t, err);
}

static int cmp_keys(const void *a, const void *b)
{
    const char *const *ka = a;
    const char *const *kb = b;
    size_t la = json_object_iter_key_len(json_object_key_to_iter(*ka));
    size_t lb = json_object_iter_key_len(json_object_key_to_iter(*kb));
    int c = memcmp(*ka, *kb, la < lb ? la : lb);
    if (c)
        return c;
    return la < lb ? -1 : la > lb;
}

const char **kiln_json_sorted_keys(size_t *n, const json_t *obj)
{
    size_t count = json_object_size(obj);
    const char **keys = kiln_xmalloc((count ? count : 1) * sizeof(*keys));
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        (void)v;
        keys[i++] = k;
    }
    qsort(keys, i, sizeof(*keys), cmp_keys);
    *n = i;
    return keys;
}

static int newline(writer *w, size_t depth)
{
    static const char spaces[] = "                                ";
    int rc = put(w, "\n", 1);
    size_t n = depth * 2;
    while (!rc && n) {
        size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;
        rc = put(w, spaces, k);
        n -= k;
    }
    return rc;
}

static int write_value(writer *w, const json_t *v, size_t depth)
{
    char num[KILN_JSON_REAL_MAX];
    int rc = 0;
    bool pretty = w->flags & KILN_JSON_PRETTY;
    if (depth > MAX_DUMP_DEPTH)
        return kiln_err_set(w->err, KILN_ELIMIT,
                            "json: document nests deeper than %d levels (or is cyclic)",
                            MAX_DUMP_DEPTH);
    switch (json_typeof(v)) {
    case JSON_NULL:
        return put(w, "null", 4);
    case JSON_TRUE:
        return put(w, "true", 4);
    case JSON_FALSE:
        return put(w, "false", 5);
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return put(w, num, strlen(num));
    case JSON_REAL:
        kiln_json_format_real(num, json_real_value(v));
        return put(w, num, strlen(num));
    case JSON_STRING:
        return kiln_json_write_string(w->out, json_string_value(v), json_string_length(v), w->err);
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (n == 0)
            return put(w, "[]", 2);
        if ((rc = put(w, "[", 1)))
            return rc;
        for (size_t i = 0; i < n; i++) {
            if (i && (rc = put(w, ",", 1)))
                return rc;
            if (pretty && (rc = newline(w, depth + 1)))
                return rc;
            if ((rc = write_value(w, json_array_get(v, i), depth + 1)))
                return rc;
        }
        if (pretty && (rc = newline(w, depth)))
            return rc;
        return put(w, "]", 1);
    }
    case JSON_OBJECT: {
        if (json_object_size(v) == 0)
            return put(w, "{}", 2);
        size_t n = 0;
        const char **keys = NULL;
        if (w->flags & KILN_JSON_SORTED) {
            keys = kiln_json_sorted_keys(&n, v);
        } else {
            /* Insertion order, which jansson keeps. */
            n = json_object_size(v);
            keys = kiln_xmalloc(n * sizeof(*keys));
            size_t i = 0;
            const char *k;
            json_t *child;
            json_object_foreach((json_t *)v, k, child)
            {
                (void)child;
                keys[i++] = k;
            }
        }
        if ((rc = put(w, "{", 1)))
            goto out;
        for (size_t i = 0; i < n; i++) {
            size_t klen = json_object_iter_key_len(json_object_key_to_iter(keys[i]));
            if (i && (rc = put(w, ",", 1)))
                goto out;
            if (pretty && (rc = newline(w, depth + 1)))
                goto out;
            if ((rc = kiln_json_write_string(w->out, keys[i], klen, w->err)))
                goto out;
            if ((rc = put(w, pretty ? ": " : ":", pretty ? 2 : 1)))
                goto out;
            json_t *child = json_object_iter_value(json_object_key_to_iter(keys[i]));
            if ((rc = write_value(w, child, depth + 1)))
                goto out;
        }
        if (pretty && (rc = newline(w, depth)))
            goto out;
        rc = put(w, "}", 1);
    out:
        kiln_xfree(keys);
        return rc;
    }
    }
    return kiln_err_set(w->err, KILN_EINVAL, "json: unknown value type");
}

int kiln_json_dump(kiln_buf *out, const json_t *doc, int flags, kiln_err *err)
{
    if (!doc)
        return kiln_err_set(err, KILN_EINVAL, "json: no document to write");
    writer w = {out, err, flags};
    return write_value(&w, doc, 0);
}

char *kiln_json_canonical(const json_t *doc)
{
    kiln_buf b;
    kiln_buf_init(&b, 0);
    if (kiln_json_dump(&b, doc, KILN_JSON_SORTED, NULL)) {
        kiln_buf_free(&b);
        return NULL;
    }
    return kiln_buf_steal(&b);
}

json_t *kiln_json_get_path(const json_t *doc, const char *path)
{
    json_t *cur = (json_t *)doc;
    const char *p = path;
    if (!cur || !path)
        return NULL;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!json_is_object(cur))
            return NULL;
        cur = json_object_getn(cur, p, n);
        if (!cur)
            return NULL;
        if (!dot)
            break;
        p = dot + 1;
    }
    return cur;
}

const char *kiln_json_get_string(const json_t *doc, const char *path)
{
    json_t *v = kiln_json_get_path(doc, path);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool equal(const json_t *a, const json_t *b, size_t depth)
{
    if (a == b)
        return true;
    if (!a || !b || json_typeof(a) != json_typeof(b) || depth > MAX_DUMP_DEPTH)
        return false;
    switch (json_typeof(a)) {
    case JSON_OBJECT: {
        /* jansson's json_equal looks keys up by C string, so keys holding NUL
         * compare unequal; walk them with their lengths. */
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        size_t klen;
        json_t *va;
        json_object_keylen_foreach((json_t *)a, k, klen, va)
        {
            json_t *vb = json_object_getn(b, k, klen);
            if (!vb || !equal(va, vb, depth + 1))
                return false;
        }
        return true;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!equal(json_array_get(a, i), json_array_get(b, i), depth + 1))
                return false;
        return true;
    }
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_INTEGER:
        return json_integer_value(a) == json_integer_value(b);
    case JSON_REAL:
        return json_real_value(a) == json_real_value(b);
    default:
        /* true, false, null: the type says it all. */
        return true;
    }
}

bool kiln_json_equal(const json_t *a, const json_t *b)
{
    /* Types first, so 1 and 1.0 differ (Kubernetes does not coerce). */
    return equal(a, b, 0);
}

const char *kiln_json_type_name(const json_t *v)
{
    if (!v)
        return "null";
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "null";
}
