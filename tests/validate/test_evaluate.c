#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "validate/evaluate.h"
#include "validate/measured.h"
#include "validate/simulate.h"
#include "validate/thresholds.h"
#include "validate_test.h"

static json_t *simulated(const char *accel, int gpus, const char *const *fail)
{
    json_t *doc = NULL;
    kiln_validate_sim_opts o = {"n1", NULL, gpus, NULL, fail};
    assert_int_equal(kiln_validate_simulate(&doc, vt_accel(accel), &o, NULL), 0);
    return doc;
}

static json_t *evaluate(const json_t *doc, const char *accel, int expect, const char *const *checks)
{
    json_t *report = NULL;
    kiln_err err = {0};
    kiln_validate_eval_opts o = {NULL, expect, checks};
    assert_int_equal(kiln_validate_evaluate(&report, doc, vt_accel(accel), &o, &err), 0);
    return report;
}

static json_t *check_of(const json_t *report, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(report, "checks"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
            return c;
    }
    fail_msg("no check %s in report", name);
    return NULL;
}

static const char *str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (!s)
        fail_msg("no string %s", key);
    return s;
}

/* The measured check entry called name (borrowed). */
static json_t *measured_check(json_t *doc, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(doc, "checks"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
            return c;
    }
    fail_msg("no measured check %s", name);
    return NULL;
}

/* The measurement metric/gpu of check (borrowed). */
static json_t *measurement(json_t *doc, const char *check, const char *metric, int gpu)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(measured_check(doc, check), "measurements"), i, m)
    {
        json_t *g = json_object_get(m, "gpu");
        if (strcmp(json_string_value(json_object_get(m, "metric")), metric) == 0 &&
            (gpu < 0 ? g == NULL : json_integer_value(g) == gpu))
            return m;
    }
    fail_msg("no measurement %s/%s/%d", check, metric, gpu);
    return NULL;
}

static void remove_check(json_t *doc, const char *name)
{
    json_t *checks = json_object_get(doc, "checks");
    for (size_t i = 0; i < json_array_size(checks); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(checks, i), "name")), name) ==
            0) {
            json_array_remove(checks, i);
            return;
        }
    fail_msg("no check %s to remove", name);
}

static void test_evaluate__healthy_simulated_node_passes(void **state)
{
    json_t *doc = simulated("h100", 8, NULL);
    json_t *r = evaluate(doc, "h100-sxm", 8, NULL);
    assert_string_equal(str(r, "result"), "passed");
    assert_int_equal(kiln_validate_report_exit_code(r), 0);
    assert_string_equal(str(r, "reason"), "6 checks passed on node n1");
    assert_string_equal(str(r, "node"), "n1");
    assert_string_equal(str(r, "accelerator"), "h100-sxm");
    assert_string_equal(str(r, "product"), "NVIDIA H100 80GB HBM3");
    assert_true(json_is_true(json_object_get(r, "simulated")));
    assert_int_equal(json_integer_value(json_object_get(r, "gpus")), 8);
    assert_int_equal(json_array_size(json_object_get(r, "checks")), 6);
    json_t *p2p = check_of(r, "p2p");
    assert_string_equal(str(p2p, "result"), "pass");
    assert_int_equal(json_integer_value(json_object_get(p2p, "passed")), 56);
    /* 8 GPUs x (count once + product, cc, memory, ECC, remap) */
    assert_int_equal(json_integer_value(json_object_get(check_of(r, "device"), "passed")), 41);
    json_decref(r);
    json_decref(doc);
}

static void test_evaluate__slow_gemm_fails_with_node_gpu_values(void **state)
{
    static const char *const fail[] = {"gemm", NULL};
    json_t *doc = simulated("h100", 8, fail);
    json_t *r = evaluate(doc, "h100", 8, NULL);
    assert_string_equal(str(r, "result"), "failed");
    assert_int_equal(json_integer_value(json_object_get(r, "exitCode")), 1);
    json_t *g = check_of(r, "gemm");
    assert_string_equal(str(g, "result"), "fail");
    /* The deciding verdict is the one furthest below its floor: 60% of floor
     * for both metrics, so the first one in thresholds order. */
    assert_string_equal(str(g, "metric"), "bf16Tflops");
    assert_int_equal(json_integer_value(json_object_get(g, "gpu")), 7);
    assert_true(json_number_value(json_object_get(g, "value")) == 296.7);
    assert_true(json_number_value(json_object_get(g, "threshold")) == 494.5);
    assert_string_equal(str(g, "op"), ">=");
    assert_string_equal(str(g, "unit"), "TFLOP/s");
    assert_string_equal(str(g, "reason"), "gemm on node n1 GPU 7: bf16Tflops measured 296.7 "
                                          "TFLOP/s, expected >= 494.5 TFLOP/s (0.5 x 989)");
    assert_int_equal(json_integer_value(json_object_get(g, "failed")), 2);
    assert_int_equal(json_integer_value(json_object_get(g, "passed")), 14);
    assert_string_equal(str(r, "reason"), str(g, "reason"));
    assert_string_equal(str(check_of(r, "hbm-bandwidth"), "result"), "pass");
    json_decref(r);
    json_decref(doc);
}

static void test_evaluate__smaller_card_is_judged_by_its_own_figures(void **state)
{
    json_t *doc = simulated("l40s", 2, NULL);
    json_t *r = evaluate(doc, "l40s", 2, NULL);
    assert_string_equal(str(r, "result"), "passed");
    json_decref(r);
    /* The same healthy L40S against H100 floors fails the device match and
     * every throughput check. */
    r = evaluate(doc, "h100", 2, NULL);
    assert_string_equal(str(r, "result"), "failed");
    json_t *d = check_of(r, "device");
    assert_string_equal(str(d, "result"), "fail");
    assert_string_equal(str(d, "metric"), "product");
    assert_string_equal(str(d, "reason"),
                        "device on node n1 GPU 0: product measured \"NVIDIA L40S\", expected to "
                        "contain \"H100 80GB HBM3\" or \"H100 SXM\"");
    assert_string_equal(str(check_of(r, "hbm-bandwidth"), "result"), "fail");
    assert_string_equal(str(check_of(r, "memory"), "result"), "pass");
    json_decref(r);
    json_decref(doc);
}

static void test_evaluate__missing_check_fails_closed(void **state)
{
    json_t *doc = simulated("h200", 1, NULL);
    remove_check(doc, "pcie");
    json_t *r = evaluate(doc, "h200", 0, NULL);
    json_t *p = check_of(r, "pcie");
    assert_string_equal(str(p, "result"), "fail");
    assert_string_equal(str(p, "reason"), "pcie on node n1: no result reported (missing data)");
    assert_string_equal(str(r, "result"), "failed");
    json_decref(r);
    json_decref(doc);
}

static void test_evaluate__missing_measurement_fails_closed(void **state)
{
    json_t *doc = simulated("h100", 2, NULL);
    json_t *list = json_object_get(measured_check(doc, "hbm-bandwidth"), "measurements");
    json_t *m = measurement(doc, "hbm-bandwidth", "triadGBps", 1);
    for (size_t i = 0; i < json_array_size(list); i++)
        if (json_array_get(list, i) == m)
            json_array_remove(list, i);
    json_t *r = evaluate(doc, "h100", 2, NULL);
    json_t *h = check_of(r, "hbm-bandwidth");
    assert_string_equal(str(h, "result"), "fail");
    assert_string_equal(str(h, "reason"), "hbm-bandwidth on node n1 GPU 1: triadGBps was not "
                                          "measured (missing data)");
    json_decref(r);
    json_decref(doc);
}

static void test_evaluate__non_numeric_value_fails(void **state)
{
    json_t *doc = simulated("h100", 1, NULL);
    json_object_set_new(measurement(doc, "pcie", "d2hGBps", 0), "value", json_string("fast"));
    json_t *r = evaluate(doc, "h100", 1, NULL);
    assert_string_equal(str(check_of(r, "pcie"), "reason"),
                        "pcie on node n1 GPU 0: d2hGBps has no numeric value");
    json_decref(r);
    json_decref(doc);
}

static void test_evaluate__error_and_skipped_statuses_fail(void **state)
{
    json_t *doc = simulated("h100", 1, NULL);
    kiln_validate_measured_set_status(measured_check(doc, "gemm"), "error",
                                      "GPU 0: cublasLtCreate: cuBLAS status 3");
    kiln_validate_measured_set_status(measured_check(doc, "memory"), "skipped", "not today");
    json_t *r = evaluate(doc, "h100", 1, NULL);
    assert_string_equal(str(check_of(r, "gemm"), "reason"),
                        "gemm on node n1: error: GPU 0: cublasLtCreate: cuBLAS status 3");
    assert_string_equal(str(check_of(r, "memory"), "reason"),
                        "memory on node n1: was skipped (not today), but a requested check must "
                        "run");
    assert_string_equal(str(check_of(r, "memory"), "result"), "fail");
    assert_string_equal(str(r, "reason"),
                        "memory on node n1: was skipped (not today), but a requested check must "
                        "run (and more failures)");
    json_decref(r);
    json_decref(doc);
}

static void test_evaluate__p2p_on_one_gpu_is_a_skip_not_a_pass(void **state)
{
    json_t *doc = simulated("a100", 1, NULL);
    json_t *r = evaluate(doc, "a100", 1, NULL);
    json_t *p = check_of(r, "p2p");
    assert_string_equal(str(p, "result"), "skip");
    assert_string_equal(str(p, "reason"), "p2p on node n1: skipped: 1 GPU, no pair to measure");
    assert_int_equal(json_integer_value(json_object_get(p, "passed")), 0);
    assert_string_equal(str(r, "result"), "passed");
    assert_string_equal(str(r, "reason"), "5 checks passed, 1 skipped on node n1");
    json_decref(r);

    /* Nothing but skips is not a pass. */
    static const char *const only_p2p[] = {"p2p", NULL};
    r = evaluate(doc, "a100", 1, only_p2p);
    assert_string_equal(str(r, "result"), "failed");
    assert_string_equal(str(r, "reason"), "no requested check passed on node n1 (1 skipped)");
    assert_int_equal(kiln_validate_report_exit_code(r), 1);
    json_decref(r);
    json_decref(doc);
}

static void test_evaluate__missing_ecc_counter_is_skipped_metric(void **state)
{
    json_t *doc = simulated("l40s", 1, NULL);
    json_t *list = json_object_get(measured_check(doc, "device"), "measurements");
    json_t *m = measurement(doc, "device", "eccUncorrected", 0);
    for (size_t i = 0; i < json_array_size(list); i++)
        if (json_array_get(list, i) == m)
            json_array_remove(list, i);
    kiln_validate_measured_skip(measured_check(doc, "device"), "eccUncorrected", 0,
                                "ECC is disabled on this GPU");
    json_t *r = evaluate(doc, "l40s", 1, NULL);
    json_t *d = check_of(r, "device");
    assert_string_equal(str(d, "result"), "pass");
    assert_int_equal(json_integer_value(json_object_get(d, "skipped")), 1);
    json_t *v = json_array_get(json_object_get(d, "verdicts"), 4);
    assert_string_equal(str(v, "metric"), "eccUncorrected");
    assert_string_equal(str(v, "result"), "skip");
    assert_string_equal(str(v, "reason"),
                        "device on node n1 GPU 0: eccUncorrected skipped: ECC is disabled on this "
                        "GPU");
    json_decref(r);
    json_decref(doc);
}

static void test_evaluate__device_count_and_ecc(void **state)
{
    static const char *const fail[] = {"device", NULL};
    json_t *doc = simulated("h100", 4, fail);
    json_t *r = evaluate(doc, "h100", 8, NULL);
    json_t *d = check_of(r, "device");
    assert_string_equal(str(d, "result"), "fail");
    assert_int_equal(json_integer_value(json_object_get(d, "failed")), 2);
    json_t *verdicts = json_object_get(d, "verdicts");
    assert_string_equal(str(json_array_get(verdicts, 0), "reason"),
                        "device on node n1: count measured 4, expected == 8");
    bool saw_ecc = false;
    size_t i;
    json_t *v;
    json_array_foreach(verdicts, i, v)
    {
        if (strcmp(str(v, "metric"), "eccUncorrected") == 0 &&
            strcmp(str(v, "result"), "fail") == 0) {
            assert_string_equal(
                str(v, "reason"),
                "device on node n1 GPU 3: eccUncorrected measured 2, expected <= 0");
            saw_ecc = true;
        }
    }
    assert_true(saw_ecc);
    json_decref(r);
    json_decref(doc);
}

static void test_evaluate__planted_memory_error_fails(void **state)
{
    static const char *const fail[] = {"memory", NULL};
    json_t *doc = simulated("b200", 2, fail);
    json_t *r = evaluate(doc, "b200", 2, NULL);
    assert_string_equal(str(check_of(r, "memory"), "reason"),
                        "memory on node n1 GPU 1: mismatches measured 3, expected <= 0");
    json_decref(r);
    json_decref(doc);
}

static void test_evaluate__slow_p2p_pair_is_named(void **state)
{
    static const char *const fail[] = {"p2p", NULL};
    json_t *doc = simulated("h200", 4, fail);
    json_t *r = evaluate(doc, "h200", 4, NULL);
    json_t *p = check_of(r, "p2p");
    assert_string_equal(str(p, "result"), "fail");
    assert_int_equal(json_integer_value(json_object_get(p, "gpu")), 3);
    assert_int_equal(json_integer_value(json_object_get(p, "peer")), 0);
    assert_string_equal(str(p, "reason"), "p2p on node n1 GPU 3->0: peerGBps measured 180 GB/s, "
                                          "expected >= 300 GB/s (0.8 x 375)");
    json_decref(r);
    json_decref(doc);
}

static void test_evaluate__run_error_fails_every_requested_check(void **state)
{
    json_t *doc = kiln_validate_measured_new("n2", "h100-sxm", "h100", false);
    json_object_set_new(doc, "error", json_string("no CUDA device"));
    static const char *const two[] = {"gemm", "device", NULL};
    json_t *r = evaluate(doc, "h100", 0, two);
    assert_int_equal(json_array_size(json_object_get(r, "checks")), 2);
    /* Canonical order, whatever order was asked for. */
    assert_string_equal(str(json_array_get(json_object_get(r, "checks"), 0), "name"), "device");
    assert_string_equal(str(check_of(r, "gemm"), "reason"),
                        "gemm on node n2: could not run: no CUDA device");
    assert_string_equal(str(r, "result"), "failed");
    json_decref(r);
    json_decref(doc);
}

static void test_evaluate__no_gpus_fails(void **state)
{
    json_t *doc = kiln_validate_measured_new("n3", "h100-sxm", NULL, false);
    kiln_validate_measured_add_check(doc, "memory");
    static const char *const mem[] = {"memory", NULL};
    json_t *r = evaluate(doc, "h100", 0, mem);
    assert_string_equal(str(check_of(r, "memory"), "reason"), "memory on node n3: no GPU found");
    assert_int_equal(kiln_validate_report_exit_code(r), 1);
    json_decref(r);
    json_decref(doc);
}

static void test_evaluate__not_an_object_fails_closed(void **state)
{
    json_t *doc = json_string("garbage");
    json_t *r = evaluate(doc, "h100", 0, NULL);
    assert_string_equal(str(r, "result"), "failed");
    assert_string_equal(str(check_of(r, "device"), "reason"),
                        "device on node (unnamed): could not run: measured results are not a JSON "
                        "object");
    json_decref(r);
    json_decref(doc);
}

static void test_evaluate__bad_arguments(void **state)
{
    json_t *doc = simulated("h100", 1, NULL);
    json_t *r = NULL;
    kiln_err err = {0};
    static const char *const bad[] = {"gemm", "fp8", NULL};
    kiln_validate_eval_opts o = {NULL, 0, bad};
    assert_int_equal(kiln_validate_evaluate(&r, doc, vt_accel("h100"), &o, &err), KILN_EINVAL);
    assert_null(r);
    assert_string_equal(err.msg, "unknown check \"fp8\" (expected device, memory, hbm-bandwidth, "
                                 "gemm, pcie or p2p)");
    assert_int_equal(kiln_validate_evaluate(&r, doc, NULL, NULL, &err), KILN_EINVAL);
    assert_string_equal(err.msg, "evaluate: the thresholds entry is missing");
    json_decref(doc);
}

static void test_evaluate__error_report(void **state)
{
    json_t *r = kiln_validate_report_error("n4", NULL, false, "no CUDA device visible");
    assert_string_equal(str(r, "result"), "error");
    assert_int_equal(kiln_validate_report_exit_code(r), 2);
    assert_string_equal(str(r, "reason"), "no CUDA device visible");
    assert_null(json_object_get(r, "accelerator"));
    json_decref(r);
    json_t *junk = json_object();
    assert_int_equal(kiln_validate_report_exit_code(junk), 2);
    json_decref(junk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evaluate__healthy_simulated_node_passes),
        cmocka_unit_test(test_evaluate__slow_gemm_fails_with_node_gpu_values),
        cmocka_unit_test(test_evaluate__smaller_card_is_judged_by_its_own_figures),
        cmocka_unit_test(test_evaluate__missing_check_fails_closed),
        cmocka_unit_test(test_evaluate__missing_measurement_fails_closed),
        cmocka_unit_test(test_evaluate__non_numeric_value_fails),
        cmocka_unit_test(test_evaluate__error_and_skipped_statuses_fail),
        cmocka_unit_test(test_evaluate__p2p_on_one_gpu_is_a_skip_not_a_pass),
        cmocka_unit_test(test_evaluate__missing_ecc_counter_is_skipped_metric),
        cmocka_unit_test(test_evaluate__device_count_and_ecc),
        cmocka_unit_test(test_evaluate__planted_memory_error_fails),
        cmocka_unit_test(test_evaluate__slow_p2p_pair_is_named),
        cmocka_unit_test(test_evaluate__run_error_fails_every_requested_check),
        cmocka_unit_test(test_evaluate__no_gpus_fails),
        cmocka_unit_test(test_evaluate__not_an_object_fails_closed),
        cmocka_unit_test(test_evaluate__bad_arguments),
        cmocka_unit_test(test_evaluate__error_report),
    };
    return cmocka_run_group_tests(tests, vt_setup, vt_teardown);
}
