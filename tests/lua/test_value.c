/* Tests for lua/value.c: JSON <-> Lua conversion through env_set and eval. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lua/sandbox.h"
#include "lua_test.h"

static kiln_lua *L;
static int env;

static int setup(void **state)
{
    (void)state;
    kiln_lua_limits lim = lt_limits(1000000, 16 << 20);
    lim.max_depth = 8;
    lim.max_items = 100;
    lt_open(&L, &env, &lim, "v");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lt_close(L, env);
    return 0;
}

/* Sets x to the JSON text in, evaluates expr and returns its compact JSON. */
static char *through(const char *in, const char *expr, int *rc, kiln_err *err)
{
    json_error_t jerr;
    json_t *v = json_loads(in, JSON_DECODE_ANY, &jerr);
    assert_non_null(v);
    *rc = kiln_lua_env_set(L, env, "x", v, err);
    json_decref(v);
    if (*rc != 0)
        return NULL;
    int fn = 0;
    json_t *out = NULL;
    assert_int_equal(kiln_lua_compile_expr(L, &fn, expr, "e", err), 0);
    *rc = kiln_lua_eval(L, &out, env, fn, err);
    kiln_lua_release(L, fn);
    if (*rc != 0)
        return NULL;
    char *s = out ? json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("nil");
    json_decref(out);
    return s;
}

static void round_trip(const char *in, const char *want)
{
    int rc = 0;
    kiln_err err = {0};
    char *s = through(in, "x", &rc, &err);
    if (rc != 0)
        fail_msg("%s: %s", in, err.msg);
    if (strcmp(s, want) != 0) {
        print_error("%s -> %s, want %s\n", in, s, want);
        free(s);
        fail();
    }
    free(s);
}

static void test_value__scalars_keep_their_json_type(void **state)
{
    (void)state;
    round_trip("1", "1");
    round_trip("2.0", "2.0");
    round_trip("-0.5", "-0.5");
    round_trip("9007199254740993", "9007199254740993");
    round_trip("-9223372036854775808", "-9223372036854775808");
    round_trip("\"s\\u00e9\"", "\"s\xc3\xa9\"");
    round_trip("true", "true");
    round_trip("null", "nil");
}

static void test_value__containers_keep_their_shape(void **state)
{
    (void)state;
    round_trip("[]", "[]");
    round_trip("{}", "{}");
    round_trip("[[],{},[[]]]", "[[],{},[[]]]");
    round_trip("[1,null,3]", "[1,null,3]");
    round_trip("{\"a\":null}", "{\"a\":null}");
    round_trip("{\"z\":1,\"a\":2,\"m\":{\"y\":1,\"b\":2}}",
               "{\"a\":2,\"m\":{\"b\":2,\"y\":1},\"z\":1}");
    round_trip("{\"1\":\"one\"}", "{\"1\":\"one\"}");
}

static void test_value__types_are_visible_in_lua(void **state)
{
    (void)state;
    int rc;
    kiln_err err = {0};
    char *s = through("{\"i\":1,\"f\":1.0,\"a\":[],\"o\":{},\"n\":[null]}",
                      "{math.type(x.i), math.type(x.f), getmetatable(x.a), getmetatable(x.o), "
                      "x.n[1] == json.null, #x.n}",
                      &rc, &err);
    assert_int_equal(rc, 0);
    assert_string_equal(s, "[\"integer\",\"float\",\"array\",\"object\",true,1]");
    free(s);
}

static void test_value__filling_a_marked_empty_table_keeps_working(void **state)
{
    (void)state;
    int rc;
    kiln_err err = {0};
    char *s =
        through("{\"a\":[]}", "(function() local t = x.a t[1] = 5 return t end)()", &rc, &err);
    assert_int_equal(rc, 0);
    assert_string_equal(s, "[5]");
    free(s);
}

static void test_value__depth_cap_on_the_way_in(void **state)
{
    (void)state;
    int rc;
    kiln_err err = {0};
    char *s = through("[[[[[[[[[[1]]]]]]]]]]", "x", &rc, &err);
    assert_null(s);
    assert_int_equal(rc, KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "nested deeper than 8 levels"));
    assert_non_null(strstr(err.msg, "x:"));
}

static void test_value__item_cap_on_the_way_in(void **state)
{
    (void)state;
    char doc[1024] = "[";
    for (int i = 0; i < 150; i++)
        strcat(doc, i ? ",1" : "1");
    strcat(doc, "]");
    int rc;
    kiln_err err = {0};
    char *s = through(doc, "x", &rc, &err);
    assert_null(s);
    assert_int_equal(rc, KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "more than 100 items"));
}

static void test_value__caps_on_the_way_out(void **state)
{
    (void)state;
    int rc;
    kiln_err err = {0};
    char *s = through("1", "range(1, 150)", &rc, &err);
    assert_null(s);
    assert_int_equal(rc, KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "more than 100 items"));
    s = through("1", "{{{{{{{{{{1}}}}}}}}}}", &rc, &err);
    assert_null(s);
    assert_int_equal(rc, KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "value[0][0][0][0][0][0][0][0]: nested deeper than 8 levels"));
}

static void test_value__mixed_keys_name_the_path(void **state)
{
    (void)state;
    int rc;
    kiln_err err = {0};
    char *s = through("1", "{spec = {ports = {{1, name = 'x'}}}}", &rc, &err);
    assert_null(s);
    assert_int_equal(rc, KILN_EINVAL);
    assert_non_null(
        strstr(err.msg, "value.spec.ports[0]: a table with both string and integer keys"));
    s = through("1", "{[1.5] = 1}", &rc, &err);
    assert_int_equal(rc, KILN_EINVAL);
    assert_non_null(strstr(err.msg, "key of type number"));
    s = through("1", "{['\\xff'] = 1}", &rc, &err);
    assert_int_equal(rc, KILN_EINVAL);
    assert_non_null(strstr(err.msg, "not valid UTF-8"));
}

static void test_value__integers_and_floats_from_lua(void **state)
{
    (void)state;
    int rc;
    kiln_err err = {0};
    char *s = through("1", "{3, 3.0, 2^63, math.mininteger, 10 // 3, 10 / 2}", &rc, &err);
    assert_int_equal(rc, 0);
    assert_string_equal(s, "[3,3.0,9.2233720368547758e18,-9223372036854775808,3,5.0]");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value__scalars_keep_their_json_type),
        cmocka_unit_test(test_value__containers_keep_their_shape),
        cmocka_unit_test(test_value__types_are_visible_in_lua),
        cmocka_unit_test(test_value__filling_a_marked_empty_table_keeps_working),
        cmocka_unit_test(test_value__depth_cap_on_the_way_in),
        cmocka_unit_test(test_value__item_cap_on_the_way_in),
        cmocka_unit_test(test_value__caps_on_the_way_out),
        cmocka_unit_test(test_value__mixed_keys_name_the_path),
        cmocka_unit_test(test_value__integers_and_floats_from_lua),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
