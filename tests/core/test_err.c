#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"

static void test_err__prefix_adds_context(void **state)
{
    kiln_err err;
    assert_int_equal(kiln_err_set(&err, KILN_EINVAL, "expected integer, got %s", "string"),
                     KILN_EINVAL);
    kiln_err_prefix(&err, "resources[%d].template.spec.replicas", 2);
    assert_int_equal(err.code, KILN_EINVAL);
    assert_string_equal(err.msg,
                        "resources[2].template.spec.replicas: expected integer, got string");
    assert_string_equal(kiln_err_name(KILN_ELIMIT), "ELIMIT");
}

static void test_err__null_err_is_allowed(void **state)
{
    assert_int_equal(kiln_err_set(NULL, KILN_EIO, "x"), KILN_EIO);
    kiln_err_prefix(NULL, "y");
}

static void test_errs__collects_in_order(void **state)
{
    kiln_errs errs = {0};
    kiln_errs_add(&errs, KILN_EINVAL, "first");
    kiln_errs_add(&errs, KILN_ESCRIPT, "second %d", 2);
    assert_int_equal(errs.len, 2);
    assert_int_equal(kiln_errs_code(&errs), KILN_EINVAL);
    assert_string_equal(errs.items[1].msg, "second 2");
    kiln_errs_free(&errs);
    assert_int_equal(kiln_errs_code(&errs), 0);
}

static int add_at(kiln_errs *errs, int code, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = kiln_errs_vadd_at(errs, code, path, fmt, ap);
    va_end(ap);
    return rc;
}

static void test_errs__add_at_prefixes_the_path_and_cuts_the_whole(void **state)
{
    kiln_errs errs = {0};
    char path[KILN_ERR_MSG_MAX + 44];
    memset(path, 'p', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    assert_int_equal(add_at(&errs, KILN_EINVAL, "spec.replicas", "expected %s", "integer"),
                     KILN_EINVAL);
    assert_int_equal(add_at(&errs, KILN_ELIMIT, "", "no path"), KILN_ELIMIT);
    assert_int_equal(add_at(&errs, KILN_EINVAL, NULL, "null path"), KILN_EINVAL);
    assert_int_equal(add_at(&errs, KILN_EINVAL, path, "lost"), KILN_EINVAL);
    /* "x" then a 2-byte character cut after its first byte at the limit. */
    assert_int_equal(add_at(&errs, KILN_EINVAL, "a", "%.*s\xc3\xa9", KILN_ERR_MSG_MAX - 5, path),
                     KILN_EINVAL);
    assert_int_equal(errs.len, 5);
    assert_string_equal(errs.items[0].msg, "spec.replicas: expected integer");
    assert_int_equal(errs.items[1].code, KILN_ELIMIT);
    assert_string_equal(errs.items[1].msg, "no path");
    assert_string_equal(errs.items[2].msg, "null path");
    assert_int_equal(strlen(errs.items[3].msg), KILN_ERR_MSG_MAX - 1);
    assert_int_equal(errs.items[3].msg[0], 'p');
    assert_int_equal(strlen(errs.items[4].msg), KILN_ERR_MSG_MAX - 1);
    assert_int_equal(errs.items[4].msg[KILN_ERR_MSG_MAX - 2], '?');
    kiln_errs_free(&errs);
    /* Without a list it only answers the code. */
    assert_int_equal(add_at(NULL, KILN_ENOTFOUND, "x", "y"), KILN_ENOTFOUND);
}

static void test_buf__limit_is_enforced(void **state)
{
    kiln_buf b;
    kiln_err err;
    kiln_buf_init(&b, 8);
    assert_int_equal(kiln_buf_puts(&b, "12345678", &err), 0);
    assert_int_equal(kiln_buf_puts(&b, "9", &err), KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "limit of 8 bytes"));
    assert_string_equal(b.data, "12345678");
    kiln_buf_reset(&b);
    assert_int_equal(kiln_buf_printf(&b, &err, "%d-%s", 42, "x"), 0);
    assert_string_equal(b.data, "42-x");
    kiln_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err__prefix_adds_context),
        cmocka_unit_test(test_err__null_err_is_allowed),
        cmocka_unit_test(test_errs__collects_in_order),
        cmocka_unit_test(test_errs__add_at_prefixes_the_path_and_cuts_the_whole),
        cmocka_unit_test(test_buf__limit_is_enforced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
