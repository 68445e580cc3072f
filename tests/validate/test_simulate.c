#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "validate/measured.h"
#include "validate/simulate.h"
#include "validate/thresholds.h"
#include "validate_test.h"

static json_t *check_named(const json_t *doc, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(doc, "checks"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
            return c;
    }
    return NULL;
}

static double value_of(const json_t *doc, const char *check, const char *metric, int gpu, int peer)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(check_named(doc, check), "measurements"), i, m)
    {
        json_t *g = json_object_get(m, "gpu"), *p = json_object_get(m, "peer");
        if (strcmp(json_string_value(json_object_get(m, "metric")), metric) == 0 &&
            (g ? json_integer_value(g) : -1) == gpu && (p ? json_integer_value(p) : -1) == peer)
            return json_number_value(json_object_get(m, "value"));
    }
    fail_msg("no %s/%s gpu %d peer %d", check, metric, gpu, peer);
    return -1;
}

static void test_simulate__figures_come_from_thresholds(void **state)
{
    const kiln_threshold_accel *h100 = vt_accel("h100");
    json_t *doc = NULL;
    kiln_validate_sim_opts o = {"sim-1", "h100", 2, NULL, NULL};
    assert_int_equal(kiln_validate_simulate(&doc, h100, &o, NULL), 0);
    assert_true(json_is_true(json_object_get(doc, "simulated")));
    assert_string_equal(json_string_value(json_object_get(doc, "node")), "sim-1");
    assert_string_equal(json_string_value(json_object_get(doc, "accelerator")), "h100-sxm");
    assert_string_equal(json_string_value(json_object_get(doc, "acceleratorRequested")), "h100");
    assert_string_equal(json_string_value(json_object_get(doc, "kind")), "kiln-gpucheck");
    assert_int_equal(json_array_size(json_object_get(doc, "gpus")), 2);
    assert_int_equal(json_array_size(json_object_get(doc, "checks")), 6);
    /* achievable x typical, 0.2% lower per GPU index */
    assert_true(value_of(doc, "hbm-bandwidth", "copyGBps", 0, -1) == 2814);
    assert_true(value_of(doc, "hbm-bandwidth", "copyGBps", 1, -1) == 2808.37);
    assert_true(value_of(doc, "gemm", "bf16Tflops", 0, -1) == 781.31);
    assert_true(value_of(doc, "p2p", "peerGBps", 1, 0) == 366.77);
    assert_true(value_of(doc, "device", "count", -1, -1) == 2);
    assert_true(value_of(doc, "memory", "mismatches", 1, -1) == 0);
    json_decref(doc);
}

static void test_simulate__is_deterministic(void **state)
{
    const kiln_threshold_accel *b200 = vt_accel("b200");
    json_t *a = NULL, *b = NULL;
    kiln_validate_sim_opts o = {"x", NULL, 8, NULL, NULL};
    assert_int_equal(kiln_validate_simulate(&a, b200, &o, NULL), 0);
    assert_int_equal(kiln_validate_simulate(&b, b200, &o, NULL), 0);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
}

static void test_simulate__failing_checks_hit_the_last_gpu(void **state)
{
    const kiln_threshold_accel *h200 = vt_accel("h200");
    static const char *const fail[] = {"pcie", "memory", NULL};
    json_t *doc = NULL;
    kiln_validate_sim_opts o = {NULL, NULL, 3, NULL, fail};
    assert_int_equal(kiln_validate_simulate(&doc, h200, &o, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "node")), "simulated-node");
    /* 60% of the floor: 53 x 0.75 x 0.6 */
    assert_true(value_of(doc, "pcie", "h2dGBps", 2, -1) == 23.85);
    assert_true(value_of(doc, "pcie", "h2dGBps", 1, -1) > 39.75);
    assert_true(value_of(doc, "memory", "mismatches", 2, -1) == 3);
    assert_true(value_of(doc, "memory", "mismatches", 0, -1) == 0);
    json_decref(doc);
}

static void test_simulate__selected_checks_only_and_single_gpu_p2p_skips(void **state)
{
    const kiln_threshold_accel *l40s = vt_accel("l40s");
    static const char *const checks[] = {"p2p", "gemm", NULL};
    json_t *doc = NULL;
    kiln_validate_sim_opts o = {NULL, NULL, 0, checks, NULL};
    assert_int_equal(kiln_validate_simulate(&doc, l40s, &o, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "checks")), 2);
    assert_null(check_named(doc, "device"));
    json_t *p2p = check_named(doc, "p2p");
    assert_string_equal(json_string_value(json_object_get(p2p, "status")), "skipped");
    assert_string_equal(json_string_value(json_object_get(p2p, "reason")),
                        "1 GPU: no pair to measure");
    json_decref(doc);
}

static void test_simulate__bad_options(void **state)
{
    const kiln_threshold_accel *h100 = vt_accel("h100");
    json_t *doc = NULL;
    kiln_err err = {0};
    kiln_validate_sim_opts o = {NULL, NULL, 65, NULL, NULL};
    assert_int_equal(kiln_validate_simulate(&doc, h100, &o, &err), KILN_EINVAL);
    assert_string_equal(err.msg, "simulate: 65 GPUs is outside 1..64");
    static const char *const bad[] = {"gemm", "tensor", NULL};
    kiln_validate_sim_opts o2 = {NULL, NULL, 1, NULL, bad};
    assert_int_equal(kiln_validate_simulate(&doc, h100, &o2, &err), KILN_EINVAL);
    assert_string_equal(err.msg, "simulate: unknown check \"tensor\" in --simulate-fail (expected "
                                 "device, memory, hbm-bandwidth, gemm, pcie or p2p)");
    assert_int_equal(kiln_validate_simulate(&doc, NULL, NULL, &err), KILN_EINVAL);
    assert_null(doc);
}

static void test_measured__nan_has_no_value(void **state)
{
    json_t *doc = kiln_validate_measured_new("n", NULL, NULL, false);
    json_t *c = kiln_validate_measured_add_check(doc, "gemm");
    kiln_validate_measured_value(c, "bf16Tflops", 0, -1, 0.0 / 0.0, "TFLOP/s");
    kiln_validate_measured_value(c, "fp32Tflops", 0, -1, 12.345, "TFLOP/s");
    json_t *list = json_object_get(c, "measurements");
    assert_null(json_object_get(json_array_get(list, 0), "value"));
    assert_true(json_real_value(json_object_get(json_array_get(list, 1), "value")) == 12.35);
    assert_null(json_object_get(doc, "accelerator"));
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simulate__figures_come_from_thresholds),
        cmocka_unit_test(test_simulate__is_deterministic),
        cmocka_unit_test(test_simulate__failing_checks_hit_the_last_gpu),
        cmocka_unit_test(test_simulate__selected_checks_only_and_single_gpu_p2p_skips),
        cmocka_unit_test(test_simulate__bad_options),
        cmocka_unit_test(test_measured__nan_has_no_value),
    };
    return cmocka_run_group_tests(tests, vt_setup, vt_teardown);
}
