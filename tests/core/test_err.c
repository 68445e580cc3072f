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
        cmocka_unit_test(test_buf__limit_is_enforced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
