/* Tests for lua/sandbox.c: environments, compile, eval, limits, hostile code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lua/sandbox.h"
#include "lua_test.h"

typedef lt_fx fx;

static kiln_lua_limits small_limits(void)
{
    kiln_lua_limits lim = lt_limits(200000, 8 << 20);
    lim.pattern_subject = 64 << 10;
    lim.max_items = 10000;
    lim.max_depth = 32;
    return lim;
}

static int setup(void **state)
{
    kiln_lua_limits lim = small_limits();
    *state = lt_fx_new(&lim, "test");
    return 0;
}

/* Compiles and evaluates src (an expression, or a script when script is true). */
static int run(fx *f, bool script, const char *src, json_t **out, kiln_err *err)
{
    int fn = 0;
    *out = NULL;
    int rc = script ? kiln_lua_compile_script(f->L, &fn, src, "t.lua", err)
                    : kiln_lua_compile_expr(f->L, &fn, src, "expr", err);
    if (rc != 0)
        return rc;
    rc = kiln_lua_eval(f->L, out, f->env, fn, err);
    kiln_lua_release(f->L, fn);
    return rc;
}

/* Evaluates an expression that must succeed; returns its canonical JSON (static buffer). */
static const char *ok(fx *f, bool script, const char *src)
{
    static char text[4096];
    json_t *out = NULL;
    kiln_err err = {0};
    int rc = run(f, script, src, &out, &err);
    if (rc != 0)
        fail_msg("%s: %s", src, err.msg);
    if (out == NULL) {
        strcpy(text, "nil");
        return text;
    }
    char *s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    snprintf(text, sizeof text, "%s", s);
    free(s);
    json_decref(out);
    return text;
}

static void fails(fx *f, bool script, const char *src, int code, const char *part)
{
    json_t *out = NULL;
    kiln_err err = {0};
    int rc = run(f, script, src, &out, &err);
    json_decref(out);
    if (rc != code)
        fail_msg("%s: expected %d, got %d (%s)", src, code, rc, err.msg);
    if (strstr(err.msg, part) == NULL)
        fail_msg("%s: message \"%s\" lacks \"%s\"", src, err.msg, part);
    /* The state stays usable. */
    assert_string_equal(ok(f, false, "1 + 1"), "2");
}

static void test_sandbox__expression_values_keep_their_types(void **state)
{
    fx *f = *state;
    assert_string_equal(ok(f, false, "1 + 2"), "3");
    assert_string_equal(ok(f, false, "2.0"), "2.0");
    assert_string_equal(ok(f, false, "7 // 2"), "3");
    assert_string_equal(ok(f, false, "7 / 2"), "3.5");
    assert_string_equal(ok(f, false, "'a' .. 'b'"), "\"ab\"");
    assert_string_equal(ok(f, false, "nil"), "nil");
    assert_string_equal(ok(f, false, "{1, 2, {a = true}}"), "[1,2,{\"a\":true}]");
    assert_string_equal(ok(f, false, "{}"), "{}");
    assert_string_equal(ok(f, false, "array()"), "[]");
    assert_string_equal(ok(f, false, "{a = array(), b = object()}"), "{\"a\":[],\"b\":{}}");
    assert_string_equal(ok(f, false, "{x = json.null}"), "{\"x\":null}");
}

static void test_sandbox__script_returns_first_value(void **state)
{
    fx *f = *state;
    assert_string_equal(ok(f, true, "local t = {}\nfor i = 1, 3 do t[i] = i * i end\nreturn t, 5"),
                        "[1,4,9]");
    assert_string_equal(ok(f, true, "local x = 1"), "nil");
}

static void test_sandbox__variables_round_trip_json(void **state)
{
    fx *f = *state;
    kiln_err err = {0};
    json_t *v = json_loads("{\"spec\":{\"name\":\"web\",\"n\":3,\"r\":2.0,\"l\":[],\"o\":{},"
                           "\"a\":[1,null,3]}}",
                           0, NULL);
    assert_int_equal(kiln_lua_env_set(f->L, f->env, "schema", v, &err), 0);
    json_decref(v);
    assert_string_equal(ok(f, false, "schema"),
                        "{\"spec\":{\"a\":[1,null,3],\"l\":[],\"n\":3,\"name\":\"web\",\"o\":{},"
                        "\"r\":2.0}}");
    assert_string_equal(ok(f, false, "math.type(schema.spec.n) .. math.type(schema.spec.r)"),
                        "\"integerfloat\"");
    assert_string_equal(ok(f, false, "#schema.spec.a"), "3");
    assert_string_equal(ok(f, false, "schema.spec.a[2] == json.null"), "true");
    assert_int_equal(kiln_lua_env_set(f->L, f->env, "schema", NULL, &err), 0);
    assert_string_equal(ok(f, false, "schema"), "nil");
}

static void test_sandbox__env_clear_removes_variables_keeps_helpers(void **state)
{
    fx *f = *state;
    kiln_err err = {0};
    int env = 0;
    assert_int_equal(kiln_lua_env_new(f->L, &env, "function two() return 2 end", "h.lua", &err), 0);
    json_t *v = json_integer(5);
    assert_int_equal(kiln_lua_env_set(f->L, env, "x", v, &err), 0);
    json_decref(v);
    int fn = 0;
    json_t *out = NULL;
    assert_int_equal(kiln_lua_compile_expr(f->L, &fn, "x", "e", &err), 0);
    assert_int_equal(kiln_lua_eval(f->L, &out, env, fn, &err), 0);
    assert_int_equal(json_integer_value(out), 5);
    json_decref(out);
    kiln_lua_env_clear(f->L, env);
    assert_int_equal(kiln_lua_eval(f->L, &out, env, fn, &err), 0);
    assert_null(out);
    kiln_lua_release(f->L, fn);
    assert_int_equal(kiln_lua_compile_expr(f->L, &fn, "two()", "e", &err), 0);
    assert_int_equal(kiln_lua_eval(f->L, &out, env, fn, &err), 0);
    assert_int_equal(json_integer_value(out), 2);
    json_decref(out);
    kiln_lua_release(f->L, fn);
    kiln_lua_env_free(f->L, env);
}

static void test_sandbox__helpers_see_render_variables_at_call_time(void **state)
{
    fx *f = *state;
    kiln_err err = {0};
    int env = 0, fn = 0;
    json_t *out = NULL;
    assert_int_equal(kiln_lua_env_new(f->L, &env,
                                      "local prefix = 'app'\n"
                                      "function app_labels() return {[prefix] = schema.spec.name} "
                                      "end\n",
                                      "spec.lua", &err),
                     0);
    assert_int_equal(kiln_lua_compile_expr(f->L, &fn, "app_labels()", "labels", &err), 0);
    const char *names[] = {"one", "two"};
    for (int i = 0; i < 2; i++) {
        char doc[64];
        snprintf(doc, sizeof doc, "{\"spec\":{\"name\":\"%s\"}}", names[i]);
        json_t *v = json_loads(doc, 0, NULL);
        assert_int_equal(kiln_lua_env_set(f->L, env, "schema", v, &err), 0);
        json_decref(v);
        assert_int_equal(kiln_lua_eval(f->L, &out, env, fn, &err), 0);
        assert_string_equal(json_string_value(json_object_get(out, "app")), names[i]);
        json_decref(out);
    }
    kiln_lua_release(f->L, fn);
    kiln_lua_env_free(f->L, env);
}

static void test_sandbox__global_assignment_is_an_error(void **state)
{
    fx *f = *state;
    fails(f, true, "x = 1 return x", KILN_ESCRIPT, "assignment to undeclared global 'x'");
    fails(f, false, "(function() y = 2 end)()", KILN_ESCRIPT,
          "assignment to undeclared global 'y'");
    fails(f, true, "_ENV.z = 1", KILN_ESCRIPT, "assignment to undeclared global 'z'");
    fails(f, true, "rawset(_ENV, 'z', 1)", KILN_ESCRIPT, "read-only");
    assert_string_equal(ok(f, true, "local x = 1 x = x + 1 return x"), "2");
}

static void test_sandbox__helpers_chunk_globals_then_sealed(void **state)
{
    fx *f = *state;
    kiln_err err = {0};
    int env = 0, fn = 0;
    json_t *out = NULL;
    assert_int_equal(kiln_lua_env_new(f->L, &env,
                                      "counter = 0\nfunction bump() counter = counter + 1 "
                                      "return counter end",
                                      "spec.lua", &err),
                     0);
    assert_int_equal(kiln_lua_compile_expr(f->L, &fn, "bump()", "e", &err), 0);
    assert_int_equal(kiln_lua_eval(f->L, &out, env, fn, &err), KILN_ESCRIPT);
    assert_non_null(strstr(err.msg, "assignment to undeclared global 'counter'"));
    assert_non_null(strstr(err.msg, "spec.lua:2:"));
    kiln_lua_release(f->L, fn);
    kiln_lua_env_free(f->L, env);
}

static void test_sandbox__helpers_syntax_error_names_chunk(void **state)
{
    fx *f = *state;
    kiln_err err = {0};
    int env = 0;
    assert_int_equal(kiln_lua_env_new(f->L, &env, "function f(\n", "spec.lua", &err), KILN_ESCRIPT);
    assert_non_null(strstr(err.msg, "spec.lua:"));
}

static void test_sandbox__syntax_error_names_line_and_column(void **state)
{
    fx *f = *state;
    kiln_err err = {0};
    int fn = 0;
    assert_int_equal(kiln_lua_compile_expr(f->L, &fn, "schema.spec + + )", "res.x", &err),
                     KILN_ESCRIPT);
    assert_non_null(strstr(err.msg, "res.x:1:15:"));
    assert_int_equal(kiln_lua_compile_expr(f->L, &fn, "a +\n  b c", "res.y", &err), KILN_ESCRIPT);
    assert_non_null(strstr(err.msg, "res.y:2:5:"));
    assert_non_null(strstr(err.msg, "near 'c'"));
    assert_int_equal(kiln_lua_compile_expr(f->L, &fn, "x = 1", "res.z", &err), KILN_ESCRIPT);
    assert_non_null(strstr(err.msg, "res.z:1:3:"));
    assert_int_equal(kiln_lua_compile_expr(f->L, &fn, "(1 + ", "res.w", &err), KILN_ESCRIPT);
    assert_non_null(strstr(err.msg, "res.w:1:"));
    assert_int_equal(kiln_lua_compile_expr(f->L, &fn, "a) or (b", "res.u", &err), KILN_ESCRIPT);
    assert_non_null(strstr(err.msg, "res.u:1:2: syntax error: <eof> expected near ')'"));
    assert_int_equal(kiln_lua_compile_expr(f->L, &fn, "  ", "res.v", &err), KILN_ESCRIPT);
    assert_non_null(strstr(err.msg, "empty expression"));
    assert_int_equal(kiln_lua_compile_script(f->L, &fn, "local a = 1\nlocal b = a + + 2\nreturn b",
                                             "resources[1].script", &err),
                     KILN_ESCRIPT);
    assert_non_null(strstr(err.msg, "resources[1].script:2:15: syntax error: unexpected symbol "
                                    "near '+'"));
    assert_int_equal(kiln_lua_compile_script(f->L, &fn, "if x then\nreturn 1", "s", &err),
                     KILN_ESCRIPT);
    assert_non_null(strstr(err.msg, "s:2:9: syntax error: 'end' expected"));
}

static void test_sandbox__trailing_comment_in_expression_is_fine(void **state)
{
    fx *f = *state;
    assert_string_equal(ok(f, false, "1 + 1 -- two"), "2");
}

static void test_sandbox__runtime_error_names_chunk_and_line(void **state)
{
    fx *f = *state;
    json_t *out = NULL;
    kiln_err err = {0};
    int fn = 0;
    assert_int_equal(kiln_lua_compile_script(f->L, &fn, "local a = 1\nreturn nope.x",
                                             "resources[2].script", &err),
                     0);
    assert_int_equal(kiln_lua_eval(f->L, &out, f->env, fn, &err), KILN_ESCRIPT);
    assert_non_null(strstr(err.msg, "resources[2].script:2:"));
    assert_non_null(strstr(err.msg, "nope"));
    assert_non_null(strstr(kiln_lua_last_traceback(f->L), "stack traceback"));
    kiln_lua_release(f->L, fn);
}

static void test_sandbox__long_chunk_name_is_kept_whole(void **state)
{
    fx *f = *state;
    json_t *out = NULL;
    kiln_err err = {0};
    int fn = 0;
    const char *name = "resources[12].template.spec.template.spec.containers[0].env[3].value";
    assert_int_equal(kiln_lua_compile_expr(f->L, &fn, "nope.x", name, &err), 0);
    assert_int_equal(kiln_lua_eval(f->L, &out, f->env, fn, &err), KILN_ESCRIPT);
    assert_int_equal(strncmp(err.msg, name, strlen(name)), 0);
    assert_non_null(strstr(err.msg, ":1:"));
    kiln_lua_release(f->L, fn);
}

static void test_sandbox__values_that_cannot_become_json(void **state)
{
    fx *f = *state;
    fails(f, false, "function() end", KILN_EINVAL, "function cannot become JSON");
    fails(f, false, "{a = {1, 2, x = 3}}", KILN_EINVAL, "value.a:");
    fails(f, false, "{a = {[1] = 1, [3] = 3}}", KILN_EINVAL, "holes");
    fails(f, false, "{[true] = 1}", KILN_EINVAL, "key of type boolean");
    fails(f, false, "0/0", KILN_EINVAL, "NaN");
    fails(f, false, "{x = 1/0}", KILN_EINVAL, "value.x: an infinite number");
    fails(f, false, "'\\xff'", KILN_EINVAL, "UTF-8");
    fails(f, true, "local t = {} t.self = t return t", KILN_ELIMIT, "nested deeper than 32");
}

static void test_sandbox__removed_functions_are_absent(void **state)
{
    fx *f = *state;
    assert_string_equal(ok(f, false,
                           "{io == nil, os == nil, require == nil, load == nil, dofile == nil, "
                           "loadfile == nil, loadstring == nil, print == nil, collectgarbage == "
                           "nil, debug == nil, coroutine == nil, package == nil, string.dump == "
                           "nil, math.random == nil, math.randomseed == nil, _G == nil}"),
                        "[true,true,true,true,true,true,true,true,true,true,true,true,true,true,"
                        "true,true]");
    fails(f, false, "require('os')", KILN_ESCRIPT, "require");
    fails(f, false, "load('return 1')", KILN_ESCRIPT, "load");
    fails(f, false, "string.dump(function() end)", KILN_ESCRIPT, "dump");
}

static void test_sandbox__libraries_are_read_only(void **state)
{
    fx *f = *state;
    fails(f, true, "k8s.object = nil", KILN_ESCRIPT, "read-only");
    fails(f, true, "string.upper = nil", KILN_ESCRIPT, "read-only");
    fails(f, true, "rawset(string, 'upper', nil)", KILN_ESCRIPT, "read-only");
    fails(f, true, "setmetatable(string, {})", KILN_ESCRIPT, "protected metatable");
    fails(f, true, "getmetatable('').__index.upper = function() return 'x' end", KILN_ESCRIPT,
          "index");
    assert_string_equal(ok(f, false, "('abc'):upper()"), "\"ABC\"");
    assert_string_equal(ok(f, false, "getmetatable('')"), "false");
    assert_string_equal(ok(f, true, "local _ENV = {y = 4} return y"), "4");
}

static void test_sandbox__env_rebinding_stays_local(void **state)
{
    fx *f = *state;
    assert_string_equal(ok(f, true,
                           "local _ENV = setmetatable({}, {__index = _ENV})\n"
                           "leaked = 41 return leaked + 1"),
                        "42");
    assert_string_equal(ok(f, false, "leaked"), "nil");
    assert_string_equal(ok(f, true, "local function f() local _ENV = {} return k8s end return f()"),
                        "nil");
    assert_string_equal(ok(f, false, "k8s.name('still', 'here')"), "\"still-here\"");
}

static void test_sandbox__bytecode_is_refused(void **state)
{
    fx *f = *state;
    kiln_err err = {0};
    int fn = 0;
    assert_int_equal(kiln_lua_compile_script(f->L, &fn, "\x1bLua\x54\x00", "bc", &err),
                     KILN_ESCRIPT);
    assert_non_null(strstr(err.msg, "binary"));
}

static void test_sandbox__setmetatable_refuses_gc(void **state)
{
    fx *f = *state;
    fails(f, true, "setmetatable({}, {__gc = function() while true do end end})", KILN_ESCRIPT,
          "__gc");
    assert_string_equal(ok(f, true, "local t = setmetatable({}, {__index = {a = 1}}) return t.a"),
                        "1");
}

static void test_sandbox__infinite_loop_hits_instruction_limit(void **state)
{
    fx *f = *state;
    fails(f, true, "while true do end", KILN_ELIMIT, "instruction limit of 200000 exceeded");
    assert_true(kiln_lua_last_instructions(f->L) < 1000);
}

static void test_sandbox__pcall_cannot_swallow_budget(void **state)
{
    fx *f = *state;
    fails(f, true, "while true do pcall(function() while true do end end) end", KILN_ELIMIT,
          "instruction limit");
    fails(f, true, "for i = 1, 1e12 do pcall(error) end", KILN_ELIMIT, "instruction limit");
    fails(f, true,
          "local n = 0 while true do xpcall(function() while true do end end, function(e) n = "
          "n + 1 return e end) end",
          KILN_ELIMIT, "instruction limit");
    fails(f, true,
          "local ok, e = pcall(function() while true do end end) return 'swallowed: ' .. "
          "tostring(e)",
          KILN_ELIMIT, "instruction limit");
}

static void test_sandbox__pcall_still_catches_ordinary_errors(void **state)
{
    fx *f = *state;
    assert_string_equal(ok(f, true, "local ok, e = pcall(error, 'boom', 0) return {ok, e}"),
                        "[false,\"boom\"]");
    assert_string_equal(
        ok(f, true,
           "local ok, e = xpcall(function() error('x', 0) end, function(m) return m .. "
           "'!' end) return {ok, e}"),
        "[false,\"x!\"]");
    assert_string_equal(ok(f, true, "return {pcall(function(a, b) return a + b end, 1, 2)}"),
                        "[true,3]");
}

static void test_sandbox__budget_resets_per_evaluation(void **state)
{
    fx *f = *state;
    /* Each run uses most of the budget; the sum would exceed it. */
    for (int i = 0; i < 5; i++)
        assert_string_equal(ok(f, true, "local n = 0 for i = 1, 40000 do n = n + 1 end return n"),
                            "40000");
}

static void test_sandbox__string_rep_bomb_fails_fast(void **state)
{
    fx *f = *state;
    fails(f, false, "string.rep('x', 1e10)", KILN_ELIMIT, "memory limit of 8388608 bytes exceeded");
    fails(f, false, "('x'):rep(1e10, ',')", KILN_ELIMIT, "memory limit");
    fails(f, false, "string.rep('abc', math.maxinteger)", KILN_ELIMIT, "memory limit");
    assert_string_equal(ok(f, false, "string.rep('ab', 3, '-')"), "\"ab-ab-ab\"");
}

/* A state whose instruction budget is too large to matter, so memory is the
 * limit that trips. */
static fx big_budget(void)
{
    kiln_lua_limits lim = small_limits();
    lim.instructions = 100000000;
    fx g;
    lt_open(&g.L, &g.env, &lim, "test");
    return g;
}

static void test_sandbox__doubling_loop_hits_memory_limit(void **state)
{
    (void)state;
    fx g = big_budget();
    fails(&g, true, "local s = 'x' while true do s = s .. s end", KILN_ELIMIT,
          "memory limit of 8388608 bytes exceeded");
    fails(&g, true, "local t = {} while true do t[#t + 1] = {} end", KILN_ELIMIT,
          "memory limit of 8388608 bytes exceeded");
    lt_close(g.L, g.env);
}

static void test_sandbox__memory_error_cannot_be_swallowed(void **state)
{
    (void)state;
    fx g = big_budget();
    fails(&g, true, "local ok = pcall(string.rep, 'x', 1e10) return ok", KILN_ELIMIT,
          "memory limit");
    fails(&g, true,
          "local ok = pcall(function() local s = 'x' while true do s = s .. s end end) return ok",
          KILN_ELIMIT, "memory limit of 8388608 bytes exceeded");
    fails(&g, true,
          "local n = 0 while true do pcall(function() local s = 'x' while true do s = s .. s end "
          "end) n = n + 1 end",
          KILN_ELIMIT, "memory limit");
    lt_close(g.L, g.env);
}

static void test_sandbox__garbage_is_not_a_memory_limit(void **state)
{
    (void)state;
    fx g = big_budget();
    /* 8 MiB cap: each evaluation makes 30 MiB of garbage, 2 MiB live at a time. */
    for (int i = 0; i < 3; i++)
        assert_string_equal(ok(&g, true,
                               "local n = 0 for i = 1, 15 do local s = string.rep('x', 2e6) "
                               "n = n + #s end return n"),
                            "30000000");
    for (int i = 0; i < 3; i++)
        assert_string_equal(ok(&g, true,
                               "local t for i = 1, 10 do t = {} for j = 1, 2000 do t[j] = "
                               "('y'):rep(1000) .. j end end return #t"),
                            "2000");
    lt_close(g.L, g.env);
}

static void test_sandbox__allocation_is_charged_to_the_budget(void **state)
{
    fx *f = *state;
    /* 30 MiB copied in 15 loop iterations: too few instructions for the hook's
     * own count, but the copying is charged (1 per 32 bytes). */
    fails(f, true,
          "local n = 0 for i = 1, 15 do local s = string.rep('x', 2e6) n = n + #s end return n",
          KILN_ELIMIT, "instruction limit of 200000 exceeded");
}

static void test_sandbox__pattern_bomb_hits_limit(void **state)
{
    fx *f = *state;
    fails(f, false, "string.find(string.rep('a', 5000), string.rep('a*', 20) .. 'b')", KILN_ELIMIT,
          "instruction limit");
    fails(f, false, "(string.rep('a', 5000)):match(string.rep('a*', 20) .. 'b')", KILN_ELIMIT,
          "in a library function");
    fails(f, true,
          "for w in string.gmatch(string.rep('a', 3000), string.rep('a-', 10) .. 'b') do end",
          KILN_ELIMIT, "instruction limit");
    fails(f, false, "string.gsub(string.rep('a', 3000), string.rep('a*', 20) .. 'b', '')",
          KILN_ELIMIT, "instruction limit");
}

static void test_sandbox__pattern_subject_is_capped(void **state)
{
    fx *f = *state;
    fails(f, false, "string.find(string.rep('a', 70000), 'b')", KILN_ELIMIT,
          "subject of 70000 bytes is over the limit of 65536");
}

static void test_sandbox__patterns_behave_like_lua(void **state)
{
    fx *f = *state;
    assert_string_equal(ok(f, false, "{string.find('hello world', 'o w')}"), "[5,7]");
    assert_string_equal(ok(f, false, "{string.find('a.b', '.', 1, true)}"), "[2,2]");
    assert_string_equal(ok(f, false, "{('key=val'):match('(%w+)=(%w+)')}"), "[\"key\",\"val\"]");
    assert_string_equal(ok(f, false, "{string.find('abc', '()b()')}"), "[2,2,2,3]");
    assert_string_equal(ok(f, false, "{string.gsub('hello world', 'o', '0')}"),
                        "[\"hell0 w0rld\",2]");
    assert_string_equal(ok(f, false, "(string.gsub('abc', '%w', '%0%0'))"), "\"aabbcc\"");
    assert_string_equal(ok(f, false,
                           "(string.gsub('$name is $age', '%$(%w+)', {name = 'x', "
                           "age = 3}))"),
                        "\"x is 3\"");
    assert_string_equal(ok(f, false,
                           "(string.gsub('abc', '.', function(c) return c:upper() "
                           "end))"),
                        "\"ABC\"");
    assert_string_equal(ok(f, true,
                           "local t = {} for k, v in ('a=1, b=2'):gmatch('(%w+)=(%w+)') "
                           "do t[#t + 1] = k .. v end return t"),
                        "[\"a1\",\"b2\"]");
    assert_string_equal(ok(f, false, "('THE (quick) fox'):find('%f[%a]%a+', 5)"), "6");
    assert_string_equal(ok(f, false, "('x(a(b)c)y'):match('%b()')"), "\"(a(b)c)\"");
    assert_string_equal(ok(f, false, "('  trim  '):match('^%s*(.-)%s*$')"), "\"trim\"");
    assert_string_equal(ok(f, false, "('abab'):match('(ab)%1')"), "\"ab\"");
    assert_string_equal(ok(f, false, "(string.gsub('abc', '', '-'))"), "\"-a-b-c-\"");
    fails(f, false, "('x'):find('[a')", KILN_ESCRIPT, "missing ']'");
}

static void test_sandbox__c_work_is_charged_to_the_budget(void **state)
{
    fx *f = *state;
    fails(f, false, "table.move({}, 1, 1e12, 2)", KILN_ELIMIT, "instruction limit");
    fails(f, true, "local t = range(1, 5000) for i = 1, 1e6 do table.insert(t, 1, 0) end",
          KILN_ELIMIT, "instruction limit");
    fails(f, true, "local s = string.rep('x', 1e6) for i = 1, 1e7 do local u = s:upper() end",
          KILN_ELIMIT, "instruction limit");
    fails(f, true, "local s = string.rep('x', 1e6) for i = 1, 1e7 do local n = utf8.len(s) end",
          KILN_ELIMIT, "instruction limit");
    fails(f, true,
          "local t = {} for i = 1, 2000 do t['k' .. i] = i end\n"
          "for i = 1, 1e7 do for k in pairs(t) do break end end",
          KILN_ELIMIT, "instruction limit");
    fails(f, true, "local t = range(1, 5000) for i = 1, 1e7 do list.contains(t, -1) end",
          KILN_ELIMIT, "instruction limit");
    fails(f, true, "local s = string.rep('x', 1e6) for i = 1, 1e7 do str.contains(s, 'y') end",
          KILN_ELIMIT, "instruction limit");
    /* Ordinary use stays far below the budget. */
    assert_string_equal(ok(f, true,
                           "local t = {} for i = 1, 2000 do table.insert(t, i) end "
                           "table.sort(t, function(a, b) return a > b end) return t[1]"),
                        "2000");
}

static void test_sandbox__time_limit_backstops_uncounted_work(void **state)
{
    (void)state;
    /* A budget this large would allow minutes of string comparison. */
    kiln_lua_limits lim = small_limits();
    lim.instructions = 1000000000;
    fx g;
    lt_open(&g.L, &g.env, &lim, "test");
    kiln_lua_set_time_limit(g.L, 200);
    /* Comparing two distinct long strings is one instruction of unbounded work. */
    fails(&g, true,
          "local a = string.rep('x', 2e6) local b = string.rep('x', 2e6 - 1) .. 'x'\n"
          "while true do local _ = a == b end",
          KILN_ELIMIT, "time limit of 200 ms exceeded");
    lt_close(g.L, g.env);
}

static void test_sandbox__deep_recursion_is_a_limit(void **state)
{
    fx *f = *state;
    /* Under small limits the growing stack runs out of budget or memory first. */
    fails(f, true, "local function r(n) return 1 + r(n + 1) end return r(1)", KILN_ELIMIT,
          "limit of");
    /* With the defaults, Lua's own stack limit is what trips. */
    fx g;
    lt_open(&g.L, &g.env, NULL, "test");
    fails(&g, true, "local function r(n) return 1 + r(n + 1) end return r(1)", KILN_ELIMIT,
          "stack overflow");
    fails(&g, true, "local function r() return pcall(r) end return r()", KILN_ELIMIT,
          "stack overflow");
    fails(&g, true,
          "local t = setmetatable({}, {__index = function(t, k) return t[k .. 'x'] end}) "
          "return t.a",
          KILN_ELIMIT, "stack overflow");
    lt_close(g.L, g.env);
}

static void test_sandbox__huge_output_table_is_a_limit(void **state)
{
    fx *f = *state;
    fails(f, true, "local t = {} for i = 1, 1e7 do t[i] = i end return t", KILN_ELIMIT, "limit");
    fails(f, true, "local t = {} for i = 1, 20000 do t[i] = i end return t", KILN_ELIMIT,
          "more than 10000 items");
}

static void test_sandbox__error_objects_become_messages(void **state)
{
    fx *f = *state;
    fails(f, false, "error({code = 1})", KILN_ESCRIPT, "error object is a table value");
    fails(f, false, "error('plain', 0)", KILN_ESCRIPT, "expr: plain");
    fails(f, false, "error(setmetatable({}, {__tostring = function() return 'custom' end}))",
          KILN_ESCRIPT, "custom");
}

static void test_sandbox__stale_handles_are_rejected(void **state)
{
    fx *f = *state;
    json_t *out = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_lua_eval(f->L, &out, f->env, 99999, &err), KILN_EINVAL);
    assert_non_null(strstr(err.msg, "not a compiled function"));
    int fn = 0;
    assert_int_equal(kiln_lua_compile_expr(f->L, &fn, "1", "e", &err), 0);
    assert_int_equal(kiln_lua_eval(f->L, &out, fn, fn, &err), KILN_EINVAL);
    assert_non_null(strstr(err.msg, "not an environment"));
    kiln_lua_release(f->L, fn);
}

static void test_sandbox__pairs_order_is_deterministic(void **state)
{
    fx *f = *state;
    assert_string_equal(ok(f, true,
                           "local t = {zeta = 1, alpha = 2, [10] = 3, [2] = 4, [1.5] = 5, "
                           "[true] = 6, [false] = 7, mid = 8}\n"
                           "local out = {}\n"
                           "for k, v in pairs(t) do out[#out + 1] = tostring(k) .. '=' .. v end\n"
                           "return out"),
                        "[\"1.5=5\",\"2=4\",\"10=3\",\"alpha=2\",\"mid=8\",\"zeta=1\","
                        "\"false=7\",\"true=6\"]");
    /* Removing entries while iterating is allowed, as with next. */
    assert_string_equal(ok(f, true,
                           "local t = {a = 1, b = 2, c = 3} local n = 0\n"
                           "for k in pairs(t) do t.b = nil n = n + 1 end return n"),
                        "2");
    assert_string_equal(ok(f, true,
                           "local t = setmetatable({}, {__pairs = function(t) return function(_, "
                           "k) if not k then return 1, 'x' end end, t, nil end})\n"
                           "local out = {} for k, v in pairs(t) do out[k] = v end return out"),
                        "[\"x\"]");
}

static void test_sandbox__tostring_hides_addresses(void **state)
{
    fx *f = *state;
    assert_string_equal(ok(f, false,
                           "{tostring({}), tostring(print or tostring), "
                           "tostring(json.null), tostring(1.5), tostring(nil)}"),
                        "[\"table\",\"function\",\"null\",\"1.5\",\"nil\"]");
}

static void test_sandbox__memory_accounting_reports_use(void **state)
{
    fx *f = *state;
    ok(f, true, "local t = {} for i = 1, 1000 do t[i] = tostring(i) end return #t");
    assert_true(kiln_lua_memory_in_use(f->L) > 10000);
    assert_true(kiln_lua_last_instructions(f->L) >= 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, lt_fx_teardown)
        T(test_sandbox__expression_values_keep_their_types),
        T(test_sandbox__script_returns_first_value),
        T(test_sandbox__variables_round_trip_json),
        T(test_sandbox__env_clear_removes_variables_keeps_helpers),
        T(test_sandbox__helpers_see_render_variables_at_call_time),
        T(test_sandbox__global_assignment_is_an_error),
        T(test_sandbox__helpers_chunk_globals_then_sealed),
        T(test_sandbox__helpers_syntax_error_names_chunk),
        T(test_sandbox__syntax_error_names_line_and_column),
        T(test_sandbox__trailing_comment_in_expression_is_fine),
        T(test_sandbox__runtime_error_names_chunk_and_line),
        T(test_sandbox__long_chunk_name_is_kept_whole),
        T(test_sandbox__values_that_cannot_become_json),
        T(test_sandbox__removed_functions_are_absent),
        T(test_sandbox__libraries_are_read_only),
        T(test_sandbox__env_rebinding_stays_local),
        T(test_sandbox__bytecode_is_refused),
        T(test_sandbox__setmetatable_refuses_gc),
        T(test_sandbox__infinite_loop_hits_instruction_limit),
        T(test_sandbox__pcall_cannot_swallow_budget),
        T(test_sandbox__pcall_still_catches_ordinary_errors),
        T(test_sandbox__budget_resets_per_evaluation),
        T(test_sandbox__string_rep_bomb_fails_fast),
        cmocka_unit_test(test_sandbox__doubling_loop_hits_memory_limit),
        cmocka_unit_test(test_sandbox__memory_error_cannot_be_swallowed),
        cmocka_unit_test(test_sandbox__garbage_is_not_a_memory_limit),
        T(test_sandbox__allocation_is_charged_to_the_budget),
        T(test_sandbox__pattern_bomb_hits_limit),
        T(test_sandbox__pattern_subject_is_capped),
        T(test_sandbox__patterns_behave_like_lua),
        T(test_sandbox__c_work_is_charged_to_the_budget),
        cmocka_unit_test(test_sandbox__time_limit_backstops_uncounted_work),
        T(test_sandbox__deep_recursion_is_a_limit),
        T(test_sandbox__huge_output_table_is_a_limit),
        T(test_sandbox__error_objects_become_messages),
        T(test_sandbox__stale_handles_are_rejected),
        T(test_sandbox__pairs_order_is_deterministic),
        T(test_sandbox__tostring_hides_addresses),
        T(test_sandbox__memory_accounting_reports_use),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
