#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json.h"
#include "core/mem.h"
#include "core/yaml.h"

/* Loads text and returns the array of documents; fails the test on error. */
static json_t *load_ok(const char *text)
{
    json_t *docs = NULL;
    kiln_err err = {0};
    int rc = kiln_yaml_load(&docs, text, strlen(text), "t.yaml", NULL, &err);
    if (rc)
        fail_msg("load failed: %s\n--- input:\n%s", err.msg, text);
    assert_non_null(docs);
    return docs;
}

/* Loads text, expects code, and checks that the message contains want. */
static void load_fails(const char *text, int code, const char *want)
{
    json_t *docs = (json_t *)1;
    kiln_err err = {0};
    int rc = kiln_yaml_load(&docs, text, strlen(text), "t.yaml", NULL, &err);
    if (rc != code || !strstr(err.msg, want))
        fail_msg("input %s: got %d \"%s\", want %d containing \"%s\"", text, rc, err.msg, code,
                 want);
    assert_null(docs);
    assert_int_equal(err.code, code);
}

/* The value of key v in the single document of "v: <scalar>". */
static json_t *scalar_value(const char *scalar)
{
    char text[256];
    snprintf(text, sizeof(text), "v: %s\n", scalar);
    json_t *docs = load_ok(text);
    assert_int_equal(json_array_size(docs), 1);
    json_t *v = json_incref(json_object_get(json_array_get(docs, 0), "v"));
    if (!v)
        fail_msg("no value for %s", text);
    json_decref(docs);
    return v;
}

static char *dump(const json_t *doc)
{
    kiln_buf b;
    kiln_err err = {0};
    kiln_buf_init(&b, 0);
    if (kiln_yaml_dump(&b, doc, &err))
        fail_msg("dump failed: %s", err.msg);
    return kiln_buf_steal(&b);
}

static void test_yaml__plain_integers_resolve_as_go_yaml_v2(void **state)
{
    static const struct {
        const char *in;
        long long want;
    } cases[] = {
        {"0", 0},
        {"42", 42},
        {"-7", -7},
        {"+1", 1},
        {"-0", 0},
        {"0755", 493},
        {"00", 0},
        {"0x10", 16},
        {"0X1f", 31},
        {"-0x10", -16},
        {"+0x10", 16},
        {"0o17", 15},
        {"0b101", 5},
        {"-0b101", -5},
        {"1_000", 1000},
        {"1__0", 10},
        {"0x_ff", 255},
        {"9223372036854775807", INT64_MAX},
        {"-9223372036854775808", INT64_MIN},
        {"0x7fffffffffffffff", INT64_MAX},
        {"-0x8000000000000000", INT64_MIN},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = scalar_value(cases[i].in);
        if (!json_is_integer(v) || json_integer_value(v) != cases[i].want)
            fail_msg("%s: got %s %lld, want integer %lld", cases[i].in, kiln_json_type_name(v),
                     json_is_integer(v) ? (long long)json_integer_value(v) : 0LL, cases[i].want);
        json_decref(v);
    }
}

static void test_yaml__plain_reals_resolve_as_go_yaml_v2(void **state)
{
    static const struct {
        const char *in;
        double want;
    } cases[] = {
        {"1.0", 1.0},       {"1e3", 1000.0},  {".5", 0.5},    {"-1.5", -1.5},
        {"+.5", 0.5},       {"-.5", -0.5},    {"1.", 1.0},    {"1.e5", 1e5},
        {"2.5E-3", 0.0025}, {"1_0.5", 10.5},  {".5_5", 0.55}, {"08", 8.0},
        {"09.5", 9.5},      {"1e300", 1e300}, {"-0.0", -0.0}, {"99.", 99.0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = scalar_value(cases[i].in);
        if (!json_is_real(v) || json_real_value(v) != cases[i].want)
            fail_msg("%s: got %s %g, want real %g", cases[i].in, kiln_json_type_name(v),
                     json_is_real(v) ? json_real_value(v) : 0.0, cases[i].want);
        json_decref(v);
    }
}

static void test_yaml__plain_booleans_and_nulls(void **state)
{
    static const char *const trues[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
                                        "on",   "On",   "ON",   "y",   "Y"};
    static const char *const falses[] = {"false", "False", "FALSE", "no", "No", "NO",
                                         "off",   "Off",   "OFF",   "n",  "N"};
    static const char *const nulls[] = {"null", "Null", "NULL", "~", ""};
    for (size_t i = 0; i < sizeof(trues) / sizeof(trues[0]); i++) {
        json_t *v = scalar_value(trues[i]);
        if (!json_is_true(v))
            fail_msg("%s: got %s, want true", trues[i], kiln_json_type_name(v));
        json_decref(v);
    }
    for (size_t i = 0; i < sizeof(falses) / sizeof(falses[0]); i++) {
        json_t *v = scalar_value(falses[i]);
        if (!json_is_false(v))
            fail_msg("%s: got %s, want false", falses[i], kiln_json_type_name(v));
        json_decref(v);
    }
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
        json_t *v = scalar_value(nulls[i]);
        if (!json_is_null(v))
            fail_msg("\"%s\": got %s, want null", nulls[i], kiln_json_type_name(v));
        json_decref(v);
    }
}

static void test_yaml__strings_stay_strings(void **state)
{
    static const struct {
        const char *in;
        const char *want;
    } cases[] = {
        {"\"1.0\"", "1.0"},
        {"'0755'", "0755"},
        {"\"true\"", "true"},
        {"'null'", "null"},
        {"'~'", "~"},
        {"\"\"", ""},
        {"''", ""},
        {"1.2.3", "1.2.3"},
        {"0x", "0x"},
        {"0o", "0o"},
        {"1e", "1e"},
        {"0x1p3", "0x1p3"},
        {"_1", "_1"},
        {"+", "+"},
        {"TRue", "TRue"},
        {"yES", "yES"},
        {"nULL", "nULL"},
        {".", "."},
        {".e3", ".e3"},
        {"2024-01-15", "2024-01-15"},
        {"2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"},
        {"1e400", "1e400"},
        {"<<", "<<"},
        {"nginx:1.27", "nginx:1.27"},
        {"\"a\\tb\\u00e9\"", "a\tb\xc3\xa9"},
        {"! 12", "12"},
        {"!!str 123", "123"},
        {"!!str true", "true"},
        {"!<tag:yaml.org,2002:str> 5", "5"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = scalar_value(cases[i].in);
        if (!json_is_string(v) || strcmp(json_string_value(v), cases[i].want) != 0)
            fail_msg("%s: got %s \"%s\", want string \"%s\"", cases[i].in, kiln_json_type_name(v),
                     json_is_string(v) ? json_string_value(v) : "", cases[i].want);
        json_decref(v);
    }
}

static void test_yaml__core_tags_are_honoured(void **state)
{
    json_t *v = scalar_value("!!int \"12\"");
    assert_true(json_is_integer(v));
    assert_int_equal(json_integer_value(v), 12);
    json_decref(v);
    v = scalar_value("!!float 1");
    assert_true(json_is_real(v));
    assert_true(json_real_value(v) == 1.0);
    json_decref(v);
    v = scalar_value("!!float '2.5'");
    assert_true(json_is_real(v));
    assert_true(json_real_value(v) == 2.5);
    json_decref(v);
    v = scalar_value("!!bool \"yes\"");
    assert_true(json_is_true(v));
    json_decref(v);
    v = scalar_value("!!null ''");
    assert_true(json_is_null(v));
    json_decref(v);
    v = scalar_value("!!map {a: 1}");
    assert_true(json_is_object(v));
    assert_int_equal(json_integer_value(json_object_get(v, "a")), 1);
    json_decref(v);
    v = scalar_value("!!seq [1]");
    assert_true(json_is_array(v));
    assert_int_equal(json_array_size(v), 1);
    json_decref(v);
}

static void test_yaml__bad_tags_are_errors(void **state)
{
    load_fails("v: !!binary aGk=\n", KILN_EINVAL, "t.yaml:1:4: unsupported tag !!binary");
    load_fails("v: !custom x\n", KILN_EINVAL, "t.yaml:1:4: unsupported tag !custom");
    load_fails("v: !!int abc\n", KILN_EINVAL, "t.yaml:1:4: cannot decode \"abc\" as !!int");
    load_fails("v: !!bool 1\n", KILN_EINVAL, "cannot decode \"1\" as !!bool");
    load_fails("v: !!null x\n", KILN_EINVAL, "cannot decode \"x\" as !!null");
    load_fails("v: !!map x\n", KILN_EINVAL, "unsupported tag !!map on a scalar");
    load_fails("v: !!seq {a: 1}\n", KILN_EINVAL, "t.yaml:1:4: unsupported tag !!seq on a mapping");
    load_fails("v: !!set {a: 1}\n", KILN_EINVAL, "unsupported tag !!set");
    load_fails("v: !!timestamp 2001-01-01\n", KILN_EINVAL, "unsupported tag !!timestamp");
}

static void test_yaml__infinity_and_nan_are_errors(void **state)
{
    load_fails("v: .inf\n", KILN_EINVAL, "t.yaml:1:4: .inf: infinity and NaN");
    load_fails("a: 1\nv: -.Inf\n", KILN_EINVAL, "t.yaml:2:4: -.Inf");
    load_fails("- .nan\n", KILN_EINVAL, "t.yaml:1:3: .nan");
    load_fails("v: !!float .NAN\n", KILN_EINVAL, "t.yaml:1:4:");
}

static void test_yaml__integers_beyond_64_bits_name_the_place(void **state)
{
    load_fails("a: 1\nb:\n  c: 9223372036854775808\n", KILN_EINVAL,
               "t.yaml:3:6: integer 9223372036854775808 does not fit in 64 bits");
    load_fails("v: -9223372036854775809\n", KILN_EINVAL, "t.yaml:1:4: integer");
    load_fails("v: 0x10000000000000000\n", KILN_EINVAL, "does not fit in 64 bits");
    load_fails("v: 18446744073709551615\n", KILN_EINVAL, "does not fit in 64 bits");
    load_fails("v: 123456789012345678901234567890\n", KILN_EINVAL, "does not fit in 64 bits");
    load_fails("v: !!int 99999999999999999999\n", KILN_EINVAL, "does not fit in 64 bits");
}

static void test_yaml__empty_collections_keep_their_shape(void **state)
{
    json_t *docs = load_ok("a: {}\nb: []\nc:\nd: [{}, []]\n");
    json_t *d = json_array_get(docs, 0);
    assert_true(json_is_object(json_object_get(d, "a")));
    assert_int_equal(json_object_size(json_object_get(d, "a")), 0);
    assert_true(json_is_array(json_object_get(d, "b")));
    assert_true(json_is_null(json_object_get(d, "c")));
    assert_true(json_is_object(json_array_get(json_object_get(d, "d"), 0)));
    assert_true(json_is_array(json_array_get(json_object_get(d, "d"), 1)));
    char *text = dump(d);
    assert_string_equal(text, "a: {}\nb: []\nc: null\nd:\n- {}\n- []\n");
    kiln_xfree(text);
    json_decref(docs);
}

static void test_yaml__duplicate_key_is_an_error(void **state)
{
    load_fails("a: 1\nb: 2\na: 3\n", KILN_EINVAL,
               "t.yaml:3:1: mapping key \"a\" already defined at line 1");
    load_fails("x:\n  k: 1\n  \"k\": 2\n", KILN_EINVAL,
               "t.yaml:3:3: mapping key \"k\" already defined at line 2");
    /* Keys that differ in YAML but convert to the same JSON member. */
    load_fails("1: a\n\"1\": b\n", KILN_EINVAL, "mapping key \"1\" already defined at line 1");
    load_fails("{a: 1, a: 2}\n", KILN_EINVAL, "t.yaml:1:8: mapping key \"a\"");
    /* YAML 1.1 reads y as true; the message says what was typed. */
    load_fails("true: 1\ny: 2\n", KILN_EINVAL,
               "t.yaml:2:1: mapping key \"true\" (written y) already defined at line 1");
    load_fails("0x10: a\n16: b\n", KILN_EINVAL, "mapping key \"16\" already defined at line 1");
}

static void test_yaml__non_string_keys_become_strings(void **state)
{
    json_t *docs = load_ok("1: a\ntrue: x\n0x10: h\n1.5: f\n2.0: g\n1e6: m\n"
                           "no: nn\n0755: o\n.inf: i\n-7: neg\n");
    json_t *d = json_array_get(docs, 0);
    assert_string_equal(kiln_json_get_string(d, "1"), "a");
    assert_string_equal(kiln_json_get_string(d, "true"), "x");
    assert_string_equal(kiln_json_get_string(d, "16"), "h");
    assert_string_equal(json_string_value(json_object_get(d, "1.5")), "f");
    assert_string_equal(kiln_json_get_string(d, "2"), "g");
    assert_string_equal(kiln_json_get_string(d, "1e+06"), "m");
    assert_string_equal(kiln_json_get_string(d, "false"), "nn");
    assert_string_equal(kiln_json_get_string(d, "493"), "o");
    assert_string_equal(json_string_value(json_object_get(d, ".inf")), "i");
    assert_string_equal(kiln_json_get_string(d, "-7"), "neg");
    assert_int_equal(json_object_size(d), 10);
    json_decref(docs);

    /* Float keys as Go's FormatFloat(f, 'g', -1, 32) spells them. */
    docs = load_ok("0.1: a\n1e-5: b\n123456789.0: c\n100000.0: d\n1000000.0: e\n-2.5: f\n"
                   "3.4028235e38: g\n1e39: h\n-1e39: i\n1e-50: j\n");
    d = json_array_get(docs, 0);
    static const char *const fkeys[] = {"0.1",  "1e-05",         "1.2345679e+08", "100000", "1e+06",
                                        "-2.5", "3.4028235e+38", ".inf",          "-.inf",  "0"};
    for (size_t i = 0; i < sizeof(fkeys) / sizeof(fkeys[0]); i++)
        if (!json_object_get(d, fkeys[i])) {
            char *c = kiln_json_canonical(d);
            fail_msg("no key %s in %s", fkeys[i], c);
        }
    json_decref(docs);

    load_fails("~: x\n", KILN_EINVAL, "t.yaml:1:1: a null mapping key is not supported");
    load_fails("? [a]\n: x\n", KILN_EINVAL, "t.yaml:1:3: mapping keys must be scalars");
    load_fails("? {a: 1}\n: x\n", KILN_EINVAL, "mapping keys must be scalars, found a mapping");
    load_fails("base: &b [1]\n*b : x\n", KILN_EINVAL,
               "t.yaml:2:1: mapping keys must be scalars, found a sequence");
}

static void test_yaml__multi_document_skips_empty_documents(void **state)
{
    json_t *docs = load_ok("# leading comment\n---\n# only a comment\n---\na: 1\n---\n---\n"
                           "- x\n--- ~\n---\n...\n---\n");
    assert_int_equal(json_array_size(docs), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(docs, 0), "a")), 1);
    assert_string_equal(json_string_value(json_array_get(json_array_get(docs, 1), 0)), "x");
    /* An explicit null is a document; only empty ones are skipped. */
    assert_true(json_is_null(json_array_get(docs, 2)));
    json_decref(docs);

    docs = load_ok("# nothing but comments\n\n");
    assert_int_equal(json_array_size(docs), 0);
    json_decref(docs);
    docs = load_ok("");
    assert_int_equal(json_array_size(docs), 0);
    json_decref(docs);
}

static void test_yaml__syntax_errors_name_line_and_column(void **state)
{
    load_fails("a:\n\tb: 1\n", KILN_EINVAL,
               "t.yaml:2:1: found character that cannot start any token (a tab; YAML "
               "indents with spaces)");
    load_fails("\xc3\xa9: 1\n\xc3\xa9\xc3\xa9: \xc3\xa9\n\xc3\xa9x: \xff\n", KILN_EINVAL,
               "t.yaml:3:5: invalid leading UTF-8 octet");
    load_fails("a: 1\nb: \"abc\nc: 2\n", KILN_EINVAL,
               "t.yaml:4:1: found unexpected end of stream (while scanning a quoted scalar at "
               "2:4)");
    load_fails("a: [1, 2\nb: 3\n", KILN_EINVAL, "t.yaml:2:2: did not find expected ',' or ']'");
    load_fails("a: b: c\n", KILN_EINVAL, "t.yaml:1:5: mapping values are not allowed");
    load_fails("a: 1\n  b: 2\n", KILN_EINVAL, "t.yaml:2:4:");
    load_fails("a: \xff\n", KILN_EINVAL, "t.yaml:1:4: invalid leading UTF-8 octet");
    load_fails("a: *nope\n", KILN_EINVAL, "t.yaml:1:4: unknown anchor \"nope\"");

    json_t *docs = (json_t *)1;
    kiln_err err = {0};
    assert_int_equal(kiln_yaml_load(&docs, "[", 1, NULL, NULL, &err), KILN_EINVAL);
    assert_non_null(strstr(err.msg, "<input>:"));
    assert_null(docs);
}

static void test_yaml__anchors_aliases_and_merge_keys(void **state)
{
    json_t *docs = load_ok("base: &base {a: 1, b: 2}\n"
                           "other: &other {b: 20, c: 30}\n"
                           "s: &s hello\n"
                           "explicit_first:\n  b: 9\n  <<: *base\n"
                           "merged_first:\n  <<: *base\n  b: 9\n"
                           "list:\n  <<: [*other, *base]\n  d: 4\n"
                           "inline:\n  <<: {x: 1}\n"
                           "copy: *base\n"
                           "str: *s\n"
                           "quoted_merge:\n  \"<<\": not a merge\n");
    json_t *d = json_array_get(docs, 0);
    json_t *want = json_loads("{\"base\":{\"a\":1,\"b\":2},\"other\":{\"b\":20,\"c\":30},"
                              "\"s\":\"hello\","
                              "\"explicit_first\":{\"a\":1,\"b\":2},"
                              "\"merged_first\":{\"a\":1,\"b\":9},"
                              "\"list\":{\"a\":1,\"b\":20,\"c\":30,\"d\":4},"
                              "\"inline\":{\"x\":1},\"copy\":{\"a\":1,\"b\":2},"
                              "\"str\":\"hello\",\"quoted_merge\":{\"<<\":\"not a merge\"}}",
                              0, NULL);
    if (!kiln_json_equal(d, want)) {
        char *got = kiln_json_canonical(d);
        fail_msg("got %s", got);
    }
    /* Each alias is its own copy: editing one leaves the anchor alone. */
    json_object_set_new(json_object_get(d, "copy"), "a", json_integer(100));
    assert_int_equal(json_integer_value(kiln_json_get_path(d, "base.a")), 1);
    json_decref(want);
    json_decref(docs);

    /* Merged keys may be overridden; explicit duplicates are still errors. */
    docs = load_ok("m:\n  a: 1\n  <<: {b: 2, c: 5}\n  b: 3\n");
    want = json_loads("{\"m\":{\"a\":1,\"b\":3,\"c\":5}}", 0, NULL);
    assert_true(kiln_json_equal(json_array_get(docs, 0), want));
    json_decref(want);
    json_decref(docs);
    load_fails("m:\n  a: 1\n  <<: {b: 2}\n  b: 3\n  a: 4\n", KILN_EINVAL,
               "t.yaml:5:3: mapping key \"a\" already defined at line 2");
    load_fails("m:\n  <<: {b: 2}\n  b: 3\n  b: 4\n", KILN_EINVAL,
               "t.yaml:4:3: mapping key \"b\" already defined at line 3");

    load_fails("a: &x 1\nb:\n  <<: *x\n", KILN_EINVAL,
               "t.yaml:3:3: map merge requires map or sequence of maps as the value");
    load_fails("b:\n  <<: [{a: 1}, 2]\n", KILN_EINVAL, "map merge requires map");
    load_fails("a: &x [1, *x]\n", KILN_EINVAL, "t.yaml:1:11: anchor \"x\" is used inside itself");
}

static void test_yaml__alias_bomb_hits_the_limit(void **state)
{
    const char *bomb =
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
        "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
        "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
        "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    load_fails(bomb, KILN_ELIMIT, "excessive aliasing");

    /* With few plain nodes the hard node bound is what stops it. */
    json_t *docs = (json_t *)1;
    kiln_err err = {0};
    kiln_yaml_limits lim = {.max_nodes = 50};
    const char *small = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: [*a, *a, *a, *a, *a, *a]\n";
    assert_int_equal(kiln_yaml_load(&docs, small, strlen(small), "t.yaml", &lim, &err),
                     KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "t.yaml:2:"));
    assert_non_null(strstr(err.msg, "past 50 nodes"));
    assert_null(docs);
    lim.max_nodes = 100;
    assert_int_equal(kiln_yaml_load(&docs, small, strlen(small), "t.yaml", &lim, &err), 0);
    json_decref(docs);

    /* Moderate reuse, as real manifests do it, is fine. */
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_buf_puts(&b, "labels: &l {app: web, tier: frontend, team: a, env: prod}\nitems:\n", NULL);
    for (int i = 0; i < 200; i++)
        kiln_buf_printf(&b, NULL, "- {name: item%d, labels: *l}\n", i);
    docs = load_ok(b.data);
    assert_int_equal(json_array_size(kiln_json_get_path(json_array_get(docs, 0), "items")), 200);
    json_decref(docs);
    kiln_buf_free(&b);
}

static void test_yaml__depth_and_document_limits(void **state)
{
    kiln_buf b;
    kiln_buf_init(&b, 0);
    for (int i = 0; i < 128; i++)
        kiln_buf_puts(&b, "[", NULL);
    for (int i = 0; i < 128; i++)
        kiln_buf_puts(&b, "]", NULL);
    json_t *docs = load_ok(b.data);
    json_decref(docs);
    kiln_buf_reset(&b);
    for (int i = 0; i < 129; i++)
        kiln_buf_puts(&b, "[", NULL);
    for (int i = 0; i < 129; i++)
        kiln_buf_puts(&b, "]", NULL);
    load_fails(b.data, KILN_ELIMIT, "t.yaml:1:129: nesting deeper than 128 levels");

    /* An alias can deepen a document past the bound too. */
    kiln_yaml_limits lim = {.max_depth = 5};
    kiln_err err = {0};
    const char *deep = "a: &a [[[[1]]]]\nb: [[*a]]\n";
    docs = (json_t *)1;
    assert_int_equal(kiln_yaml_load(&docs, deep, strlen(deep), "t.yaml", &lim, &err), KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "t.yaml:2:6: alias *a nests the document deeper than 5"));
    lim.max_depth = 7;
    assert_int_equal(kiln_yaml_load(&docs, deep, strlen(deep), "t.yaml", &lim, &err), 0);
    json_decref(docs);

    kiln_yaml_limits nl = {.max_nodes = 10};
    /* The sequence counts as a node, as each scalar does. */
    const char *ten = "[1, 2, 3, 4, 5, 6, 7, 8, 9]\n";
    assert_int_equal(kiln_yaml_load(&docs, ten, strlen(ten), "t.yaml", &nl, &err), 0);
    json_decref(docs);
    const char *eleven = "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n";
    assert_int_equal(kiln_yaml_load(&docs, eleven, strlen(eleven), "t.yaml", &nl, &err),
                     KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "t.yaml:1:29: document has more than 10 nodes"));

    kiln_yaml_limits dl = {.max_documents = 3};
    const char *four = "a\n---\nb\n---\nc\n---\nd\n";
    assert_int_equal(kiln_yaml_load(&docs, four, strlen(four), "t.yaml", &dl, &err), KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "t.yaml:6:1: more than 3 documents"));
    kiln_buf_free(&b);
}

static void test_yaml__load_file_reads_and_names_the_file(void **state)
{
    char path[] = "/tmp/kiln_test_yaml_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("a: 1\nb: [\n", f);
    fclose(f);
    json_t *docs = (json_t *)1;
    kiln_err err = {0};
    assert_int_equal(kiln_yaml_load_file(&docs, path, NULL, &err), KILN_EINVAL);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, ":3:1:"));
    f = fopen(path, "w");
    fputs("a: 1\n", f);
    fclose(f);
    assert_int_equal(kiln_yaml_load_file(&docs, path, NULL, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(docs, 0), "a")), 1);
    json_decref(docs);
    unlink(path);
    assert_int_equal(kiln_yaml_load_file(&docs, path, NULL, &err), KILN_EIO);
    assert_null(docs);
}

static void test_yaml__dump_writes_kubectl_layout(void **state)
{
    const char *in = "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
                     "\"metadata\":{\"name\":\"web\",\"labels\":{\"app\":\"web\"}},"
                     "\"spec\":{\"replicas\":3,\"template\":{\"spec\":{\"containers\":["
                     "{\"name\":\"c\",\"image\":\"nginx:1.27\",\"args\":[\"--port=80\",\"-v\"],"
                     "\"ports\":[{\"containerPort\":80}],\"env\":[]}],"
                     "\"nodeSelector\":{}}},\"matrix\":[[1,2],[]],\"ratio\":0.5}}";
    json_t *doc = json_loads(in, 0, NULL);
    assert_non_null(doc);
    char *text = dump(doc);
    assert_string_equal(text, "apiVersion: apps/v1\n"
                              "kind: Deployment\n"
                              "metadata:\n"
                              "  labels:\n"
                              "    app: web\n"
                              "  name: web\n"
                              "spec:\n"
                              "  matrix:\n"
                              "  - - 1\n"
                              "    - 2\n"
                              "  - []\n"
                              "  ratio: 0.5\n"
                              "  replicas: 3\n"
                              "  template:\n"
                              "    spec:\n"
                              "      containers:\n"
                              "      - args:\n"
                              "        - --port=80\n"
                              "        - -v\n"
                              "        env: []\n"
                              "        image: nginx:1.27\n"
                              "        name: c\n"
                              "        ports:\n"
                              "        - containerPort: 80\n"
                              "      nodeSelector: {}\n");
    kiln_xfree(text);
    json_decref(doc);
}

static void test_yaml__dump_scalars_at_top_level(void **state)
{
    static const struct {
        const char *json;
        const char *yaml;
    } cases[] = {
        {"null", "null\n"},
        {"true", "true\n"},
        {"false", "false\n"},
        {"1", "1\n"},
        {"-9223372036854775808", "-9223372036854775808\n"},
        {"1.0", "1.0\n"},
        {"0.1", "0.1\n"},
        {"1e300", "1e+300\n"},
        {"-0.0", "-0.0\n"},
        {"1.5e-7", "1.5e-07\n"},
        {"123456789.0", "123456789.0\n"},
        {"\"x\"", "x\n"},
        {"\"\"", "\"\"\n"},
        {"{}", "{}\n"},
        {"[]", "[]\n"},
        {"\"a\\nb\\n\"", "|\n  a\n  b\n"},
        {"\"---\"", "\"---\"\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        char *text = dump(v);
        if (strcmp(text, cases[i].yaml) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].json, text, cases[i].yaml);
        json_t *back = load_ok(text);
        if (!kiln_json_equal(json_array_get(back, 0), v))
            fail_msg("%s does not read back", cases[i].json);
        json_decref(back);
        kiln_xfree(text);
        json_decref(v);
    }
}

static void test_yaml__strings_are_quoted_when_plain_would_change_them(void **state)
{
    static const struct {
        const char *s;
        const char *yaml;
    } cases[] = {
        {"", "\"\""},
        {"true", "\"true\""},
        {"y", "\"y\""},
        {"N", "\"N\""},
        {"no", "\"no\""},
        {"Off", "\"Off\""},
        {"null", "\"null\""},
        {"~", "\"~\""},
        {"0755", "\"0755\""},
        {"08", "\"08\""},
        {"1.0", "\"1.0\""},
        {"1e3", "\"1e3\""},
        {"0x10", "\"0x10\""},
        {"1_000", "\"1_000\""},
        {"+1", "\"+1\""},
        {".5", "\".5\""},
        {".inf", "\".inf\""},
        {"-.Inf", "\"-.Inf\""},
        {".nan", "\".nan\""},
        {"99999999999999999999", "\"99999999999999999999\""},
        {"<<", "\"<<\""},
        {":x", "\":x\""},
        {"- a", "\"- a\""},
        {"-", "\"-\""},
        {"a: b", "\"a: b\""},
        {"a:", "\"a:\""},
        {"a #b", "\"a #b\""},
        {"#x", "\"#x\""},
        {"[", "\"[\""},
        {"]", "\"]\""},
        {"{", "\"{\""},
        {"}", "\"}\""},
        {",", "\",\""},
        {"*a", "\"*a\""},
        {"&a", "\"&a\""},
        {"!x", "\"!x\""},
        {"%x", "\"%x\""},
        {"@x", "\"@x\""},
        {"`x", "\"`x\""},
        {"?x", "\"?x\""},
        {"|", "\"|\""},
        {">", "\">\""},
        {"'q", "\"'q\""},
        {"\"q", "\"\\\"q\""},
        {" lead", "\" lead\""},
        {"trail ", "\"trail \""},
        {"tab\there", "\"tab\\there\""},
        {"bell\x07", "\"bell\\u0007\""},
        {"del\x7f", "\"del\\u007F\""},
        {"nel\xc2\x85", "\"nel\\u0085\""},
        {"ls\xe2\x80\xa8", "\"ls\\u2028\""},
        {"bom\xef\xbb\xbf", "\"bom\\uFEFF\""},
        {"cr\rx", "\"cr\\rx\""},
        {"back\\slash", "back\\slash"},
        {"---", "\"---\""},
        {"...", "\"...\""},
        {"--- x", "\"--- x\""},
        {"2024-01-15", "2024-01-15"},
        {"a#b", "a#b"},
        {"a:b", "a:b"},
        {"-x", "-x"},
        {"--port=80", "--port=80"},
        {"caf\xc3\xa9", "caf\xc3\xa9"},
        {"nginx:1.27", "nginx:1.27"},
        {"hello world", "hello world"},
        {"a, b", "a, b"},
        {"1.2.3", "1.2.3"},
        {"${schema.spec.name}", "${schema.spec.name}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *doc = json_object();
        json_object_set_new(doc, "k", json_string(cases[i].s));
        char *text = dump(doc);
        char want[256];
        snprintf(want, sizeof(want), "k: %s\n", cases[i].yaml);
        if (strcmp(text, want) != 0)
            fail_msg("\"%s\": got \"%s\", want \"%s\"", cases[i].s, text, want);
        json_t *back = load_ok(text);
        if (!kiln_json_equal(json_array_get(back, 0), doc))
            fail_msg("\"%s\" does not read back from \"%s\"", cases[i].s, text);
        json_decref(back);
        kiln_xfree(text);

        /* The same string as a key. */
        json_t *kdoc = json_object();
        json_object_set_new(kdoc, cases[i].s, json_integer(1));
        text = dump(kdoc);
        snprintf(want, sizeof(want), "%s: 1\n", cases[i].yaml);
        if (strcmp(text, want) != 0)
            fail_msg("key \"%s\": got \"%s\", want \"%s\"", cases[i].s, text, want);
        back = load_ok(text);
        if (!kiln_json_equal(json_array_get(back, 0), kdoc))
            fail_msg("key \"%s\" does not read back from \"%s\"", cases[i].s, text);
        json_decref(back);
        kiln_xfree(text);
        json_decref(kdoc);
        json_decref(doc);
    }
}

static void test_yaml__multi_line_strings_use_literal_blocks(void **state)
{
    static const struct {
        const char *s;
        const char *yaml;
    } cases[] = {
        {"a\nb\n", "k: |\n  a\n  b\n"},
        {"a\nb", "k: |-\n  a\n  b\n"},
        {"a\n\nb\n", "k: |\n  a\n\n  b\n"},
        {"\nlead\n", "k: |\n\n  lead\n"},
        {"x\n  indented\n", "k: |\n  x\n    indented\n"},
        {"# not a comment\n- not a list\n", "k: |\n  # not a comment\n  - not a list\n"},
        {"---\n...\n", "k: |\n  ---\n  ...\n"},
        {"tab\tinside\n", "k: |\n  tab\tinside\n"},
        /* Fall back to double quotes. */
        {" a\nb\n", "k: \" a\\nb\\n\"\n"},
        {"a \nb\n", "k: \"a \\nb\\n\"\n"},
        {"a\nb \n", "k: \"a\\nb \\n\"\n"},
        {"a\nb\n\n", "k: \"a\\nb\\n\\n\"\n"},
        {"\n", "k: \"\\n\"\n"},
        {"\n\n", "k: \"\\n\\n\"\n"},
        {"a\r\nb\n", "k: \"a\\r\\nb\\n\"\n"},
        {"a\nb\x01\n", "k: \"a\\nb\\u0001\\n\"\n"},
        {"\tx\ny\n", "k: \"\\tx\\ny\\n\"\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *doc = json_object();
        json_object_set_new(doc, "k", json_string(cases[i].s));
        char *text = dump(doc);
        if (strcmp(text, cases[i].yaml) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, text, cases[i].yaml);
        json_t *back = load_ok(text);
        if (!kiln_json_equal(json_array_get(back, 0), doc))
            fail_msg("case %zu does not read back from \"%s\"", i, text);
        json_decref(back);
        kiln_xfree(text);
        json_decref(doc);
    }

    /* Inside a sequence and a nested mapping, the block is indented under its
     * dash or key. */
    json_t *doc = json_loads("{\"s\":[\"x\\ny\\n\",{\"k\":\"p\\nq\"}]}", 0, NULL);
    char *text = dump(doc);
    assert_string_equal(text, "s:\n- |\n  x\n  y\n- k: |-\n    p\n    q\n");
    json_t *back = load_ok(text);
    assert_true(kiln_json_equal(json_array_get(back, 0), doc));
    json_decref(back);
    kiln_xfree(text);
    json_decref(doc);
}

static void test_yaml__nul_and_long_keys_round_trip(void **state)
{
    json_t *doc = json_object();
    json_object_set_new(doc, "nul", json_stringn("a\0b", 3));
    json_object_setn_new(doc, "k\0ey", 4, json_integer(1));
    char longkey[2001];
    memset(longkey, 'k', 2000);
    longkey[2000] = '\0';
    json_object_set_new(doc, longkey, json_pack("{s:i}", "x", 1));
    longkey[0] = 'l';
    json_object_set_new(doc, longkey, json_pack("[i,i]", 1, 2));
    longkey[0] = 'm';
    json_object_set_new(doc, longkey, json_string("v"));
    char *text = dump(doc);
    assert_non_null(strstr(text, "nul: \"a\\u0000b\"\n"));
    assert_non_null(strstr(text, "? kkkk"));
    json_t *back = load_ok(text);
    if (!kiln_json_equal(json_array_get(back, 0), doc))
        fail_msg("does not read back:\n%.300s", text);
    json_decref(back);
    kiln_xfree(text);
    json_decref(doc);
}

static void test_yaml__dump_is_independent_of_key_order(void **state)
{
    json_t *a = json_object(), *b = json_object();
    const char *keys[] = {"zeta", "alpha", "Beta", "m", "alpha2", "_x", "10", "9"};
    size_t n = sizeof(keys) / sizeof(keys[0]);
    for (size_t i = 0; i < n; i++) {
        json_object_set_new(a, keys[i], json_pack("{s:i,s:i}", "y", (int)i, "x", (int)i));
        json_object_set_new(b, keys[n - 1 - i],
                            json_pack("{s:i,s:i}", "x", (int)(n - 1 - i), "y", (int)(n - 1 - i)));
    }
    char *ta = dump(a), *tb = dump(b);
    assert_string_equal(ta, tb);
    /* Bytewise order: digits, upper case, underscore, lower case. */
    assert_true(strncmp(ta, "\"10\":\n", 6) == 0);
    assert_true(strstr(ta, "\"9\":") < strstr(ta, "Beta:"));
    assert_true(strstr(ta, "Beta:") < strstr(ta, "_x:"));
    assert_true(strstr(ta, "_x:") < strstr(ta, "alpha:"));
    assert_true(strstr(ta, "alpha:") < strstr(ta, "alpha2:"));
    kiln_xfree(ta);
    kiln_xfree(tb);
    json_decref(a);
    json_decref(b);
}

static void test_yaml__dump_all_separates_documents(void **state)
{
    json_t *docs = json_loads("[{\"a\":1},[1],\"s\",null,{}]", 0, NULL);
    kiln_buf b;
    kiln_err err = {0};
    kiln_buf_init(&b, 0);
    assert_int_equal(kiln_yaml_dump_all(&b, docs, &err), 0);
    assert_string_equal(b.data, "a: 1\n---\n- 1\n---\ns\n---\nnull\n---\n{}\n");
    json_t *back = load_ok(b.data);
    assert_true(kiln_json_equal(back, docs));
    json_decref(back);

    kiln_buf_reset(&b);
    json_t *none = json_array();
    assert_int_equal(kiln_yaml_dump_all(&b, none, &err), 0);
    assert_int_equal(b.len, 0);
    json_decref(none);

    json_t *obj = json_object();
    assert_int_equal(kiln_yaml_dump_all(&b, obj, &err), KILN_EINVAL);
    assert_non_null(strstr(err.msg, "expected an array of documents, got object"));
    json_decref(obj);

    /* The output buffer's bound is honoured. */
    kiln_buf small;
    kiln_buf_init(&small, 8);
    assert_int_equal(kiln_yaml_dump_all(&small, docs, &err), KILN_ELIMIT);
    kiln_buf_free(&small);
    kiln_buf_free(&b);
    json_decref(docs);
}

static void test_yaml__dump_rejects_cycles(void **state)
{
    json_t *a = json_array();
    json_t *inner = json_array();
    json_array_append(a, inner);
    json_array_append(inner, a); /* a cycle jansson lets us build */
    kiln_buf b;
    kiln_err err = {0};
    kiln_buf_init(&b, 0);
    assert_int_equal(kiln_yaml_dump(&b, a, &err), KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "deeper than 1000 levels"));
    kiln_buf_free(&b);
    json_array_clear(inner);
    json_decref(inner);
    json_decref(a);
}

/* ---- round-trip property test ------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static const char *const tricky[] = {
    "",
    "true",
    "True",
    "y",
    "Y",
    "n",
    "no",
    "on",
    "OFF",
    "null",
    "~",
    "Null",
    "0755",
    "0x10",
    "1.0",
    "1e3",
    ".5",
    "+1",
    "-1",
    "1_000",
    "08",
    ".inf",
    "-.inf",
    ".nan",
    "<<",
    ":x",
    "- a",
    "-",
    "a: b",
    "a #b",
    "#x",
    "[",
    "]",
    "{",
    "}",
    "*a",
    "&a",
    "!x",
    "%x",
    "@x",
    "`x",
    "?x",
    "|",
    ">",
    "'",
    "\"",
    " lead",
    "trail ",
    "---",
    "...",
    "a\nb",
    "a\nb\n",
    " a\nb\n",
    "a \nb",
    "\n",
    "\t",
    "x\ty",
    "\r\n",
    "caf\xc3\xa9",
    "\xe2\x80\xa8",
    "\xc2\x85",
    "\xef\xbb\xbf",
    "\xf0\x9f\x98\x80",
    "\\",
    "a\\nb",
    "9223372036854775807",
    "9223372036854775808",
    "2024-01-15",
    "--port=80",
    "${x}",
    "k8s.io/name",
    "a,b",
    "1.2.3",
    "0o17",
    "0b1",
    "\x01",
    "\x7f",
    "\xc2\x9f",
    "\xc2\xa0",
    "\xc2\xa0#",
    "a\xc2\xa0#b",
    "\xc2\xa0x",
    "\xef\xbf\xbd",
    "x:",
    "x :y",
    "- ",
    "? ",
    ": ",
    "a\n\nb\n",
};

static json_t *random_string(void)
{
    size_t pool = sizeof(tricky) / sizeof(tricky[0]);
    if (rnd() % 2)
        return json_string(tricky[rnd() % pool]);
    /* Concatenate a few pieces. */
    char buf[256];
    size_t len = 0;
    int parts = 1 + (int)(rnd() % 4);
    for (int i = 0; i < parts; i++) {
        const char *p = tricky[rnd() % pool];
        size_t n = strlen(p);
        if (len + n >= sizeof(buf))
            break;
        memcpy(buf + len, p, n);
        len += n;
    }
    if (rnd() % 8 == 0 && len + 1 < sizeof(buf))
        buf[len++] = '\0'; /* an embedded NUL */
    return json_stringn(buf, len);
}

static json_t *random_value(int depth)
{
    int kind = (int)(rnd() % (depth >= 5 ? 6 : 8));
    switch (kind) {
    case 0:
        return json_null();
    case 1:
        return json_boolean(rnd() % 2);
    case 2: {
        static const long long edge[] = {0, 1, -1, 493, INT64_MAX, INT64_MIN, 1000000};
        if (rnd() % 2)
            return json_integer(edge[rnd() % 7]);
        return json_integer((json_int_t)rnd());
    }
    case 3: {
        static const double edge[] = {0.0, -0.0, 1.0, 0.1, 1e300, -1e-300, 5e-324, 1.5, 1e21};
        if (rnd() % 2)
            return json_real(edge[rnd() % 9]);
        double d;
        do {
            uint64_t bits = rnd();
            memcpy(&d, &bits, sizeof(d));
        } while (!isfinite(d));
        return json_real(d);
    }
    case 4:
    case 5:
        return random_string();
    case 6: {
        json_t *a = json_array();
        int n = (int)(rnd() % 5);
        for (int i = 0; i < n; i++)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        int n = (int)(rnd() % 5);
        for (int i = 0; i < n; i++) {
            json_t *k = random_string();
            json_object_setn_new(o, json_string_value(k), json_string_length(k),
                                 random_value(depth + 1));
            json_decref(k);
        }
        return o;
    }
    }
}

static void test_yaml__load_of_dump_is_identity(void **state)
{
    kiln_buf b;
    kiln_err err = {0};
    kiln_buf_init(&b, 0);
    for (int i = 0; i < 5000; i++) {
        json_t *docs = json_array();
        int n = 1 + (int)(rnd() % 3);
        for (int k = 0; k < n; k++)
            json_array_append_new(docs, random_value(0));
        kiln_buf_reset(&b);
        if (kiln_yaml_dump_all(&b, docs, &err))
            fail_msg("dump failed: %s", err.msg);
        json_t *back = NULL;
        if (kiln_yaml_load(&back, b.data, b.len, "dump", NULL, &err)) {
            char *c = kiln_json_canonical(docs);
            fail_msg("iteration %d: reload failed: %s\n--- json:\n%s\n--- yaml:\n%s", i, err.msg, c,
                     b.data);
        }
        if (!kiln_json_equal(back, docs)) {
            char *c1 = kiln_json_canonical(docs), *c2 = kiln_json_canonical(back);
            fail_msg("iteration %d differs\n--- json:\n%s\n--- back:\n%s\n--- yaml:\n%s", i, c1, c2,
                     b.data);
        }
        /* Dumping is a fixed point too. */
        kiln_buf again;
        kiln_buf_init(&again, 0);
        assert_int_equal(kiln_yaml_dump_all(&again, back, &err), 0);
        assert_string_equal(again.data ? again.data : "", b.data ? b.data : "");
        kiln_buf_free(&again);
        json_decref(back);
        json_decref(docs);
    }
    kiln_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml__plain_integers_resolve_as_go_yaml_v2),
        cmocka_unit_test(test_yaml__plain_reals_resolve_as_go_yaml_v2),
        cmocka_unit_test(test_yaml__plain_booleans_and_nulls),
        cmocka_unit_test(test_yaml__strings_stay_strings),
        cmocka_unit_test(test_yaml__core_tags_are_honoured),
        cmocka_unit_test(test_yaml__bad_tags_are_errors),
        cmocka_unit_test(test_yaml__infinity_and_nan_are_errors),
        cmocka_unit_test(test_yaml__integers_beyond_64_bits_name_the_place),
        cmocka_unit_test(test_yaml__empty_collections_keep_their_shape),
        cmocka_unit_test(test_yaml__duplicate_key_is_an_error),
        cmocka_unit_test(test_yaml__non_string_keys_become_strings),
        cmocka_unit_test(test_yaml__multi_document_skips_empty_documents),
        cmocka_unit_test(test_yaml__syntax_errors_name_line_and_column),
        cmocka_unit_test(test_yaml__anchors_aliases_and_merge_keys),
        cmocka_unit_test(test_yaml__alias_bomb_hits_the_limit),
        cmocka_unit_test(test_yaml__depth_and_document_limits),
        cmocka_unit_test(test_yaml__load_file_reads_and_names_the_file),
        cmocka_unit_test(test_yaml__dump_writes_kubectl_layout),
        cmocka_unit_test(test_yaml__dump_scalars_at_top_level),
        cmocka_unit_test(test_yaml__strings_are_quoted_when_plain_would_change_them),
        cmocka_unit_test(test_yaml__multi_line_strings_use_literal_blocks),
        cmocka_unit_test(test_yaml__nul_and_long_keys_round_trip),
        cmocka_unit_test(test_yaml__dump_is_independent_of_key_order),
        cmocka_unit_test(test_yaml__dump_all_separates_documents),
        cmocka_unit_test(test_yaml__dump_rejects_cycles),
        cmocka_unit_test(test_yaml__load_of_dump_is_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
