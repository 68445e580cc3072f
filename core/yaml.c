#include "core/yaml.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/json.h"
#include "core/mem.h"
#include "core/utf8.h"

#define DEFAULT_MAX_DEPTH 128
#define DEFAULT_MAX_NODES 4000000
#define DEFAULT_MAX_DOCUMENTS 10000
/* The dumper recurses per level; a document built in memory has no parser
 * bound, and a cyclic json_t would otherwise recurse forever. */
#define MAX_DUMP_DEPTH 1000
/* YAML limits implicit keys to 1024 characters (libyaml enforces it); longer
 * keys are written in explicit "? key" form. */
#define MAX_IMPLICIT_KEY 1000

#define TAG_PREFIX "tag:yaml.org,2002:"

/* ------------------------------------------------------------------------ */
/* Scalar resolution, as go-yaml v2 (under sigs.k8s.io/yaml) resolves plain   */
/* scalars: YAML 1.1 booleans, Go's integer syntax (base prefixes, leading-0  */
/* octal, underscores), floats by the yamlStyleFloat pattern.                 */

typedef enum { R_STR, R_NULL, R_BOOL, R_INT, R_FLOAT, R_BIGINT } rkind;

typedef struct resolved {
    rkind kind;
    bool b;
    long long i;
    double d;
} resolved;

static bool in_list(const char *s, size_t n, const char *const *list)
{
    if (n > 6) /* the longest word in the lists */
        return false;
    for (; *list; list++)
        if (strlen(*list) == n && memcmp(*list, s, n) == 0)
            return true;
    return false;
}

static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 99;
}

/* Go's strconv.ParseInt(s, 0, 64) on s without underscores. Returns 1 for an
 * integer (value in *v), 2 for integer syntax out of int64 range, 0 otherwise. */
static int parse_go_int(const char *s, size_t n, long long *v)
{
    size_t i = 0;
    bool neg = false;
    int base = 10;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
        neg = s[i] == '-';
        i++;
    }
    if (n - i >= 2 && s[i] == '0') {
        char p = (char)tolower((unsigned char)s[i + 1]);
        if (p == 'x' || p == 'o' || p == 'b') {
            base = p == 'x' ? 16 : p == 'o' ? 8 : 2;
            i += 2;
        } else {
            base = 8;
            i += 1;
        }
    }
    if (i >= n)
        return 0;
    unsigned long long mag = 0;
    bool over = false;
    for (; i < n; i++) {
        int d = digit_value(s[i]);
        if (d >= base)
            return 0;
        if (mag > (UINT64_MAX - (unsigned)d) / (unsigned)base)
            over = true;
        else
            mag = mag * (unsigned)base + (unsigned)d;
    }
    if (over)
        return 2;
    if (neg) {
        if (mag > (unsigned long long)INT64_MAX + 1)
            return 2;
        *v = mag == (unsigned long long)INT64_MAX + 1 ? INT64_MIN : -(long long)mag;
    } else {
        if (mag > (unsigned long long)INT64_MAX)
            return 2;
        *v = (long long)mag;
    }
    return 1;
}

/* Advances *i past the decimal digits at s[*i]; false when there are none. */
static bool skip_digits(const char *s, size_t n, size_t *i)
{
    size_t start = *i;
    while (*i < n && isdigit((unsigned char)s[*i]))
        (*i)++;
    return *i > start;
}

/* ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ (go-yaml's yamlStyleFloat) */
static bool yaml_style_float(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    if (i < n && s[i] == '.') {
        i++;
        if (!skip_digits(s, n, &i))
            return false;
    } else {
        if (!skip_digits(s, n, &i))
            return false;
        if (i < n && s[i] == '.') {
            i++;
            skip_digits(s, n, &i);
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (!skip_digits(s, n, &i))
            return false;
    }
    return i == n;
}

/* Go's underscoreOK: underscores only between digits. */
static bool underscore_ok(const char *s, size_t n)
{
    char saw = '^';
    size_t i = 0;
    if (n >= 1 && (s[0] == '-' || s[0] == '+'))
        i = 1;
    for (; i < n; i++) {
        if (isdigit((unsigned char)s[i])) {
            saw = '0';
            continue;
        }
        if (s[i] == '_') {
            if (saw != '0')
                return false;
            saw = '_';
            continue;
        }
        if (saw == '_')
            return false;
        saw = '!';
    }
    return saw != '_';
}

/* strtod over a copy without underscores; false when out of double range
 * (Go's ParseFloat fails then, and go-yaml keeps the scalar a string). */
static bool to_double(const char *s, size_t n, double *d)
{
    char tmp[128];
    char *buf = n < sizeof(tmp) ? tmp : kiln_xmalloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != '_')
            buf[k++] = s[i];
    buf[k] = '\0';
    *d = strtod(buf, NULL);
    if (buf != tmp)
        kiln_xfree(buf);
    return isfinite(*d);
}

static void resolve_plain(const char *s, size_t n, resolved *r)
{
    static const char *const nulls[] = {"~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"y",    "Y",    "yes", "Yes", "YES", "true",
                                        "True", "TRUE", "on",  "On",  "ON",  NULL};
    static const char *const falses[] = {"n",     "N",     "no",  "No",  "NO",  "false",
                                         "False", "FALSE", "off", "Off", "OFF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    static const char *const infs[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
    static const char *const ninfs[] = {"-.inf", "-.Inf", "-.INF", NULL};

    memset(r, 0, sizeof(*r));
    r->kind = R_STR;
    if (n == 0) {
        r->kind = R_NULL;
        return;
    }
    char c = s[0];
    if (!strchr("+-0123456789yYnNtTfFoO~.", c))
        return;
    if (in_list(s, n, nulls)) {
        r->kind = R_NULL;
    } else if (in_list(s, n, trues) || in_list(s, n, falses)) {
        r->kind = R_BOOL;
        r->b = in_list(s, n, trues);
    } else if (in_list(s, n, nans)) {
        r->kind = R_FLOAT;
        r->d = NAN;
    } else if (in_list(s, n, infs) || in_list(s, n, ninfs)) {
        r->kind = R_FLOAT;
        r->d = in_list(s, n, infs) ? INFINITY : -INFINITY;
    } else if (c == '.') {
        /* Go's ParseFloat on the text as written. */
        if (underscore_ok(s, n)) {
            char tmp[128];
            size_t k = 0;
            for (size_t i = 0; i < n && k < sizeof(tmp) - 1; i++)
                if (s[i] != '_')
                    tmp[k++] = s[i];
            if (k < sizeof(tmp) - 1 && yaml_style_float(tmp, k) && to_double(tmp, k, &r->d))
                r->kind = R_FLOAT;
        }
    } else if (isdigit((unsigned char)c) || c == '+' || c == '-') {
        /* go-yaml drops every underscore before trying the number parsers. */
        char tmp[128];
        char *plain = n < sizeof(tmp) ? tmp : kiln_xmalloc(n + 1);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (s[i] != '_')
                plain[k++] = s[i];
        plain[k] = '\0';
        long long v;
        int ik = parse_go_int(plain, k, &v);
        if (ik == 1) {
            r->kind = R_INT;
            r->i = v;
        } else if (ik == 2) {
            r->kind = R_BIGINT;
        } else if (yaml_style_float(plain, k) && to_double(plain, k, &r->d)) {
            r->kind = R_FLOAT;
        }
        if (plain != tmp)
            kiln_xfree(plain);
    }
}

/* ------------------------------------------------------------------------ */
/* Loading                                                                    */

typedef struct anchor {
    json_t *value; /* NULL while its collection is still open */
    size_t nodes;
    size_t height;
} anchor;

typedef struct frame {
    json_t *value; /* the object or array being filled */
    json_t *key;   /* object: the pending key, a string */
    /* object: the pending key as written, when conversion changed it (`y` ->
     * "true"), so a duplicate names what the user typed */
    char key_text[48];
    /* object: the line of each explicit key, in insertion order (jansson keeps
     * it), for "already defined at line N" without a lookup table per map.
     * Only while no merge key was seen; after one, explicit holds them. */
    size_t *lines;
    json_t *explicit; /* object: explicit key -> line, once a merge mixed keys in */
    size_t nlines, lines_cap;
    bool have_key;
    bool key_is_merge;
    yaml_mark_t key_mark;
    size_t anchor; /* index + 1 into loader.anchors; 0 when none */
    size_t nodes_at_start;
    size_t height;
} frame;

typedef struct loader {
    const char *source;
    size_t max_depth, max_nodes, max_documents;
    kiln_err *err;
    frame *stack;
    size_t sp, cap;
    anchor *anchors;
    size_t nanchors, anchors_cap;
    json_t *anchor_names; /* name -> index into anchors */
    size_t nodes;
    size_t alias_nodes; /* of nodes, how many came from expanding aliases */
    json_t *root;
    bool root_empty;
    const char *scalar_text; /* the scalar being added, while on_scalar runs */
    size_t scalar_len;
} loader;

static int fail(loader *L, int code, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(loader *L, int code, yaml_mark_t mark, const char *fmt, ...)
{
    char msg[KILN_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return kiln_err_set(L->err, code, "%s:%zu:%zu: %s", L->source, mark.line + 1, mark.column + 1,
                        msg);
}

static void clear_anchors(loader *L)
{
    for (size_t i = 0; i < L->nanchors; i++)
        json_decref(L->anchors[i].value);
    L->nanchors = 0;
    json_object_clear(L->anchor_names);
}

static void free_frame(frame *f)
{
    json_decref(f->value);
    json_decref(f->explicit);
    json_decref(f->key);
    kiln_xfree(f->lines);
    memset(f, 0, sizeof(*f));
}

static size_t add_anchor(loader *L, const char *name)
{
    if (L->nanchors == L->anchors_cap) {
        L->anchors_cap = L->anchors_cap ? L->anchors_cap * 2 : 16;
        L->anchors = kiln_xrealloc(L->anchors, L->anchors_cap * sizeof(*L->anchors));
    }
    anchor *a = &L->anchors[L->nanchors];
    memset(a, 0, sizeof(*a));
    /* A later anchor of the same name replaces the earlier for later aliases. */
    json_object_set_new(L->anchor_names, name, json_integer((json_int_t)L->nanchors));
    return ++L->nanchors;
}

/* go-yaml formats float map keys with strconv.FormatFloat(f, 'g', -1, 32)
 * and sigs.k8s.io/yaml maps the infinities and NaN to YAML spellings. */
static void format_float_key(char *out, size_t outlen, double d)
{
    if (isnan(d)) {
        snprintf(out, outlen, ".nan");
        return;
    }
    /* Go rounds to the nearest float32 and past its range to infinity; in C
     * converting such a double is undefined, so do it by hand. The bound is
     * FLT_MAX plus half an ulp, where rounding to even goes up. */
    float f = fabs(d) >= 0x1.ffffffp127 ? (float)copysign(INFINITY, d) : (float)d;
    if (isinf(f)) {
        snprintf(out, outlen, f > 0 ? ".inf" : "-.inf");
        return;
    }
    if (f == 0) {
        snprintf(out, outlen, signbit(f) ? "-0" : "0");
        return;
    }
    char e[64];
    for (int p = 1; p <= 9; p++) {
        snprintf(e, sizeof(e), "%.*e", p - 1, (double)f);
        if ((float)strtod(e, NULL) == f)
            break;
    }
    /* e is [-]D[.DDD]e[+-]XX: split into digits and decimal exponent. */
    bool neg = e[0] == '-';
    char digits[32];
    size_t nd = 0;
    const char *p = e + neg;
    for (; *p && *p != 'e'; p++)
        if (isdigit((unsigned char)*p))
            digits[nd++] = *p;
    int x = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    char *o = out;
    size_t left = outlen;
#define EMIT(...)                                                                                  \
    do {                                                                                           \
        int w_ = snprintf(o, left, __VA_ARGS__);                                                   \
        if (w_ > 0 && (size_t)w_ < left) {                                                         \
            o += w_;                                                                               \
            left -= (size_t)w_;                                                                    \
        }                                                                                          \
    } while (0)
    if (neg)
        EMIT("-");
    if (x < -4 || x >= 6) {
        EMIT("%c", digits[0]);
        if (nd > 1)
            EMIT(".%s", digits + 1);
        EMIT("e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
    } else if (x >= 0) {
        for (int i = 0; i <= x; i++)
            EMIT("%c", (size_t)i < nd ? digits[i] : '0');
        if (nd > (size_t)x + 1)
            EMIT(".%s", digits + x + 1);
    } else {
        EMIT("0.");
        for (int i = 0; i < -x - 1; i++)
            EMIT("0");
        EMIT("%s", digits);
    }
#undef EMIT
}

/* Turns a scalar key into the JSON member name sigs.k8s.io/yaml would use. */
static int key_string(loader *L, json_t *v, yaml_mark_t mark, json_t **key)
{
    char tmp[64];
    switch (json_typeof(v)) {
    case JSON_STRING:
        *key = json_incref(v);
        return 0;
    case JSON_INTEGER:
        snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        format_float_key(tmp, sizeof(tmp), json_real_value(v));
        break;
    case JSON_TRUE:
        snprintf(tmp, sizeof(tmp), "true");
        break;
    case JSON_FALSE:
        snprintf(tmp, sizeof(tmp), "false");
        break;
    case JSON_NULL:
        return fail(L, KILN_EINVAL, mark, "a null mapping key is not supported");
    default:
        return fail(L, KILN_EINVAL, mark, "mapping keys must be scalars, found %s",
                    json_is_object(v) ? "a mapping" : "a sequence");
    }
    *key = json_string(tmp);
    return 0;
}

static int check_merge_source(loader *L, const json_t *v, yaml_mark_t mark)
{
    if (json_is_object(v))
        return 0;
    if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (!json_is_object(item))
                break;
        }
        if (i == json_array_size(v))
            return 0;
    }
    return fail(L, KILN_EINVAL, mark, "map merge requires map or sequence of maps as the value");
}

/* Merge keys (<<) as go-yaml v2 applies them, so that kiln reads a file as
 * kubectl does: in document order, each key set by a merge or written after it
 * overrides what was there; in a sequence of maps the earlier map wins. The
 * explicit keys seen so far move to f->explicit so duplicates among them are
 * still found. */
static void apply_merge(frame *f, const json_t *src)
{
    if (!f->explicit) {
        f->explicit = json_object();
        size_t i = 0;
        const char *k;
        size_t klen;
        json_t *val;
        json_object_keylen_foreach(f->value, k, klen, val)
        {
            (void)val;
            json_object_setn_new(f->explicit, k, klen,
                                 json_integer((json_int_t)(i < f->nlines ? f->lines[i] : 0)));
            i++;
        }
    }
    size_t n = json_is_array(src) ? json_array_size(src) : 1;
    for (size_t j = n; j-- > 0;) {
        json_t *m = json_is_array(src) ? json_array_get(src, j) : (json_t *)src;
        const char *k;
        size_t klen;
        json_t *val;
        json_object_keylen_foreach(m, k, klen, val)
        {
            json_object_setn(f->value, k, klen, val);
        }
    }
}

/* The line where key was first defined in f's mapping (the error path only). */
static size_t first_line(const frame *f, const char *key, size_t klen)
{
    if (f->explicit)
        return (size_t)json_integer_value(json_object_getn(f->explicit, key, klen));
    size_t i = 0;
    const char *k;
    size_t kl;
    json_t *v;
    json_object_keylen_foreach(f->value, k, kl, v)
    {
        (void)v;
        if (kl == klen && memcmp(k, key, klen) == 0)
            return i < f->nlines ? f->lines[i] : 0;
        i++;
    }
    return 0;
}

/* Places v (taken) into the open collection, or makes it the document root. */
static int add_value(loader *L, json_t *v, yaml_mark_t mark, size_t height, bool is_merge_key,
                     bool is_empty)
{
    int rc = 0;
    if (L->sp == 0) {
        L->root = v;
        L->root_empty = is_empty;
        return 0;
    }
    frame *f = &L->stack[L->sp - 1];
    if (json_is_array(f->value)) {
        json_array_append_new(f->value, v);
    } else if (!f->have_key) {
        if (is_merge_key) {
            f->key_is_merge = true;
        } else if ((rc = key_string(L, v, mark, &f->key))) {
            goto out;
        }
        f->key_text[0] = '\0';
        if (f->key && L->scalar_text &&
            (json_string_length(f->key) != L->scalar_len ||
             memcmp(json_string_value(f->key), L->scalar_text, L->scalar_len) != 0))
            snprintf(f->key_text, sizeof(f->key_text), " (written %.*s)",
                     (int)(L->scalar_len < 32 ? L->scalar_len : 32), L->scalar_text);
        f->have_key = true;
        f->key_mark = mark;
        json_decref(v);
        return 0;
    } else if (f->key_is_merge) {
        if ((rc = check_merge_source(L, v, f->key_mark)))
            goto out;
        apply_merge(f, v);
        json_decref(v);
    } else {
        const char *key = json_string_value(f->key);
        size_t klen = json_string_length(f->key);
        if (json_object_getn(f->explicit ? f->explicit : f->value, key, klen)) {
            rc = fail(L, KILN_EINVAL, f->key_mark,
                      "mapping key \"%.*s\"%s already defined at line %zu",
                      (int)(klen < 100 ? klen : 100), key, f->key_text, first_line(f, key, klen));
            goto out;
        }
        if (f->nlines == f->lines_cap) {
            f->lines_cap = f->lines_cap ? f->lines_cap * 2 : 8;
            f->lines = kiln_xrealloc(f->lines, f->lines_cap * sizeof(*f->lines));
        }
        f->lines[f->nlines++] = f->key_mark.line + 1;
        if (f->explicit)
            json_object_setn_new(f->explicit, key, klen,
                                 json_integer((json_int_t)f->key_mark.line + 1));
        json_object_setn_new(f->value, key, klen, v);
    }
    v = NULL;
    if (f->key_is_merge || f->key) {
        json_decref(f->key);
        f->key = NULL;
        f->have_key = false;
        f->key_is_merge = false;
    }
    if (height + 1 > f->height)
        f->height = height + 1;
out:
    json_decref(v);
    return rc;
}

static bool tag_is(const char *tag, const char *name)
{
    size_t n = strlen(TAG_PREFIX);
    return tag && strncmp(tag, TAG_PREFIX, n) == 0 && strcmp(tag + n, name) == 0;
}

static const char *short_tag(const char *tag, char *buf, size_t n)
{
    size_t p = strlen(TAG_PREFIX);
    if (strncmp(tag, TAG_PREFIX, p) == 0)
        snprintf(buf, n, "!!%s", tag + p);
    else
        snprintf(buf, n, "%s", tag);
    return buf;
}

static int on_scalar(loader *L, yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    yaml_mark_t mark = ev->start_mark;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    bool is_merge = false, is_empty = false;
    json_t *v = NULL;
    resolved r;
    char tbuf[64];

    if (++L->nodes > L->max_nodes)
        return fail(L, KILN_ELIMIT, mark, "document has more than %zu nodes", L->max_nodes);

    if (tag && strcmp(tag, "!") != 0 && !tag_is(tag, "str")) {
        const char *want = NULL;
        if (tag_is(tag, "int"))
            want = "int";
        else if (tag_is(tag, "float"))
            want = "float";
        else if (tag_is(tag, "bool"))
            want = "bool";
        else if (tag_is(tag, "null"))
            want = "null";
        else if (tag_is(tag, "merge"))
            want = "merge";
        if (!want)
            return fail(L, KILN_EINVAL, mark, "unsupported tag %s on a scalar",
                        short_tag(tag, tbuf, sizeof(tbuf)));
        resolve_plain(s, n, &r);
        bool ok = false;
        if (strcmp(want, "int") == 0)
            ok = r.kind == R_INT || r.kind == R_BIGINT;
        else if (strcmp(want, "float") == 0)
            ok = r.kind == R_FLOAT || r.kind == R_INT || r.kind == R_BIGINT;
        else if (strcmp(want, "bool") == 0)
            ok = r.kind == R_BOOL;
        else if (strcmp(want, "null") == 0)
            ok = r.kind == R_NULL;
        else
            ok = n == 2 && memcmp(s, "<<", 2) == 0;
        if (!ok)
            return fail(L, KILN_EINVAL, mark, "cannot decode \"%.*s\" as %s",
                        (int)(n < 64 ? n : 64), s, short_tag(tag, tbuf, sizeof(tbuf)));
        if (strcmp(want, "float") == 0 && r.kind == R_INT) {
            r.kind = R_FLOAT;
            r.d = (double)r.i;
        }
        is_merge = strcmp(want, "merge") == 0;
    } else if (!tag && plain) {
        resolve_plain(s, n, &r);
        is_merge = n == 2 && memcmp(s, "<<", 2) == 0;
        is_empty = n == 0 && !ev->data.scalar.anchor;
    } else {
        r.kind = R_STR;
    }

    bool in_key =
        L->sp && json_is_object(L->stack[L->sp - 1].value) && !L->stack[L->sp - 1].have_key;
    switch (r.kind) {
    case R_NULL:
        v = json_null();
        break;
    case R_BOOL:
        v = json_boolean(r.b);
        break;
    case R_INT:
        v = json_integer(r.i);
        break;
    case R_BIGINT:
        return fail(L, KILN_EINVAL, mark, "integer %.*s does not fit in 64 bits",
                    (int)(n < 64 ? n : 64), s);
    case R_FLOAT:
        if (!isfinite(r.d)) {
            if (!in_key)
                return fail(L, KILN_EINVAL, mark,
                            "%.*s: infinity and NaN cannot be represented in JSON",
                            (int)(n < 64 ? n : 64), s);
            /* As a key it only names a member; sigs.k8s.io/yaml spells it. */
            format_float_key(tbuf, sizeof(tbuf), r.d);
            v = json_string(tbuf);
        } else {
            v = json_real(r.d);
        }
        break;
    case R_STR:
        v = json_stringn(s, n);
        if (!v)
            return fail(L, KILN_EINVAL, mark, "scalar is not valid UTF-8");
        break;
    }
    if (ev->data.scalar.anchor) {
        size_t idx = add_anchor(L, (const char *)ev->data.scalar.anchor);
        L->anchors[idx - 1].value = json_incref(v);
        L->anchors[idx - 1].nodes = 1;
    }
    L->scalar_text = s;
    L->scalar_len = n;
    int rc = add_value(L, v, mark, 0, is_merge, is_empty);
    L->scalar_text = NULL;
    return rc;
}

/* go-yaml's guard against alias bombs (decode.go, allowedAliasRatio): small
 * documents may be almost all aliases, large ones less and less, so a few
 * hundred bytes cannot make us build millions of nodes before max_nodes. */
static bool excessive_aliasing(size_t nodes, size_t alias_nodes)
{
    const double low = 400000, high = 4000000;
    double allowed;
    if (alias_nodes <= 100 || nodes <= 1000)
        return false;
    if (nodes <= low)
        allowed = 0.99;
    else if (nodes >= high)
        allowed = 0.10;
    else
        allowed = 0.99 - 0.89 * (((double)nodes - low) / (high - low));
    return (double)alias_nodes / (double)nodes > allowed;
}

static int on_alias(loader *L, yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    json_t *idx = json_object_get(L->anchor_names, name);
    if (!idx)
        return fail(L, KILN_EINVAL, ev->start_mark, "unknown anchor \"%s\" referenced", name);
    anchor *a = &L->anchors[json_integer_value(idx)];
    if (!a->value)
        return fail(L, KILN_EINVAL, ev->start_mark, "anchor \"%s\" is used inside itself", name);
    if (a->nodes > L->max_nodes - L->nodes)
        return fail(L, KILN_ELIMIT, ev->start_mark,
                    "aliases expand the document past %zu nodes (alias *%s)", L->max_nodes, name);
    if (L->sp + a->height > L->max_depth)
        return fail(L, KILN_ELIMIT, ev->start_mark,
                    "alias *%s nests the document deeper than %zu levels", name, L->max_depth);
    if (excessive_aliasing(L->nodes + a->nodes, L->alias_nodes + a->nodes))
        return fail(L, KILN_ELIMIT, ev->start_mark,
                    "document contains excessive aliasing (alias *%s)", name);
    L->nodes += a->nodes;
    L->alias_nodes += a->nodes;
    /* A copy, so that callers may edit one occurrence without the others. */
    json_t *v = json_deep_copy(a->value);
    return add_value(L, v, ev->start_mark, a->height, false, false);
}

static int on_start(loader *L, yaml_event_t *ev, bool mapping)
{
    const char *tag = mapping ? (const char *)ev->data.mapping_start.tag
                              : (const char *)ev->data.sequence_start.tag;
    const char *anchor_name = mapping ? (const char *)ev->data.mapping_start.anchor
                                      : (const char *)ev->data.sequence_start.anchor;
    char tbuf[64];
    if (tag && strcmp(tag, "!") != 0 && !tag_is(tag, mapping ? "map" : "seq"))
        return fail(L, KILN_EINVAL, ev->start_mark, "unsupported tag %s on a %s",
                    short_tag(tag, tbuf, sizeof(tbuf)), mapping ? "mapping" : "sequence");
    if (L->sp && json_is_object(L->stack[L->sp - 1].value) && !L->stack[L->sp - 1].have_key)
        return fail(L, KILN_EINVAL, ev->start_mark, "mapping keys must be scalars, found a %s",
                    mapping ? "mapping" : "sequence");
    if (L->sp + 1 > L->max_depth)
        return fail(L, KILN_ELIMIT, ev->start_mark, "nesting deeper than %zu levels", L->max_depth);
    if (++L->nodes > L->max_nodes)
        return fail(L, KILN_ELIMIT, ev->start_mark, "document has more than %zu nodes",
                    L->max_nodes);
    if (L->sp == L->cap) {
        L->cap = L->cap ? L->cap * 2 : 16;
        L->stack = kiln_xrealloc(L->stack, L->cap * sizeof(*L->stack));
    }
    frame *f = &L->stack[L->sp++];
    memset(f, 0, sizeof(*f));
    f->value = mapping ? json_object() : json_array();
    f->nodes_at_start = L->nodes;
    f->height = 1;
    if (anchor_name)
        f->anchor = add_anchor(L, anchor_name);
    return 0;
}

static int on_end(loader *L, yaml_event_t *ev)
{
    frame *f = &L->stack[L->sp - 1];
    json_t *v = f->value;
    f->value = NULL;
    size_t height = f->height;
    if (f->anchor) {
        anchor *a = &L->anchors[f->anchor - 1];
        a->value = json_incref(v);
        a->nodes = L->nodes - f->nodes_at_start + 1;
        a->height = height;
    }
    free_frame(f);
    L->sp--;
    return add_value(L, v, ev->start_mark, height, false, false);
}

/* The byte at a libyaml mark (0-based line, column in characters), or -1. */
static int char_at(const char *text, size_t len, size_t line, size_t column)
{
    size_t i = 0;
    for (size_t l = 0; l < line; l++) {
        const char *nl = memchr(text + i, '\n', len - i);
        if (!nl)
            return -1;
        i = (size_t)(nl - text) + 1;
    }
    for (size_t c = 0; i < len; i++) {
        if (kiln_utf8_is_continuation((unsigned char)text[i]))
            continue; /* a UTF-8 continuation byte is not a character */
        if (c++ == column)
            return (unsigned char)text[i];
    }
    return -1;
}

static int parser_error(loader *L, yaml_parser_t *p, const char *text, size_t len)
{
    const char *problem = p->problem ? p->problem : "syntax error";
    if (p->error == YAML_MEMORY_ERROR)
        return kiln_err_set(L->err, KILN_ENOMEM, "%s: out of memory while parsing", L->source);
    if (p->error == YAML_READER_ERROR) {
        /* The reader decodes ahead of the scanner, so only the byte offset is
         * known; count lines and characters up to it. */
        size_t line = 1, col = 1;
        for (size_t i = 0; i < p->problem_offset && i < len; i++) {
            if (text[i] == '\n') {
                line++;
                col = 1;
            } else if (!kiln_utf8_is_continuation((unsigned char)text[i])) {
                col++;
            }
        }
        return kiln_err_set(L->err, KILN_EINVAL, "%s:%zu:%zu: %s", L->source, line, col, problem);
    }
    /* libyaml's word for a tab where indentation belongs is not helpful. */
    const char *hint = "";
    if (text && char_at(text, len, p->problem_mark.line, p->problem_mark.column) == '\t')
        hint = " (a tab; YAML indents with spaces)";
    if (p->context)
        return kiln_err_set(L->err, KILN_EINVAL, "%s:%zu:%zu: %s%s (%s at %zu:%zu)", L->source,
                            p->problem_mark.line + 1, p->problem_mark.column + 1, problem, hint,
                            p->context, p->context_mark.line + 1, p->context_mark.column + 1);
    return kiln_err_set(L->err, KILN_EINVAL, "%s:%zu:%zu: %s%s", L->source,
                        p->problem_mark.line + 1, p->problem_mark.column + 1, problem, hint);
}

int kiln_yaml_load(json_t **out, const char *text, size_t len, const char *source,
                   const kiln_yaml_limits *limits, kiln_err *err)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    bool have_event = false, done = false;
    size_t ndocs = 0;
    int rc = 0;
    loader L = {0};
    json_t *docs = json_array();

    *out = NULL;
    L.source = source ? source : "<input>";
    L.err = err;
    L.max_depth = limits && limits->max_depth ? limits->max_depth : DEFAULT_MAX_DEPTH;
    L.max_nodes = limits && limits->max_nodes ? limits->max_nodes : DEFAULT_MAX_NODES;
    L.max_documents =
        limits && limits->max_documents ? limits->max_documents : DEFAULT_MAX_DOCUMENTS;
    L.anchor_names = json_object();
    if (!yaml_parser_initialize(&parser)) {
        json_decref(docs);
        json_decref(L.anchor_names);
        return kiln_err_set(err, KILN_ENOMEM, "%s: cannot start the YAML parser", L.source);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)(text ? text : ""),
                                 text ? len : 0);

    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = parser_error(&L, &parser, text, len);
            goto out;
        }
        have_event = true;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++ndocs > L.max_documents) {
                rc = fail(&L, KILN_ELIMIT, ev.start_mark, "more than %zu documents",
                          L.max_documents);
                goto out;
            }
            clear_anchors(&L);
            L.nodes = L.alias_nodes = 0;
            L.root = NULL;
            L.root_empty = false;
            break;
        case YAML_DOCUMENT_END_EVENT:
            /* A document with nothing in it (a trailing "---", only comments)
             * is not a document for Kubernetes tools. */
            if (L.root && !L.root_empty)
                json_array_append(docs, L.root);
            json_decref(L.root);
            L.root = NULL;
            break;
        case YAML_SCALAR_EVENT:
            rc = on_scalar(&L, &ev);
            break;
        case YAML_ALIAS_EVENT:
            rc = on_alias(&L, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            rc = on_start(&L, &ev, false);
            break;
        case YAML_MAPPING_START_EVENT:
            rc = on_start(&L, &ev, true);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            rc = on_end(&L, &ev);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        have_event = false;
        if (rc)
            goto out;
    }
    *out = docs;
    docs = NULL;
out:
    if (have_event)
        yaml_event_delete(&ev);
    yaml_parser_delete(&parser);
    while (L.sp)
        free_frame(&L.stack[--L.sp]);
    kiln_xfree(L.stack);
    clear_anchors(&L);
    kiln_xfree(L.anchors);
    json_decref(L.anchor_names);
    json_decref(L.root);
    json_decref(docs);
    return rc;
}

int kiln_yaml_load_file(json_t **out, const char *path, const kiln_yaml_limits *limits,
                        kiln_err *err)
{
    kiln_buf b;
    kiln_buf_init(&b, 0);
    *out = NULL;
    int rc = kiln_buf_read_file(&b, path, err);
    if (!rc)
        rc = kiln_yaml_load(out, b.data, b.len, strcmp(path, "-") == 0 ? "<stdin>" : path, limits,
                            err);
    kiln_buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Dumping                                                                    */

typedef struct dumper {
    kiln_buf *out;
    kiln_err *err;
} dumper;

static int put(dumper *d, const char *s, size_t n)
{
    return kiln_buf_append(d->out, s, n, d->err);
}

static int puts_(dumper *d, const char *s)
{
    return kiln_buf_append(d->out, s, strlen(s), d->err);
}

static int indent(dumper *d, size_t n)
{
    static const char spaces[] = "                                                                ";
    int rc = 0;
    while (!rc && n) {
        size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;
        rc = put(d, spaces, k);
        n -= k;
    }
    return rc;
}

/* Characters that may appear unescaped in plain and block scalars: libyaml's
 * printable set, less the YAML 1.1 line breaks (NEL, LS, PS) and the BOM. */
static bool printable(uint32_t cp)
{
    if (cp >= 0x20 && cp <= 0x7E)
        return true;
    if (cp == 0x85 || cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF)
        return false;
    return (cp >= 0xA0 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) ||
           (cp >= 0x10000 && cp <= 0x10FFFF);
}

/* True when every character is printable (tab and newline allowed when
 * asked); false also for invalid UTF-8. */
static bool all_printable(const char *s, size_t n, bool allow_tab_nl)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (u[i] >= 0x20 && u[i] < 0x7F) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = kiln_utf8_decode(&cp, s + i, n - i);
        if (!k)
            return false;
        if (!printable(cp) && !(allow_tab_nl && (cp == '\t' || cp == '\n')))
            return false;
        i += k;
    }
    return true;
}

/* Whether s can be written as a plain scalar that reads back as this string. */
static bool plain_ok(const char *s, size_t n)
{
    resolved r;
    if (n == 0)
        return false;
    resolve_plain(s, n, &r);
    if (r.kind != R_STR || (n == 2 && memcmp(s, "<<", 2) == 0))
        return false;
    if (strchr("?:,[]{}#&*!|>'\"%@`", s[0]))
        return false;
    /* "-x" is a plain scalar; "- x" and "-" are sequence entries. */
    if (s[0] == '-' && (n == 1 || s[1] == ' '))
        return false;
    /* Document markers. */
    if (n >= 3 && (memcmp(s, "---", 3) == 0 || memcmp(s, "...", 3) == 0))
        return false;
    if (s[0] == ' ' || s[n - 1] == ' ' || s[n - 1] == ':')
        return false;
    /* ": " would start a value, " #" a comment. */
    for (size_t i = 0; i + 1 < n; i++)
        if ((s[i] == ':' && s[i + 1] == ' ') || (s[i] == ' ' && s[i + 1] == '#'))
            return false;
    return all_printable(s, n, false);
}

/* Literal block style: multi-line text that a "|" or "|-" block holds exactly. */
static bool block_ok(const char *s, size_t n, bool *keep_newline)
{
    if (!memchr(s, '\n', n))
        return false;
    if (n >= 2 && s[n - 1] == '\n' && s[n - 2] == '\n')
        return false;
    /* The first non-empty line fixes the indentation, so it must not start with
     * white space; a line with trailing blanks would not survive editors. */
    size_t i = 0;
    while (i < n && s[i] == '\n')
        i++;
    if (i == n || s[i] == ' ' || s[i] == '\t')
        return false;
    for (size_t k = 0; k < n; k++)
        if ((s[k] == ' ' || s[k] == '\t') && (k + 1 == n || s[k + 1] == '\n'))
            return false;
    if (!all_printable(s, n, true))
        return false;
    *keep_newline = s[n - 1] == '\n';
    return true;
}

static int write_quoted(dumper *d, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    char tmp[256];
    size_t t = 0;
    int rc;
    tmp[t++] = '"';
    for (size_t i = 0; i < n;) {
        if (t > sizeof(tmp) - 16) {
            if ((rc = put(d, tmp, t)))
                return rc;
            t = 0;
        }
        uint32_t cp;
        size_t k = kiln_utf8_decode(&cp, s + i, n - i);
        if (!k)
            return kiln_err_set(d->err, KILN_EINVAL, "yaml: string is not valid UTF-8");
        const char *esc = NULL;
        switch (cp) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        }
        if (esc) {
            memcpy(tmp + t, esc, 2);
            t += 2;
        } else if (cp < 0x10000 && !printable(cp)) {
            tmp[t++] = '\\';
            tmp[t++] = 'u';
            tmp[t++] = hex[(cp >> 12) & 15];
            tmp[t++] = hex[(cp >> 8) & 15];
            tmp[t++] = hex[(cp >> 4) & 15];
            tmp[t++] = hex[cp & 15];
        } else {
            memcpy(tmp + t, s + i, k);
            t += k;
        }
        i += k;
    }
    tmp[t++] = '"';
    return put(d, tmp, t);
}

static int write_string(dumper *d, const char *s, size_t n)
{
    return plain_ok(s, n) ? put(d, s, n) : write_quoted(d, s, n);
}

/* Writes a scalar (not a container, not a block string) without newline. */
static int write_scalar(dumper *d, const json_t *v)
{
    char num[KILN_JSON_REAL_MAX];
    switch (json_typeof(v)) {
    case JSON_NULL:
        return puts_(d, "null");
    case JSON_TRUE:
        return puts_(d, "true");
    case JSON_FALSE:
        return puts_(d, "false");
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return puts_(d, num);
    case JSON_REAL:
        if (!isfinite(json_real_value(v)))
            return kiln_err_set(d->err, KILN_EINVAL, "yaml: cannot write a non-finite number");
        kiln_json_format_real(num, json_real_value(v));
        return puts_(d, num);
    case JSON_STRING:
        return write_string(d, json_string_value(v), json_string_length(v));
    default:
        return kiln_err_set(d->err, KILN_EINVAL, "yaml: unknown value type");
    }
}

static int write_block(dumper *d, const char *s, size_t n, bool keep, size_t ind)
{
    int rc = puts_(d, keep ? "|\n" : "|-\n");
    size_t start = 0;
    /* With "|" the text ends in its single newline; the loop stops there. */
    size_t end = keep ? n - 1 : n;
    while (!rc && start <= end) {
        const char *nl = memchr(s + start, '\n', end - start);
        size_t stop = nl ? (size_t)(nl - s) : end;
        if (stop > start) {
            if (!(rc = indent(d, ind)))
                rc = put(d, s + start, stop - start);
        }
        if (!rc)
            rc = put(d, "\n", 1);
        start = stop + 1;
    }
    return rc;
}

static int write_object(dumper *d, const json_t *obj, size_t ind, bool inline_first, size_t depth);
static int write_array(dumper *d, const json_t *arr, size_t ind, bool inline_first, size_t depth);

/* Writes what follows "key:" or "-" (the cursor is right after the colon or
 * dash): the value, through its final newline. ind is the column of the key or
 * dash. A sequence under a key starts at the key's own column, as kubectl
 * writes it ("containers:\n- name: x"). */
static int write_after(dumper *d, const json_t *v, size_t ind, bool after_dash, size_t depth)
{
    int rc;
    bool keep;
    if (depth > MAX_DUMP_DEPTH)
        return kiln_err_set(d->err, KILN_ELIMIT,
                            "yaml: document nests deeper than %d levels (or is cyclic)",
                            MAX_DUMP_DEPTH);
    if (json_is_object(v) && json_object_size(v)) {
        if (after_dash) {
            if ((rc = put(d, " ", 1)))
                return rc;
            return write_object(d, v, ind + 2, true, depth + 1);
        }
        if ((rc = put(d, "\n", 1)))
            return rc;
        return write_object(d, v, ind + 2, false, depth + 1);
    }
    if (json_is_array(v) && json_array_size(v)) {
        if (after_dash) {
            if ((rc = put(d, " ", 1)))
                return rc;
            return write_array(d, v, ind + 2, true, depth + 1);
        }
        if ((rc = put(d, "\n", 1)))
            return rc;
        return write_array(d, v, ind, false, depth + 1);
    }
    if ((rc = put(d, " ", 1)))
        return rc;
    if (json_is_object(v))
        return puts_(d, "{}\n");
    if (json_is_array(v))
        return puts_(d, "[]\n");
    if (json_is_string(v) && block_ok(json_string_value(v), json_string_length(v), &keep))
        return write_block(d, json_string_value(v), json_string_length(v), keep, ind + 2);
    if ((rc = write_scalar(d, v)))
        return rc;
    return put(d, "\n", 1);
}

static int write_object(dumper *d, const json_t *obj, size_t ind, bool inline_first, size_t depth)
{
    size_t n = 0;
    const char **keys = kiln_json_sorted_keys(&n, obj);
    kiln_buf key;
    int rc = 0;
    kiln_buf_init(&key, 0);
    for (size_t i = 0; i < n; i++) {
        size_t klen = json_object_iter_key_len(json_object_key_to_iter(keys[i]));
        json_t *v = json_object_iter_value(json_object_key_to_iter(keys[i]));
        if (!(i == 0 && inline_first) && (rc = indent(d, ind)))
            goto out;
        /* An escape is at most 6 bytes per input byte, so a short key always
         * fits an implicit key and is written straight out. */
        if (klen <= (MAX_IMPLICIT_KEY - 2) / 6) {
            if ((rc = write_string(d, keys[i], klen)) || (rc = put(d, ":", 1)))
                goto out;
            rc = write_after(d, v, ind, false, depth);
            if (rc)
                goto out;
            continue;
        }
        kiln_buf_reset(&key);
        dumper kd = {&key, d->err};
        if ((rc = write_string(&kd, keys[i], klen)))
            goto out;
        if (key.len <= MAX_IMPLICIT_KEY) {
            if ((rc = put(d, key.data, key.len)) || (rc = put(d, ":", 1)))
                goto out;
            rc = write_after(d, v, ind, false, depth);
        } else {
            /* Explicit key; a sequence value is indented, not at the ':' column. */
            if ((rc = put(d, "? ", 2)) || (rc = put(d, key.data, key.len)) ||
                (rc = put(d, "\n", 1)) || (rc = indent(d, ind)) || (rc = put(d, ":", 1)))
                goto out;
            if (json_is_array(v) && json_array_size(v)) {
                if ((rc = put(d, "\n", 1)))
                    goto out;
                rc = write_array(d, v, ind + 2, false, depth + 1);
            } else {
                rc = write_after(d, v, ind, false, depth);
            }
        }
        if (rc)
            goto out;
    }
out:
    kiln_buf_free(&key);
    kiln_xfree(keys);
    return rc;
}

static int write_array(dumper *d, const json_t *arr, size_t ind, bool inline_first, size_t depth)
{
    int rc = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        if (!(i == 0 && inline_first) && (rc = indent(d, ind)))
            return rc;
        if ((rc = put(d, "-", 1)))
            return rc;
        if ((rc = write_after(d, json_array_get(arr, i), ind, true, depth)))
            return rc;
    }
    return 0;
}

int kiln_yaml_dump(kiln_buf *out, const json_t *doc, kiln_err *err)
{
    dumper d = {out, err};
    bool keep;
    int rc;
    if (!doc)
        return kiln_err_set(err, KILN_EINVAL, "yaml: no document to write");
    if (json_is_object(doc) && json_object_size(doc))
        return write_object(&d, doc, 0, false, 1);
    if (json_is_array(doc) && json_array_size(doc))
        return write_array(&d, doc, 0, false, 1);
    if (json_is_object(doc))
        return puts_(&d, "{}\n");
    if (json_is_array(doc))
        return puts_(&d, "[]\n");
    if (json_is_string(doc) && block_ok(json_string_value(doc), json_string_length(doc), &keep))
        return write_block(&d, json_string_value(doc), json_string_length(doc), keep, 2);
    if ((rc = write_scalar(&d, doc)))
        return rc;
    return puts_(&d, "\n");
}

int kiln_yaml_dump_all(kiln_buf *out, const json_t *docs, kiln_err *err)
{
    if (!json_is_array(docs))
        return kiln_err_set(err, KILN_EINVAL, "yaml: expected an array of documents, got %s",
                            kiln_json_type_name(docs));
    for (size_t i = 0; i < json_array_size(docs); i++) {
        int rc;
        if (i && (rc = kiln_buf_puts(out, "---\n", err)))
            return rc;
        if ((rc = kiln_yaml_dump(out, json_array_get(docs, i), err)))
            return rc;
    }
    return 0;
}
