#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate/evaluate.h"
#include "validate/jstr.h"
#include "validate/simulate.h"
#include "validate/summary.h"
#include "validate/thresholds.h"
#include "validate_test.h"

/* A report for a simulated node; node may be long, fail may be NULL. */
static json_t *report_for(const char *accel, const char *node, int gpus, const char *const *fail)
{
    const kiln_threshold_accel *a = vt_accel(accel);
    json_t *doc = NULL, *r = NULL;
    kiln_validate_sim_opts so = {node, NULL, gpus, NULL, fail};
    assert_int_equal(kiln_validate_simulate(&doc, a, &so, NULL), 0);
    kiln_validate_eval_opts eo = {NULL, gpus, NULL};
    assert_int_equal(kiln_validate_evaluate(&r, doc, a, &eo, NULL), 0);
    json_decref(doc);
    return r;
}

static char *summary_of(const json_t *report)
{
    char *s = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_validate_summary_build(&s, report, &err), 0);
    assert_true(strlen(s) <= KILN_VALIDATE_SUMMARY_MAX);
    return s;
}

static json_t *parse_ok(const char *msg, const kiln_validate_expect *expect)
{
    json_t *node = NULL;
    kiln_err err = {0};
    int rc = kiln_validate_summary_parse(&node, msg, strlen(msg), expect, &err);
    if (rc)
        fail_msg("parse failed: %s", err.msg);
    return node;
}

static void parse_err(const char *msg, size_t len, int code, const char *want)
{
    json_t *node = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_validate_summary_parse(&node, msg, len, NULL, &err), code);
    assert_null(node);
    if (!strstr(err.msg, want))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, want);
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    if (!s)
        fail_msg("no string %s", k);
    return s;
}

static void test_summary__passing_node_round_trips(void **state)
{
    json_t *r = report_for("h100", "gpu-node-1", 8, NULL);
    char *s = summary_of(r);
    assert_non_null(
        strstr(s, "{\"kiln\":\"gpucheck\",\"schemaVersion\":1,\"node\":\"gpu-node-1\""));
    assert_null(strstr(s, "verdicts"));
    static const char *const all[] = {"device", "memory", "hbm-bandwidth", "gemm", "pcie",
                                      "p2p",    NULL};
    kiln_validate_expect ex = {"gpu-node-1", all};
    json_t *n = parse_ok(s, &ex);
    assert_string_equal(str(n, "name"), "gpu-node-1");
    assert_string_equal(str(n, "accelerator"), "h100-sxm");
    assert_string_equal(str(n, "product"), "NVIDIA H100 80GB HBM3");
    assert_string_equal(str(n, "result"), "passed");
    assert_true(json_is_true(json_object_get(n, "passed")));
    assert_true(json_is_true(json_object_get(n, "simulated")));
    assert_int_equal(json_integer_value(json_object_get(n, "gpus")), 8);
    json_t *checks = json_object_get(n, "checks");
    assert_int_equal(json_array_size(checks), 6);
    json_t *hbm = json_array_get(checks, 2);
    assert_string_equal(str(hbm, "name"), "hbm-bandwidth");
    assert_string_equal(str(hbm, "result"), "pass");
    assert_string_equal(str(hbm, "unit"), "GB/s");
    assert_true(json_number_value(json_object_get(hbm, "threshold")) == 2512.5);
    assert_true(json_number_value(json_object_get(hbm, "value")) > 2512.5);
    free(s);
    json_decref(n);
    json_decref(r);
}

static void test_summary__failing_node_keeps_value_threshold_and_reason(void **state)
{
    static const char *const fail[] = {"hbm-bandwidth", NULL};
    json_t *r = report_for("a100", "gpu-node-2", 2, fail);
    char *s = summary_of(r);
    json_t *n = parse_ok(s, NULL);
    assert_false(json_is_true(json_object_get(n, "passed")));
    assert_string_equal(str(n, "result"), "failed");
    json_t *hbm = json_array_get(json_object_get(n, "checks"), 2);
    assert_string_equal(str(hbm, "result"), "fail");
    assert_string_equal(str(hbm, "metric"), "copyGBps");
    assert_int_equal(json_integer_value(json_object_get(hbm, "gpu")), 1);
    assert_true(json_number_value(json_object_get(hbm, "value")) == 917.55);
    assert_true(json_number_value(json_object_get(hbm, "threshold")) == 1529.25);
    assert_string_equal(str(hbm, "reason"),
                        "hbm-bandwidth on node gpu-node-2 GPU 1: copyGBps measured 917.55 GB/s, "
                        "expected >= 1529.25 GB/s (0.75 x 2039)");
    assert_string_equal(str(n, "reason"), str(hbm, "reason"));
    free(s);
    json_decref(n);
    json_decref(r);
}

static void test_summary__long_names_stay_under_4096_bytes(void **state)
{
    char node[300];
    memset(node, 'n', sizeof(node) - 1);
    node[sizeof(node) - 1] = '\0';
    static const char *const fail[] = {"device", "memory", "hbm-bandwidth", "gemm", "pcie",
                                       "p2p",    NULL};
    json_t *r = report_for("h100", node, 64, fail);
    char *s = summary_of(r);
    json_t *n = parse_ok(s, NULL);
    assert_string_equal(str(n, "result"), "failed");
    assert_int_equal(json_array_size(json_object_get(n, "checks")), 6);
    free(s);
    json_decref(n);

    /* Reasons far beyond the limit are cut, and the summary says so. */
    json_t *checks = json_object_get(r, "checks");
    char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (size_t i = 0; i < json_array_size(checks); i++)
        json_object_set_new(json_array_get(checks, i), "reason", json_string(big));
    json_object_set_new(r, "reason", json_string(big));
    s = summary_of(r);
    assert_non_null(strstr(s, "\"truncated\":true"));
    n = parse_ok(s, NULL);
    assert_int_equal(json_array_size(json_object_get(n, "checks")), 6);
    free(s);
    json_decref(n);
    json_decref(r);
}

static void test_summary__error_report_parses_as_not_passed(void **state)
{
    json_t *r = kiln_validate_report_error("gpu-node-3", "h100-sxm", false,
                                           "no usable CUDA device: cudaGetDeviceCount: no "
                                           "CUDA-capable device is detected");
    char *s = summary_of(r);
    assert_string_equal(s, "{\"kiln\":\"gpucheck\",\"schemaVersion\":1,\"node\":\"gpu-node-3\","
                           "\"accelerator\":\"h100-sxm\",\"simulated\":false,\"result\":\"error\","
                           "\"exitCode\":2,\"gpus\":0,\"reason\":\"no usable CUDA device: "
                           "cudaGetDeviceCount: no CUDA-capable device is detected\","
                           "\"checks\":[]}");
    json_t *n = parse_ok(s, NULL);
    assert_false(json_is_true(json_object_get(n, "passed")));
    assert_string_equal(str(n, "result"), "error");
    assert_string_equal(str(n, "reason"), "no usable CUDA device: cudaGetDeviceCount: no "
                                          "CUDA-capable device is detected");
    free(s);
    json_decref(n);
    json_decref(r);
}

static void test_summary__bad_messages_are_rejected(void **state)
{
    parse_err("", 0, KILN_ENOTFOUND, "left no termination message");
    parse_err(" \n", 2, KILN_ENOTFOUND, "left no termination message");
    parse_err(NULL, 0, KILN_ENOTFOUND, "left no termination message");

    char *big = malloc(5000);
    memset(big, ' ', 5000);
    big[0] = '{';
    parse_err(big, 5000, KILN_ELIMIT,
              "termination message is 5000 bytes, over the 4096-byte "
              "limit");
    free(big);

    json_t *r = report_for("h100", "n", 1, NULL);
    char *s = summary_of(r);
    parse_err(s, strlen(s) / 2, KILN_EINVAL, "termination message is not valid JSON (truncated?)");
    free(s);
    json_decref(r);

    const char *other = "{\"kiln\":\"other\",\"schemaVersion\":1}";
    parse_err(other, strlen(other), KILN_EINVAL, "is not a kiln-gpucheck summary");
    const char *arr = "[1,2]";
    parse_err(arr, strlen(arr), KILN_EINVAL, "is not a kiln-gpucheck summary");
    const char *v2 = "{\"kiln\":\"gpucheck\",\"schemaVersion\":2}";
    parse_err(v2, strlen(v2), KILN_EINVAL, "schemaVersion other is not supported (expected 1)");
    const char *nonode = "{\"kiln\":\"gpucheck\",\"schemaVersion\":1}";
    parse_err(nonode, strlen(nonode), KILN_EINVAL, "termination message: node: missing");
    const char *code = "{\"kiln\":\"gpucheck\",\"schemaVersion\":1,\"node\":\"n\",\"result\":"
                       "\"passed\",\"exitCode\":1,\"simulated\":false,\"gpus\":1,\"checks\":[]}";
    parse_err(code, strlen(code), KILN_EINVAL, "exitCode does not match result \"passed\"");
    const char *dup = "{\"kiln\":\"gpucheck\",\"schemaVersion\":1,\"node\":\"n\",\"result\":"
                      "\"passed\",\"exitCode\":0,\"simulated\":false,\"gpus\":1,\"checks\":["
                      "{\"name\":\"gemm\",\"result\":\"pass\"},{\"name\":\"gemm\",\"result\":"
                      "\"pass\"}]}";
    parse_err(dup, strlen(dup), KILN_EINVAL, "check gemm is reported twice");
    const char *badcheck = "{\"kiln\":\"gpucheck\",\"schemaVersion\":1,\"node\":\"n\",\"result\":"
                           "\"passed\",\"exitCode\":0,\"simulated\":false,\"gpus\":1,\"checks\":["
                           "{\"name\":\"fp8\",\"result\":\"pass\"}]}";
    parse_err(badcheck, strlen(badcheck), KILN_EINVAL, "checks[0].name: unknown check \"fp8\"");
    const char *badresult = "{\"kiln\":\"gpucheck\",\"schemaVersion\":1,\"node\":\"n\",\"result\":"
                            "\"passed\",\"exitCode\":0,\"simulated\":false,\"gpus\":1,\"checks\":"
                            "[{\"name\":\"gemm\",\"result\":\"ok\"}]}";
    parse_err(badresult, strlen(badresult), KILN_EINVAL,
              "checks[0] (gemm).result: expected pass, fail or skip");
    const char *dupkey = "{\"kiln\":\"gpucheck\",\"kiln\":\"gpucheck\"}";
    parse_err(dupkey, strlen(dupkey), KILN_EINVAL, "not valid JSON");
}

static void test_summary__node_must_match(void **state)
{
    json_t *r = report_for("h100", "gpu-a", 1, NULL);
    char *s = summary_of(r);
    json_t *n = NULL;
    kiln_err err = {0};
    kiln_validate_expect ex = {"gpu-b", NULL};
    assert_int_equal(kiln_validate_summary_parse(&n, s, strlen(s), &ex, &err), KILN_EINVAL);
    assert_string_equal(err.msg, "termination message is from node \"gpu-a\", expected \"gpu-b\"");
    free(s);
    json_decref(r);
}

static void test_summary__claimed_pass_is_not_trusted(void **state)
{
    const char *liar = "{\"kiln\":\"gpucheck\",\"schemaVersion\":1,\"node\":\"n\",\"result\":"
                       "\"passed\",\"exitCode\":0,\"simulated\":false,\"gpus\":1,\"checks\":["
                       "{\"name\":\"gemm\",\"result\":\"fail\",\"reason\":\"gemm slow\"},"
                       "{\"name\":\"pcie\",\"result\":\"pass\"}]}";
    json_t *n = parse_ok(liar, NULL);
    assert_false(json_is_true(json_object_get(n, "passed")));
    assert_string_equal(str(n, "result"), "failed");
    assert_string_equal(str(n, "reason"), "gemm slow");
    json_decref(n);

    const char *skips = "{\"kiln\":\"gpucheck\",\"schemaVersion\":1,\"node\":\"n\",\"result\":"
                        "\"passed\",\"exitCode\":0,\"simulated\":false,\"gpus\":1,\"checks\":["
                        "{\"name\":\"p2p\",\"result\":\"skip\"}]}";
    n = parse_ok(skips, NULL);
    assert_false(json_is_true(json_object_get(n, "passed")));
    assert_string_equal(str(n, "reason"), "node n: no check passed");
    json_decref(n);
}

static void test_summary__missing_requested_check_fails(void **state)
{
    json_t *r = report_for("h100", "gpu-c", 1, NULL);
    json_t *checks = json_object_get(r, "checks");
    json_array_remove(checks, 3); /* gemm */
    char *s = summary_of(r);
    static const char *const want[] = {"gemm", "pcie", NULL};
    kiln_validate_expect ex = {NULL, want};
    json_t *n = parse_ok(s, &ex);
    assert_false(json_is_true(json_object_get(n, "passed")));
    assert_string_equal(str(n, "result"), "failed");
    json_t *last = json_array_get(json_object_get(n, "checks"),
                                  json_array_size(json_object_get(n, "checks")) - 1);
    assert_string_equal(str(last, "name"), "gemm");
    assert_string_equal(str(last, "result"), "fail");
    assert_string_equal(str(n, "reason"),
                        "gemm on node gpu-c: no result in the termination message (missing data)");
    free(s);
    json_decref(n);
    json_decref(r);
}

static void test_summary__build_rejects_non_reports(void **state)
{
    char *s = NULL;
    kiln_err err = {0};
    json_t *junk = json_pack("{s:i}", "x", 1);
    assert_int_equal(kiln_validate_summary_build(&s, junk, &err), KILN_EINVAL);
    assert_null(s);
    assert_string_equal(err.msg, "summary: not a validation report");
    json_decref(junk);
}

static void test_jstr__cut_utf8_keeps_the_valid_prefix(void **state)
{
    json_t *j = kiln_validate_jstr("ab\xc3");
    assert_string_equal(json_string_value(j), "ab");
    json_decref(j);
    j = kiln_validate_jstr("\xe2\x82\xac ok");
    assert_string_equal(json_string_value(j), "\xe2\x82\xac ok");
    json_decref(j);
    j = kiln_validate_jstr_max("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 7);
    assert_string_equal(json_string_value(j), "\xe2\x82\xac...");
    json_decref(j);
    j = kiln_validate_jstr_max("short", 10);
    assert_string_equal(json_string_value(j), "short");
    json_decref(j);
    j = kiln_validate_jstr(NULL);
    assert_string_equal(json_string_value(j), "");
    json_decref(j);
}

static void test_summary__status_passes_only_when_every_node_did(void **state)
{
    json_t *good = report_for("h100", "a", 1, NULL);
    char *s = summary_of(good);
    json_t *nodes = json_array();
    json_array_append_new(nodes, parse_ok(s, NULL));
    json_t *st = kiln_validate_status_new(nodes);
    assert_true(json_is_true(json_object_get(st, "passed")));
    assert_true(json_is_true(json_object_get(st, "simulated")));
    assert_int_equal(json_array_size(json_object_get(st, "nodes")), 1);
    json_decref(st);

    json_t *bad = kiln_validate_node_failed("b", "the validation Job did not start within 600 s");
    assert_false(json_is_true(json_object_get(bad, "passed")));
    assert_string_equal(str(bad, "result"), "error");
    assert_string_equal(str(bad, "reason"), "the validation Job did not start within 600 s");
    json_array_append_new(nodes, bad);
    st = kiln_validate_status_new(nodes);
    assert_false(json_is_true(json_object_get(st, "passed")));
    assert_string_equal(str(json_array_get(json_object_get(st, "nodes"), 1), "name"), "b");
    json_decref(st);

    json_t *none = json_array();
    st = kiln_validate_status_new(none);
    assert_false(json_is_true(json_object_get(st, "passed")));
    assert_false(json_is_true(json_object_get(st, "simulated")));
    json_decref(st);
    json_decref(none);
    json_decref(nodes);
    free(s);
    json_decref(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary__passing_node_round_trips),
        cmocka_unit_test(test_summary__failing_node_keeps_value_threshold_and_reason),
        cmocka_unit_test(test_summary__long_names_stay_under_4096_bytes),
        cmocka_unit_test(test_summary__error_report_parses_as_not_passed),
        cmocka_unit_test(test_summary__bad_messages_are_rejected),
        cmocka_unit_test(test_summary__node_must_match),
        cmocka_unit_test(test_summary__claimed_pass_is_not_trusted),
        cmocka_unit_test(test_summary__missing_requested_check_fails),
        cmocka_unit_test(test_summary__build_rejects_non_reports),
        cmocka_unit_test(test_summary__status_passes_only_when_every_node_did),
        cmocka_unit_test(test_jstr__cut_utf8_keeps_the_valid_prefix),
    };
    return cmocka_run_group_tests(tests, vt_setup, vt_teardown);
}
