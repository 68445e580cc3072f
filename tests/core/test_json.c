#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/json.h"
#include "core/mem.h"

static json_t *load_ok(const char *text)
{
    json_t *v = NULL;
    kiln_err err = {0};
    if (kiln_json_load(&v, text, strlen(text), &err))
        fail_msg("load %s: %s", text, err.msg);
    return v;
}

static void load_fails(const char *text, int code, const char *want)
{
    json_t *v = (json_t *)1;
    kiln_err err = {0};
    int rc = kiln_json_load(&v, text, strlen(text), &err);
    if (rc != code || !strstr(err.msg, want))
        fail_msg("%s: got %d \"%s\", want %d containing \"%s\"", text, rc, err.msg, code, want);
    assert_null(v);
}

static char *dump(const json_t *v, int flags)
{
    kiln_buf b;
    kiln_err err = {0};
    kiln_buf_init(&b, 0);
    if (kiln_json_dump(&b, v, flags, &err))
        fail_msg("dump: %s", err.msg);
    return kiln_buf_steal(&b);
}

static void test_json__load_accepts_any_single_value(void **state)
{
    json_t *v = load_ok("  {\"a\": [1, 2.5, \"x\", true, null]}\n");
    assert_true(json_is_object(v));
    assert_true(json_is_integer(json_array_get(json_object_get(v, "a"), 0)));
    assert_true(json_is_real(json_array_get(json_object_get(v, "a"), 1)));
    json_decref(v);
    v = load_ok("42");
    assert_int_equal(json_integer_value(v), 42);
    json_decref(v);
    v = load_ok("\"s\"");
    assert_string_equal(json_string_value(v), "s");
    json_decref(v);
    v = load_ok("9223372036854775807");
    assert_true(json_integer_value(v) == INT64_MAX);
    json_decref(v);
    v = load_ok("-9223372036854775808");
    assert_true(json_integer_value(v) == INT64_MIN);
    json_decref(v);
    v = load_ok("\"a\\u0000b\"");
    assert_int_equal(json_string_length(v), 3);
    json_decref(v);
}

static void test_json__load_rejects_trailing_garbage(void **state)
{
    load_fails("{} x", KILN_EINVAL, "json:1:");
    load_fails("{}{}", KILN_EINVAL, "end of file expected");
    load_fails("1 2", KILN_EINVAL, "end of file expected");
    load_fails("", KILN_EINVAL, "json:");
    load_fails("{\"a\":}", KILN_EINVAL, "json:1:6:");
}

static void test_json__load_rejects_numbers_out_of_range(void **state)
{
    load_fails("9223372036854775808", KILN_EINVAL, "integer does not fit in 64 bits");
    load_fails("{\"a\": -9223372036854775809}", KILN_EINVAL, "integer does not fit in 64 bits");
    load_fails("[123456789012345678901234567890]", KILN_EINVAL, "does not fit in 64 bits");
    load_fails("[1e400]", KILN_EINVAL, "json:1:6: number out of range");
}

static void test_json__load_rejects_duplicate_keys(void **state)
{
    load_fails("{\"a\": 1, \"a\": 2}", KILN_EINVAL, "duplicate object key");
}

static void test_json__load_caps_depth_at_128(void **state)
{
    char deep[300];
    memset(deep, '[', 128);
    memset(deep + 128, ']', 128);
    deep[256] = '\0';
    json_t *v = load_ok(deep);
    json_decref(v);
    memset(deep, '[', 129);
    memset(deep + 129, ']', 129);
    deep[258] = '\0';
    load_fails(deep, KILN_ELIMIT, "nesting deeper than 128 levels");
    char objs[2000] = "";
    for (int i = 0; i < 129; i++)
        strcat(objs, "{\"a\":");
    strcat(objs, "1");
    for (int i = 0; i < 129; i++)
        strcat(objs, "}");
    load_fails(objs, KILN_ELIMIT, "nesting deeper than 128 levels");
}

static void test_json__dump_compact_pretty_sorted(void **state)
{
    json_t *v =
        load_ok("{\"b\": [1, {\"d\": null, \"c\": true}], \"a\": {}, \"e\": [], \"f\": 1.0}");
    char *t = dump(v, 0);
    assert_string_equal(t, "{\"b\":[1,{\"d\":null,\"c\":true}],\"a\":{},\"e\":[],\"f\":1.0}");
    kiln_xfree(t);
    t = dump(v, KILN_JSON_SORTED);
    assert_string_equal(t, "{\"a\":{},\"b\":[1,{\"c\":true,\"d\":null}],\"e\":[],\"f\":1.0}");
    kiln_xfree(t);
    t = dump(v, KILN_JSON_PRETTY | KILN_JSON_SORTED);
    assert_string_equal(t, "{\n"
                           "  \"a\": {},\n"
                           "  \"b\": [\n"
                           "    1,\n"
                           "    {\n"
                           "      \"c\": true,\n"
                           "      \"d\": null\n"
                           "    }\n"
                           "  ],\n"
                           "  \"e\": [],\n"
                           "  \"f\": 1.0\n"
                           "}");
    kiln_xfree(t);
    json_decref(v);
}

static void test_json__reals_keep_a_fraction_and_round_trip(void **state)
{
    static const struct {
        double d;
        const char *text;
    } cases[] = {
        {1.0, "1.0"},
        {0.1, "0.1"},
        {-0.0, "-0.0"},
        {1e300, "1e+300"},
        {1.5e-7, "1.5e-07"},
        {100.0, "100.0"},
        {1e21, "1e+21"},
        {0.3, "0.3"},
        {2.0 / 3.0, "0.6666666666666666"},
        {5e-324, "4.94065645841247e-324"},
        {123456789012.0, "123456789012.0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = json_real(cases[i].d);
        char *t = dump(v, 0);
        if (strcmp(t, cases[i].text) != 0)
            fail_msg("%.17g: got %s, want %s", cases[i].d, t, cases[i].text);
        json_t *back = load_ok(t);
        assert_true(json_is_real(back));
        assert_true(json_real_value(back) == cases[i].d);
        json_decref(back);
        kiln_xfree(t);
        json_decref(v);
    }
}

static void test_json__dump_escapes_strings(void **state)
{
    json_t *v = json_stringn("q\"b\\s/\n\t\r\b\f\x01\x1f\x7f\0caf\xc3\xa9", 20);
    char *t = dump(v, 0);
    assert_string_equal(t, "\"q\\\"b\\\\s/\\n\\t\\r\\b\\f\\u0001\\u001f\x7f\\u0000caf\xc3\xa9\"");
    json_t *back = load_ok(t);
    assert_true(kiln_json_equal(back, v));
    json_decref(back);
    kiln_xfree(t);
    json_decref(v);

    v = json_object();
    json_object_setn_new(v, "k\0ey", 4, json_integer(1));
    t = dump(v, 0);
    assert_string_equal(t, "{\"k\\u0000ey\":1}");
    kiln_xfree(t);
    json_decref(v);
}

static void test_json__dump_respects_the_buffer_bound(void **state)
{
    json_t *v = load_ok("[\"0123456789\", \"0123456789\"]");
    kiln_buf b;
    kiln_err err = {0};
    kiln_buf_init(&b, 10);
    assert_int_equal(kiln_json_dump(&b, v, 0, &err), KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "limit of 10 bytes"));
    kiln_buf_free(&b);
    assert_int_equal(kiln_json_dump(&b, NULL, 0, &err), KILN_EINVAL);
    json_decref(v);
}

static void test_json__canonical_is_compact_and_sorted(void **state)
{
    json_t *a = load_ok("{\"b\": 1, \"a\": [3, {\"z\": 1, \"y\": 2.5}], \"A\": \"x\"}");
    json_t *b = load_ok("{\"A\": \"x\", \"a\": [3, {\"y\": 2.5, \"z\": 1}], \"b\": 1}");
    char *ca = kiln_json_canonical(a), *cb = kiln_json_canonical(b);
    assert_string_equal(ca, "{\"A\":\"x\",\"a\":[3,{\"y\":2.5,\"z\":1}],\"b\":1}");
    assert_string_equal(ca, cb);
    kiln_xfree(ca);
    kiln_xfree(cb);
    json_decref(a);
    json_decref(b);
    assert_null(kiln_json_canonical(NULL));

    /* A cycle cannot be written; canonical says so with NULL. */
    json_t *x = json_array(), *y = json_array();
    json_array_append(x, y);
    json_array_append(y, x);
    assert_null(kiln_json_canonical(x));
    kiln_buf buf;
    kiln_err err = {0};
    kiln_buf_init(&buf, 0);
    assert_int_equal(kiln_json_dump(&buf, x, 0, &err), KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "deeper than 1000 levels"));
    kiln_buf_free(&buf);
    json_array_clear(y);
    json_decref(y);
    json_decref(x);
}

static void test_json__get_path_walks_objects(void **state)
{
    json_t *v = load_ok("{\"metadata\": {\"name\": \"web\", \"labels\": {\"app\": \"x\"}, "
                        "\"n\": 3}, \"list\": [1]}");
    assert_ptr_equal(kiln_json_get_path(v, ""), v);
    assert_string_equal(kiln_json_get_string(v, "metadata.name"), "web");
    assert_string_equal(kiln_json_get_string(v, "metadata.labels.app"), "x");
    assert_true(json_is_object(kiln_json_get_path(v, "metadata.labels")));
    assert_null(kiln_json_get_path(v, "metadata.missing"));
    assert_null(kiln_json_get_path(v, "metadata.name.deeper"));
    assert_null(kiln_json_get_path(v, "list.0"));
    assert_null(kiln_json_get_string(v, "metadata.n"));
    assert_null(kiln_json_get_path(NULL, "a"));
    json_decref(v);
}

static void test_json__equal_keeps_integers_and_reals_apart(void **state)
{
    json_t *i = json_integer(1), *r = json_real(1.0);
    assert_false(kiln_json_equal(i, r));
    json_t *a = load_ok("{\"a\": [1, {\"b\": \"x\"}], \"c\": null}");
    json_t *b = load_ok("{\"c\": null, \"a\": [1, {\"b\": \"x\"}]}");
    json_t *c = load_ok("{\"c\": null, \"a\": [1.0, {\"b\": \"x\"}]}");
    json_t *d = load_ok("{\"c\": null, \"a\": [1, {\"b\": \"x\", \"e\": 1}]}");
    assert_true(kiln_json_equal(a, b));
    assert_false(kiln_json_equal(a, c));
    assert_false(kiln_json_equal(a, d));
    assert_false(kiln_json_equal(a, NULL));
    assert_true(kiln_json_equal(NULL, NULL));
    json_t *s1 = json_stringn("a\0b", 3), *s2 = json_stringn("a\0c", 3);
    assert_false(kiln_json_equal(s1, s2));
    json_decref(s1);
    json_decref(s2);
    json_decref(i);
    json_decref(r);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(d);
}

static void test_json__type_names(void **state)
{
    json_t *v = load_ok("[{}, [], \"s\", 1, 1.5, true, false, null]");
    static const char *const want[] = {"object", "array",   "string",  "integer",
                                       "number", "boolean", "boolean", "null"};
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(kiln_json_type_name(json_array_get(v, i)), want[i]);
    assert_string_equal(kiln_json_type_name(NULL), "null");
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json__load_accepts_any_single_value),
        cmocka_unit_test(test_json__load_rejects_trailing_garbage),
        cmocka_unit_test(test_json__load_rejects_numbers_out_of_range),
        cmocka_unit_test(test_json__load_rejects_duplicate_keys),
        cmocka_unit_test(test_json__load_caps_depth_at_128),
        cmocka_unit_test(test_json__dump_compact_pretty_sorted),
        cmocka_unit_test(test_json__reals_keep_a_fraction_and_round_trip),
        cmocka_unit_test(test_json__dump_escapes_strings),
        cmocka_unit_test(test_json__dump_respects_the_buffer_bound),
        cmocka_unit_test(test_json__canonical_is_compact_and_sorted),
        cmocka_unit_test(test_json__get_path_walks_objects),
        cmocka_unit_test(test_json__equal_keeps_integers_and_reals_apart),
        cmocka_unit_test(test_json__type_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
