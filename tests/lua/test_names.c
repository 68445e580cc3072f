/* Tests for lua/names.c: free and declared names of a chunk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lua/names.h"

/* Joins a name list with spaces into a static buffer. */
static const char *joined(char **names, size_t n)
{
    static char buf[2][512];
    static int which;
    char *b = buf[which ^= 1];
    b[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(b, " ");
        strcat(b, names[i]);
    }
    return b;
}

static void check(const char *src, const char *free_names, const char *declared)
{
    kiln_lua_names n;
    kiln_err err = {0};
    if (kiln_lua_scan_names(&n, src, &err) != 0)
        fail_msg("%s: %s", src, err.msg);
    if (strcmp(joined(n.free_names, n.nfree), free_names) != 0)
        fail_msg("%s: free names \"%s\", expected \"%s\"", src, joined(n.free_names, n.nfree),
                 free_names);
    if (strcmp(joined(n.declared, n.ndeclared), declared) != 0)
        fail_msg("%s: declared \"%s\", expected \"%s\"", src, joined(n.declared, n.ndeclared),
                 declared);
    kiln_lua_names_free(&n);
}

static void test_names__roots_not_fields(void **state)
{
    (void)state;
    check("deployment.spec.replicas", "deployment", "");
    check("a.b:c(d)", "a d", "");
    check("svc.status['x'] + svc.spec.y", "svc", "");
    check("x .. y", "x y", "");
    check("f(...)", "f", "");
}

static void test_names__strings_and_comments_are_skipped(void **state)
{
    (void)state;
    check("'deployment' .. \"svc\\\"x\" .. [[ a ]] .. [==[ b ]] ]==]", "", "");
    check("x -- comment y\n + z --[[ long\n w ]] + v --[==[ ]] u ]==]", "x z v", "");
}

static void test_names__table_keys_are_not_reads(void **state)
{
    (void)state;
    check("{name = a, labels = {app = b}; c = d, [e] = f}", "a b d e f", "");
    check("{x == y}", "x y", "");
    check("{ x }", "x", "");
}

static void test_names__keywords_and_numbers(void **state)
{
    (void)state;
    check("not a and b or nil == true", "a b", "");
    check("0xff + 1e10 + 3.5e-2 + 0x1p4 + 0x.8P-1 + .5 + e", "e", "");
    assert_true(kiln_lua_is_keyword("while"));
    assert_true(kiln_lua_is_keyword("goto"));
    assert_false(kiln_lua_is_keyword("schema"));
}

static void test_names__declarations(void **state)
{
    (void)state;
    check("local a, b <const> = x, y return a + b", "x y a b", "a b");
    check("local function f(p, q, ...) return p + g end", "p g", "f p q");
    check("function m.n:o(p) return self.q + p end", "m self p", "self p");
    check("for i = 1, n do s = s + i end", "n s i", "i");
    check("for k, v in pairs(t) do end", "pairs t", "k v");
    check("return (function(z) return z end)(w)", "z w", "z");
}

static void test_names__goto_labels_are_not_names(void **state)
{
    (void)state;
    check("::top:: if x then goto top end", "x", "");
}

static void test_names__has_free(void **state)
{
    (void)state;
    kiln_lua_names n;
    kiln_err err = {0};
    assert_int_equal(kiln_lua_scan_names(&n, "service.spec.clusterIP", &err), 0);
    assert_true(kiln_lua_names_has_free(&n, "service"));
    assert_false(kiln_lua_names_has_free(&n, "spec"));
    kiln_lua_names_free(&n);
}

static void test_names__unterminated_literals_name_line_and_column(void **state)
{
    (void)state;
    kiln_lua_names n;
    kiln_err err = {0};
    assert_int_equal(kiln_lua_scan_names(&n, "a +\n  'abc", &err), KILN_ESCRIPT);
    assert_string_equal(err.msg, "2:3: unfinished string");
    assert_int_equal(kiln_lua_scan_names(&n, "x .. [==[ abc ]=]", &err), KILN_ESCRIPT);
    assert_string_equal(err.msg, "1:6: unfinished long string");
    assert_int_equal(kiln_lua_scan_names(&n, "--[[ x", &err), KILN_ESCRIPT);
    assert_string_equal(err.msg, "1:1: unfinished long comment");
    assert_int_equal(kiln_lua_scan_names(&n, "'a\nb'", &err), KILN_ESCRIPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names__roots_not_fields),
        cmocka_unit_test(test_names__strings_and_comments_are_skipped),
        cmocka_unit_test(test_names__table_keys_are_not_reads),
        cmocka_unit_test(test_names__keywords_and_numbers),
        cmocka_unit_test(test_names__declarations),
        cmocka_unit_test(test_names__goto_labels_are_not_names),
        cmocka_unit_test(test_names__has_free),
        cmocka_unit_test(test_names__unterminated_literals_name_line_and_column),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
