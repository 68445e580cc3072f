/* Tests for lua/template.c: the ${...} scanner and splicing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lua/template.h"
#include "lua_test.h"

static void parse_ok(const char *s, kiln_tmpl *t)
{
    kiln_err err = {0};
    if (kiln_tmpl_parse(t, s, &err) != 0)
        fail_msg("%s: %s", s, err.msg);
}

static void parse_fails(const char *s, const char *part)
{
    kiln_tmpl t;
    kiln_err err = {0};
    assert_int_equal(kiln_tmpl_parse(&t, s, &err), KILN_EINVAL);
    if (strstr(err.msg, part) == NULL)
        fail_msg("%s: message \"%s\" lacks \"%s\"", s, err.msg, part);
}

static void test_template__has_expr(void **state)
{
    (void)state;
    assert_true(kiln_tmpl_has_expr("a ${b}"));
    assert_false(kiln_tmpl_has_expr("a $b {c}"));
    assert_false(kiln_tmpl_has_expr(NULL));
}

static void test_template__whole_expression(void **state)
{
    (void)state;
    kiln_tmpl t;
    parse_ok("${schema.spec.replicas}", &t);
    assert_true(t.whole);
    assert_int_equal(t.nparts, 1);
    assert_int_equal(t.nexprs, 1);
    assert_true(t.parts[0].is_expr);
    assert_string_equal(t.parts[0].text, "schema.spec.replicas");
    assert_int_equal(t.parts[0].column, 1);
    kiln_tmpl_free(&t);
}

static void test_template__splice_parts_and_columns(void **state)
{
    (void)state;
    kiln_tmpl t;
    parse_ok("web-${a}-x${b .. 'c'}", &t);
    assert_false(t.whole);
    assert_int_equal(t.nparts, 4);
    assert_int_equal(t.nexprs, 2);
    assert_false(t.parts[0].is_expr);
    assert_string_equal(t.parts[0].text, "web-");
    assert_int_equal(t.parts[0].column, 1);
    assert_string_equal(t.parts[1].text, "a");
    assert_int_equal(t.parts[1].column, 5);
    assert_string_equal(t.parts[2].text, "-x");
    assert_int_equal(t.parts[2].column, 9);
    assert_string_equal(t.parts[3].text, "b .. 'c'");
    assert_int_equal(t.parts[3].column, 11);
    kiln_tmpl_free(&t);
}

static void test_template__plain_text_is_one_literal(void **state)
{
    (void)state;
    kiln_tmpl t;
    parse_ok("just text", &t);
    assert_false(t.whole);
    assert_int_equal(t.nparts, 1);
    assert_int_equal(t.nexprs, 0);
    kiln_tmpl_free(&t);
    parse_ok("", &t);
    assert_int_equal(t.nparts, 0);
    kiln_tmpl_free(&t);
}

static void test_template__braces_in_strings_and_tables(void **state)
{
    (void)state;
    kiln_tmpl t;
    parse_ok("${ {a = '}'} }", &t);
    assert_true(t.whole);
    assert_string_equal(t.parts[0].text, " {a = '}'} ");
    kiln_tmpl_free(&t);
    parse_ok("${\"}\\\"}\"}", &t);
    assert_string_equal(t.parts[0].text, "\"}\\\"}\"");
    kiln_tmpl_free(&t);
    parse_ok("${[==[ } ]] ]==]}", &t);
    assert_string_equal(t.parts[0].text, "[==[ } ]] ]==]");
    kiln_tmpl_free(&t);
    parse_ok("${x --[[ } ]] }", &t);
    assert_string_equal(t.parts[0].text, "x --[[ } ]] ");
    kiln_tmpl_free(&t);
    parse_ok("${x -- }\n}", &t);
    assert_string_equal(t.parts[0].text, "x -- }\n");
    kiln_tmpl_free(&t);
    parse_ok("${ \"${x}\" .. '}' }", &t);
    assert_true(t.whole);
    assert_string_equal(t.parts[0].text, " \"${x}\" .. '}' ");
    kiln_tmpl_free(&t);
    parse_ok("${t[1]}", &t);
    assert_string_equal(t.parts[0].text, "t[1]");
    kiln_tmpl_free(&t);
}

static void test_template__errors_name_the_column(void **state)
{
    (void)state;
    parse_fails("abc ${x", "column 5: unterminated ${");
    parse_fails("a${}", "column 2: empty ${}");
    parse_fails("a${  }", "column 2: empty ${}");
    parse_fails("${ 'x }", "column 4: unterminated string");
    parse_fails("${ [[ x }", "column 4: unterminated long string");
    parse_fails("${ --[[ x }", "column 4: unterminated comment");
    parse_fails("${ a ${b} }", "column 6: ${ inside the expression that starts at column 1");
    parse_fails("${ {a = 1 }", "unterminated ${");
}

typedef lt_fx fx;

static int setup(void **state)
{
    kiln_lua_limits lim = lt_limits(100000, 4 << 20);
    fx *f = lt_fx_new(&lim, "t");
    kiln_err err = {0};
    json_t *v =
        json_loads("{\"spec\":{\"name\":\"web\",\"n\":3,\"r\":2.5,\"whole\":2.0}}", 0, NULL);
    assert_int_equal(kiln_lua_env_set(f->L, f->env, "schema", v, &err), 0);
    json_decref(v);
    *state = f;
    return 0;
}

/* Parses, compiles and evaluates s; returns rc and the compact JSON (or "nil") in text. */
static int render(fx *f, const char *s, char *text, size_t n, kiln_err *err)
{
    kiln_tmpl t;
    int fns[8] = {0};
    json_t *out = NULL;
    int rc = kiln_tmpl_parse(&t, s, err);
    if (rc != 0)
        return rc;
    size_t fi = 0;
    for (size_t i = 0; rc == 0 && i < t.nparts; i++)
        if (t.parts[i].is_expr)
            rc = kiln_lua_compile_expr(f->L, &fns[fi++], t.parts[i].text, "field", err);
    if (rc == 0)
        rc = kiln_lua_eval_template(f->L, &out, f->env, &t, fns, err);
    for (size_t i = 0; i < fi; i++)
        kiln_lua_release(f->L, fns[i]);
    kiln_tmpl_free(&t);
    if (rc == 0) {
        if (out == NULL) {
            snprintf(text, n, "nil");
        } else {
            char *d = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
            snprintf(text, n, "%s", d);
            free(d);
        }
    }
    json_decref(out);
    return rc;
}

static const char *rendered(fx *f, const char *s)
{
    static char text[1024];
    kiln_err err = {0};
    if (render(f, s, text, sizeof text, &err) != 0)
        fail_msg("%s: %s", s, err.msg);
    return text;
}

static void test_template__whole_keeps_the_type(void **state)
{
    fx *f = *state;
    assert_string_equal(rendered(f, "${schema.spec.n}"), "3");
    assert_string_equal(rendered(f, "${schema.spec.whole}"), "2.0");
    assert_string_equal(rendered(f, "${ {app = schema.spec.name} }"), "{\"app\":\"web\"}");
    assert_string_equal(rendered(f, "${schema.spec.missing}"), "nil");
    assert_string_equal(rendered(f, "${schema.spec.n > 2}"), "true");
}

static void test_template__splice_formats_numbers_like_lua(void **state)
{
    fx *f = *state;
    assert_string_equal(rendered(f, "${schema.spec.name}-${schema.spec.n}"), "\"web-3\"");
    assert_string_equal(rendered(f, "r=${schema.spec.r}"), "\"r=2.5\"");
    assert_string_equal(rendered(f, "w=${schema.spec.whole}"), "\"w=2.0\"");
    assert_string_equal(rendered(f, "${1/3} "), "\"0.33333333333333 \"");
    assert_string_equal(rendered(f, "${2^53} x"), "\"9.007199254741e+15 x\"");
    assert_string_equal(rendered(f, "plain"), "\"plain\"");
}

static void test_template__splice_rejects_nil_and_tables(void **state)
{
    fx *f = *state;
    char text[64];
    kiln_err err = {0};
    assert_int_equal(render(f, "a-${schema.spec.missing}", text, sizeof text, &err), KILN_ESCRIPT);
    assert_string_equal(err.msg, "expected a string or number for ${...} at column 3, got nil");
    assert_int_equal(render(f, "ab ${ {} }", text, sizeof text, &err), KILN_ESCRIPT);
    assert_string_equal(err.msg, "expected a string or number for ${...} at column 4, got table");
    assert_int_equal(render(f, "x${true}", text, sizeof text, &err), KILN_ESCRIPT);
    assert_non_null(strstr(err.msg, "got boolean"));
}

static void test_template__splice_propagates_script_errors(void **state)
{
    fx *f = *state;
    char text[64];
    kiln_err err = {0};
    assert_int_equal(render(f, "a-${nope.x}", text, sizeof text, &err), KILN_ESCRIPT);
    assert_non_null(strstr(err.msg, "field:1:"));
    assert_int_equal(
        render(f, "a-${(function() while true do end end)()}", text, sizeof text, &err),
        KILN_ELIMIT);
    assert_string_equal(rendered(f, "ok-${1}"), "\"ok-1\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_template__has_expr),
        cmocka_unit_test(test_template__whole_expression),
        cmocka_unit_test(test_template__splice_parts_and_columns),
        cmocka_unit_test(test_template__plain_text_is_one_literal),
        cmocka_unit_test(test_template__braces_in_strings_and_tables),
        cmocka_unit_test(test_template__errors_name_the_column),
        cmocka_unit_test_setup_teardown(test_template__whole_keeps_the_type, setup, lt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_template__splice_formats_numbers_like_lua, setup,
                                        lt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_template__splice_rejects_nil_and_tables, setup,
                                        lt_fx_teardown),
        cmocka_unit_test_setup_teardown(test_template__splice_propagates_script_errors, setup,
                                        lt_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
