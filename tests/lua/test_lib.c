/* Tests for kiln's Lua helper library (lua/lib_*.c): exact results. */
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
    lt_open(&L, &env, &lim, "lib");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lt_close(L, env);
    return 0;
}

/* Asserts that expression src renders to the compact, key-sorted JSON want. */
#define EQ(src, want) eq_at(__FILE__, __LINE__, src, want)
static void eq_at(const char *file, int line, const char *src, const char *want)
{
    int fn = 0;
    json_t *out = NULL;
    kiln_err err = {0};
    if (kiln_lua_compile_expr(L, &fn, src, "e", &err) != 0 ||
        kiln_lua_eval(L, &out, env, fn, &err) != 0) {
        kiln_lua_release(L, fn);
        print_error("%s:%d: %s: %s\n", file, line, src, err.msg);
        fail();
    }
    kiln_lua_release(L, fn);
    char *s = out ? json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    const char *got = s ? s : "nil";
    if (strcmp(got, want) != 0) {
        print_error("%s:%d: %s\n  got:  %s\n  want: %s\n", file, line, src, got, want);
        free(s);
        json_decref(out);
        fail();
    }
    free(s);
    json_decref(out);
}

/* Asserts that src fails with code and a message containing part. */
#define FAILS(src, code, part) fails_at(__FILE__, __LINE__, src, code, part)
static void fails_at(const char *file, int line, const char *src, int code, const char *part)
{
    int fn = 0;
    json_t *out = NULL;
    kiln_err err = {0};
    int rc = kiln_lua_compile_expr(L, &fn, src, "e", &err);
    if (rc == 0)
        rc = kiln_lua_eval(L, &out, env, fn, &err);
    kiln_lua_release(L, fn);
    json_decref(out);
    if (rc != code || strstr(err.msg, part) == NULL) {
        print_error("%s:%d: %s\n  got %d \"%s\", want %d with \"%s\"\n", file, line, src, rc,
                    err.msg, code, part);
        fail();
    }
}

static void test_lib__range_is_inclusive_like_numeric_for(void **state)
{
    (void)state;
    EQ("range(1, 3)", "[1,2,3]");
    EQ("range(0, 10, 5)", "[0,5,10]");
    EQ("range(3, 1, -1)", "[3,2,1]");
    EQ("range(3, 1)", "[]");
    EQ("range(2, 2)", "[2]");
    FAILS("range(1, 2000000)", KILN_ESCRIPT, "at most 1000000 elements");
    FAILS("range(1, 3, 0)", KILN_ESCRIPT, "step must not be zero");
    FAILS("range(1, 'x')", KILN_ESCRIPT, "number expected");
}

static void test_lib__array_and_object_pin_empty_shapes(void **state)
{
    (void)state;
    EQ("array()", "[]");
    EQ("object()", "{}");
    EQ("{}", "{}");
    EQ("array({1, 2})", "[1,2]");
    EQ("object({a = 1})", "{\"a\":1}");
    EQ("getmetatable(array())", "\"array\"");
    FAILS("object({1, 2})", KILN_EINVAL, "object() with integer keys");
    FAILS("array({a = 1})", KILN_EINVAL, "array() with non-sequence keys");
    FAILS("array(setmetatable({}, {}))", KILN_ESCRIPT, "already has a metatable");
}

static void test_lib__k8s_object_and_labels(void **state)
{
    (void)state;
    EQ("k8s.object('v1', 'ConfigMap', 'cfg')",
       "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cfg\"}}");
    EQ("k8s.object('apps/v1', 'Deployment', 'web', 'prod').metadata",
       "{\"name\":\"web\",\"namespace\":\"prod\"}");
    EQ("k8s.merge_labels({a = '1', b = '1'}, nil, {b = '2'})", "{\"a\":\"1\",\"b\":\"2\"}");
    EQ("k8s.merge_labels()", "{}");
    EQ("k8s.deep_merge({a = {x = 1, y = {1, 2}}, b = 1}, nil, {a = {y = {3}, z = true}, c = 2})",
       "{\"a\":{\"x\":1,\"y\":[3],\"z\":true},\"b\":1,\"c\":2}");
    EQ("k8s.deep_merge({a = 1}, {a = {b = 2}})", "{\"a\":{\"b\":2}}");
    EQ("k8s.deep_merge({a = {b = 2}}, {a = 'x'})", "{\"a\":\"x\"}");
    EQ("(function() local base = {a = {b = 1}} k8s.deep_merge(base, {a = {b = 2}}) "
       "return base end)()",
       "{\"a\":{\"b\":1}}");
    EQ("k8s.deep_merge()", "{}");
    FAILS("k8s.object('v1', 'ConfigMap')", KILN_ESCRIPT, "bad argument #3");
}

static void test_lib__k8s_names_are_sanitised(void **state)
{
    (void)state;
    EQ("k8s.name('My_App', 'Web', 3)", "\"my-app-web-3\"");
    EQ("k8s.name('--a..b__c--')", "\"a.b-c\"");
    EQ("k8s.name('a.-b', 'c-.d')", "\"a.b-c.d\"");
    EQ("k8s.name('llama.3', nil, 'x')", "\"llama.3-x\"");
    EQ("k8s.dns_label('Llama.3 70B')", "\"llama-3-70b\"");
    EQ("#k8s.name(string.rep('a', 300))", "253");
    /* fnv1a64("a" x 300) & 0xffffffff == 0xa7a17e21 */
    EQ("k8s.name(string.rep('a', 300)):sub(244)", "\"a-a7a17e21\"");
    EQ("#k8s.dns_label(string.rep('ab', 40))", "63");
    EQ("k8s.dns_label(string.rep('ab', 40)) == k8s.dns_label(string.rep('ab', 40))", "true");
    EQ("k8s.dns_label(string.rep('ab', 40)) ~= k8s.dns_label(string.rep('ab', 40) .. 'c')", "true");
    EQ("k8s.label_value('Hello World!')", "\"Hello-World\"");
    EQ("k8s.label_value('_a.b_')", "\"a.b\"");
    EQ("k8s.label_value('')", "\"\"");
    EQ("#k8s.label_value(string.rep('x', 100))", "63");
    FAILS("k8s.name('---')", KILN_ESCRIPT, "no valid characters");
    FAILS("k8s.name({})", KILN_ESCRIPT, "must be a string or number");
}

static void test_lib__k8s_conditions(void **state)
{
    (void)state;
    const char *obj = "{status = {conditions = {{type = 'Available', status = 'True'}, "
                      "{type = 'Progressing', status = 'False', reason = 'X'}}}}";
    char src[512];
    snprintf(src, sizeof src, "k8s.has_condition(%s, 'Available')", obj);
    EQ(src, "true");
    snprintf(src, sizeof src, "k8s.has_condition(%s, 'Progressing')", obj);
    EQ(src, "false");
    snprintf(src, sizeof src, "k8s.has_condition(%s, 'Progressing', 'False')", obj);
    EQ(src, "true");
    snprintf(src, sizeof src, "k8s.condition(%s, 'Progressing').reason", obj);
    EQ(src, "\"X\"");
    snprintf(src, sizeof src, "k8s.condition(%s, 'Missing')", obj);
    EQ(src, "nil");
    EQ("k8s.has_condition(nil, 'Ready')", "false");
    EQ("k8s.has_condition({status = {}}, 'Ready')", "false");
}

static void test_lib__quantities(void **state)
{
    (void)state;
    EQ("quantity.parse('500m')", "0.5");
    EQ("quantity.parse('1Gi')", "1073741824");
    EQ("quantity.parse('1k')", "1000");
    EQ("quantity.parse('1M')", "1000000");
    EQ("quantity.parse('1e3')", "1000");
    EQ("quantity.parse('1.5')", "1.5");
    EQ("quantity.parse('2')", "2");
    EQ("quantity.parse('1.5Gi')", "1610612736");
    EQ("quantity.parse('-2Ki')", "-2048");
    EQ("quantity.parse('1E')", "1000000000000000000");
    EQ("k8s.quantity('250m')", "0.25");
    EQ("quantity.cmp('1Gi', '1G')", "1");
    EQ("quantity.cmp('1000m', '1')", "0");
    EQ("quantity.cmp('100Mi', '1Gi')", "-1");
    EQ("quantity.add('500m', '1.5')", "2");
    EQ("quantity.add('1Gi', 1)", "1073741825");
    FAILS("quantity.parse('1Gb')", KILN_ESCRIPT, "invalid quantity \"1Gb\"");
    FAILS("quantity.parse('')", KILN_ESCRIPT, "invalid quantity");
    FAILS("quantity.parse('Gi')", KILN_ESCRIPT, "invalid quantity");
}

static void test_lib__json_encode_is_canonical(void **state)
{
    (void)state;
    EQ("json.encode({b = 1, a = {2.0, 'x', true}, c = json.null})",
       "\"{\\\"a\\\":[2.0,\\\"x\\\",true],\\\"b\\\":1,\\\"c\\\":null}\"");
    EQ("json.encode(array())", "\"[]\"");
    EQ("json.encode({})", "\"{}\"");
    EQ("json.encode(nil)", "\"null\"");
    EQ("json.encode('a\"b')", "\"\\\"a\\\\\\\"b\\\"\"");
    FAILS("json.encode({f = print or function() end})", KILN_ESCRIPT,
          "value.f: a function cannot become JSON");
}

static void test_lib__json_decode(void **state)
{
    (void)state;
    EQ("json.decode('{\"a\":[1,2.5,null,[],{}]}')", "{\"a\":[1,2.5,null,[],{}]}");
    EQ("json.decode('{\"a\":[1,null]}').a[2] == json.null", "true");
    EQ("math.type(json.decode('3'))", "\"integer\"");
    EQ("json.decode('null')", "nil");
    FAILS("json.decode('{')", KILN_ESCRIPT, "json.decode:");
    FAILS("json.decode('{\"a\":1,\"a\":2}')", KILN_ESCRIPT, "duplicate");
}

static void test_lib__str(void **state)
{
    (void)state;
    EQ("str.split('a.b..c', '.')", "[\"a\",\"b\",\"\",\"c\"]");
    EQ("str.split('abc', ', ')", "[\"abc\"]");
    EQ("str.join({'a', 1, 'b'}, '-')", "\"a-1-b\"");
    EQ("str.join({}, '-')", "\"\"");
    EQ("str.trim('  a b \\n')", "\"a b\"");
    EQ("{str.starts_with('kiln', 'ki'), str.ends_with('kiln', 'ln'), str.contains('a.b', '.'), "
       "str.contains('ab', '.')}",
       "[true,true,true,false]");
    EQ("str.replace('a.b.c', '.', '%')", "\"a%b%c\"");
    EQ("str.lower('AbC') .. str.upper('AbC')", "\"abcABC\"");
    EQ("str.pad_left('7', 3, '0') .. str.pad_left('1234', 3)", "\"0071234\"");
    EQ("str.truncate('abcdef', 3) .. str.truncate('ab', 3)", "\"abcab\"");
    EQ("str.format('%s=%d', 'n', 3)", "\"n=3\"");
    EQ("str.lines('a\\r\\nb\\n\\nc\\n')", "[\"a\",\"b\",\"\",\"c\"]");
    EQ("str.lines('')", "[]");
    FAILS("str.split('a', '')", KILN_ESCRIPT, "separator must not be empty");
    FAILS("str.join({{}}, ',')", KILN_ESCRIPT, "item 1 is a table");
    FAILS("str.pad_left('x', 1e12)", KILN_ELIMIT, "memory limit");
}

static void test_lib__list(void **state)
{
    (void)state;
    EQ("list.map({1, 2, 3}, function(v, i) return v * 10 + i end)", "[11,22,33]");
    EQ("list.map({}, function(v) return v end)", "[]");
    EQ("list.filter({1, 2, 3, 4}, function(v) return v % 2 == 0 end)", "[2,4]");
    EQ("list.filter({1}, function() return false end)", "[]");
    EQ("{list.contains({'a', 'b'}, 'b'), list.contains({1}, 1.0), list.contains({}, 1)}",
       "[true,true,false]");
    EQ("{list.index_of({'a', 'b'}, 'b'), list.index_of({'a'}, 'z')}", "[2]");
    EQ("list.concat({1}, {}, {2, 3})", "[1,2,3]");
    EQ("list.flatten({1, {2, {3}}, array(), {4}})", "[1,2,[3],4]");
    EQ("list.flatten({1, {2, {3}}}, 2)", "[1,2,3]");
    EQ("list.unique({3, 1, 3, 'a', 1, 'a'})", "[3,1,\"a\"]");
    EQ("list.sort({3, 1, 2})", "[1,2,3]");
    EQ("list.sort({'b', 'a', 'C'})", "[\"C\",\"a\",\"b\"]");
    EQ("list.sort({{n = 'x', k = 2}, {n = 'y', k = 1}, {n = 'z', k = 2}, {n = 'w', k = 1}}, "
       "function(v) return v.k end)",
       "[{\"k\":1,\"n\":\"y\"},{\"k\":1,\"n\":\"w\"},{\"k\":2,\"n\":\"x\"},{\"k\":2,\"n\":\"z\"}]");
    EQ("list.keys({b = 1, a = 2, [3] = 0})", "[3,\"a\",\"b\"]");
    EQ("list.values({b = 1, a = 2})", "[2,1]");
    EQ("list.keys({})", "[]");
    EQ("{list.len({1, 2}), list.len({a = 1, b = 2, c = 3}), list.len({})}", "[2,3,0]");
    EQ("{list.sum({1, 2, 3}), list.sum({1, 0.5}), list.sum({})}", "[6,1.5,0]");
    EQ("{list.min({3, 1, 2}), list.max({3, 1, 2}), list.max({'a', 'c', 'b'})}", "[1,3,\"c\"]");
    EQ("list.min({})", "nil");
    EQ("list.reverse({1, 2, 3})", "[3,2,1]");
    EQ("list.slice({1, 2, 3, 4}, 2, 3)", "[2,3]");
    EQ("list.slice({1, 2, 3, 4}, -2)", "[3,4]");
    EQ("list.slice({1, 2, 3, 4}, 3, 2)", "[]");
    FAILS("list.sort({1, 'a', {}})", KILN_ESCRIPT, "attempt to compare");
    FAILS("list.map({1}, function() return nil end)", KILN_ESCRIPT, "returned nil for item 1");
    FAILS("list.sum({1, 'x'})", KILN_ESCRIPT, "item 2 is a string");
}

static void test_lib__hash(void **state)
{
    (void)state;
    EQ("hash.sha256('abc')",
       "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"");
    EQ("hash.fnv64a('')", "\"cbf29ce484222325\"");
    EQ("hash.fnv64a('a')", "\"af63dc4c8601ec8c\"");
    EQ("hash.short('abc')", "\"ba7816bf\"");
    EQ("hash.short('abc', 4)", "\"ba78\"");
    FAILS("hash.short('abc', 65)", KILN_ESCRIPT, "between 1 and 64");
}

static void test_lib__b64(void **state)
{
    (void)state;
    EQ("{b64.encode(''), b64.encode('f'), b64.encode('fo'), b64.encode('foo'), "
       "b64.encode('foobar')}",
       "[\"\",\"Zg==\",\"Zm8=\",\"Zm9v\",\"Zm9vYmFy\"]");
    EQ("{b64.decode('Zg=='), b64.decode('Zm8'), b64.decode('Zm9vYmFy')}",
       "[\"f\",\"fo\",\"foobar\"]");
    EQ("b64.decode(b64.encode('\\0\\1\\2\\255')) == '\\0\\1\\2\\255'", "true");
    FAILS("b64.decode('Zm9v!')", KILN_ESCRIPT, "invalid");
    FAILS("b64.decode('Z')", KILN_ESCRIPT, "invalid length");
    FAILS("b64.decode('Zg=')", KILN_ESCRIPT, "invalid length");
}

static void test_lib__semver(void **state)
{
    (void)state;
    EQ("semver.parse('v1.2.3-rc.1+build.5')",
       "{\"build\":\"build.5\",\"major\":1,\"minor\":2,\"patch\":3,\"pre\":\"rc.1\"}");
    EQ("semver.parse('0.0.0').pre", "\"\"");
    FAILS("semver.parse('1.2')", KILN_ESCRIPT, "invalid semantic version \"1.2\"");
    FAILS("semver.parse('01.2.3')", KILN_ESCRIPT, "invalid semantic version");
    FAILS("semver.parse('1.2.3-01')", KILN_ESCRIPT, "invalid semantic version");
    EQ("{semver.compare('1.2.3', '1.2.4'), semver.compare('2.0.0', '1.9.9'), "
       "semver.compare('v1.0.0', '1.0.0+x')}",
       "[-1,1,0]");
    /* semver.org 11.4: 1.0.0-alpha < -alpha.1 < -alpha.beta < -beta < -beta.2 < -beta.11 <
     * -rc.1 < 1.0.0 */
    EQ("list.sort({'1.0.0', '1.0.0-rc.1', '1.0.0-beta.11', '1.0.0-beta.2', '1.0.0-beta', "
       "'1.0.0-alpha.beta', '1.0.0-alpha.1', '1.0.0-alpha'}, function(v) return "
       "setmetatable({v = v}, {__lt = function(a, b) return semver.compare(a.v, b.v) < 0 end}) "
       "end)",
       "[\"1.0.0-alpha\",\"1.0.0-alpha.1\",\"1.0.0-alpha.beta\",\"1.0.0-beta\",\"1.0.0-beta.2\","
       "\"1.0.0-beta.11\",\"1.0.0-rc.1\",\"1.0.0\"]");
}

static void test_lib__semver_ranges(void **state)
{
    (void)state;
    EQ("{semver.satisfies('1.4.0', '^1.2'), semver.satisfies('2.0.0', '^1.2'), "
       "semver.satisfies('1.1.9', '^1.2')}",
       "[true,false,false]");
    EQ("{semver.satisfies('0.2.5', '^0.2.3'), semver.satisfies('0.3.0', '^0.2.3'), "
       "semver.satisfies('0.0.3', '^0.0.3'), semver.satisfies('0.0.4', '^0.0.3')}",
       "[true,false,true,false]");
    EQ("{semver.satisfies('1.2.9', '~1.2.3'), semver.satisfies('1.3.0', '~1.2.3'), "
       "semver.satisfies('1.2.2', '~1.2.3')}",
       "[true,false,false]");
    EQ("{semver.satisfies('1.5.0', '>=1.2.0 <2.0.0'), semver.satisfies('2.0.0', '>=1.2.0 "
       "<2.0.0'), semver.satisfies('1.1.0', '>=1.2.0 <2.0.0')}",
       "[true,false,false]");
    EQ("{semver.satisfies('1.2.3', '=1.2.3'), semver.satisfies('1.2.4', '=1.2.3'), "
       "semver.satisfies('v1.2.3', '1.2.3')}",
       "[true,false,true]");
    EQ("{semver.satisfies('1.2.7', '1.2.x'), semver.satisfies('1.3.0', '1.2.x'), "
       "semver.satisfies('1.9.0', '1.x'), semver.satisfies('5.0.0', '*')}",
       "[true,false,true,true]");
    EQ("{semver.satisfies('3.1.0', '^1.0 || ^3.0'), semver.satisfies('2.1.0', '^1.0 || "
       "^3.0')}",
       "[true,false]");
    EQ("{semver.satisfies('1.3.0', '>1.2'), semver.satisfies('1.2.9', '>1.2'), "
       "semver.satisfies('1.2.9', '<=1.2'), semver.satisfies('1.3.0', '<=1.2')}",
       "[true,false,true,false]");
    FAILS("semver.satisfies('1.0.0', '>>1')", KILN_ESCRIPT, "invalid version range");
    FAILS("semver.satisfies('1.0.0', '^1 |')", KILN_ESCRIPT, "invalid version range");
    FAILS("semver.satisfies('1.0.0', '')", KILN_ESCRIPT, "empty alternative");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lib__range_is_inclusive_like_numeric_for),
        cmocka_unit_test(test_lib__array_and_object_pin_empty_shapes),
        cmocka_unit_test(test_lib__k8s_object_and_labels),
        cmocka_unit_test(test_lib__k8s_names_are_sanitised),
        cmocka_unit_test(test_lib__k8s_conditions),
        cmocka_unit_test(test_lib__quantities),
        cmocka_unit_test(test_lib__json_encode_is_canonical),
        cmocka_unit_test(test_lib__json_decode),
        cmocka_unit_test(test_lib__str),
        cmocka_unit_test(test_lib__list),
        cmocka_unit_test(test_lib__hash),
        cmocka_unit_test(test_lib__b64),
        cmocka_unit_test(test_lib__semver),
        cmocka_unit_test(test_lib__semver_ranges),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
