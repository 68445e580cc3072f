/* tests/validate/validate_test.h: shared helpers of the validate/ tests: the
 * built-in thresholds catalog, loaded once per test group. Header-only so each
 * test stays one executable. */
#ifndef KILN_TESTS_VALIDATE_TEST_H
#define KILN_TESTS_VALIDATE_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "validate/thresholds.h"

/* The catalog of the running group (borrowed). */
static inline kiln_thresholds *vt_catalog(void)
{
    static kiln_thresholds cat;
    return &cat;
}

/* Group setup and teardown: load the built-in catalog, free it. */
static inline int vt_setup(void **state)
{
    return kiln_thresholds_load_builtin(vt_catalog(), NULL);
}

static inline int vt_teardown(void **state)
{
    kiln_thresholds_free(vt_catalog());
    return 0;
}

/* The accelerator called name in the catalog (borrowed); fails the test when
 * there is none. */
static inline const kiln_threshold_accel *vt_accel(const char *name)
{
    const kiln_threshold_accel *a = kiln_thresholds_find(vt_catalog(), name);
    assert_non_null(a);
    return a;
}

#endif
