/* tests/controller/test_validation.c: node selection, Jobs and results of
 * GPU validation nodes (controller/validation.c), without a cluster. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controller/status.h"
#include "controller/validation.h"
#include "core/json.h"
#include "core/mem.h"
#include "validate/evaluate.h"
#include "validate/simulate.h"
#include "validate/summary.h"
#include "validate/thresholds.h"

static json_t *node(const char *name, int gpus, const char *product, bool ready)
{
    json_t *n =
        json_pack("{s:s, s:s, s:{s:s, s:{}}, s:{s:{}, s:[{s:s, s:s}]}}", "apiVersion", "v1", "kind",
                  "Node", "metadata", "name", name, "labels", "status", "allocatable", "conditions",
                  "type", "Ready", "status", ready ? "True" : "False");
    if (gpus) {
        char g[8];
        snprintf(g, sizeof(g), "%d", gpus);
        json_object_set_new(kiln_json_get_path(n, "status.allocatable"), "nvidia.com/gpu",
                            json_string(g));
    }
    if (product)
        json_object_set_new(kiln_json_get_path(n, "metadata.labels"), "nvidia.com/gpu.product",
                            json_string(product));
    return n;
}

static json_t *spec(const char *extra_json)
{
    json_t *s = json_pack("{s:[s,s], s:i, s:i}", "checks", "device", "gemm", "maxNodes", 0,
                          "timeoutSeconds", 600);
    if (extra_json) {
        json_t *x = json_loads(extra_json, 0, NULL);
        assert_non_null(x);
        json_object_update(s, x);
        json_decref(x);
    }
    return s;
}

static void test_validation__selects_gpu_nodes_sorted_with_their_accelerator(void **state)
{
    (void)state;
    json_t *nodes =
        json_pack("[o,o,o]", node("gpu-b", 8, "NVIDIA-H100-80GB-HBM3", true),
                  node("cpu-a", 0, NULL, true), node("gpu-a", 4, "NVIDIA-H100-80GB-HBM3", true));
    json_t *sp = spec(NULL);
    kiln_validation_selection sel;
    kiln_validation_select(&sel, sp, nodes);
    assert_null(sel.why_none);
    assert_int_equal(sel.len, 2);
    assert_string_equal(sel.items[0].node, "gpu-a");
    assert_int_equal(sel.items[0].gpus, 4);
    assert_string_equal(sel.items[0].accelerator, "h100-sxm");
    assert_null(sel.items[0].why_not);
    assert_string_equal(sel.items[1].node, "gpu-b");
    assert_int_equal(sel.items[1].gpus, 8);
    kiln_validation_selection_free(&sel);

    /* maxNodes keeps the first by name; gpusPerNode is what the Job asks. */
    json_object_set_new(sp, "maxNodes", json_integer(1));
    json_object_set_new(sp, "gpusPerNode", json_integer(2));
    json_object_set_new(sp, "accelerator", json_string("H100_SXM5"));
    kiln_validation_select(&sel, sp, nodes);
    assert_int_equal(sel.len, 1);
    assert_string_equal(sel.items[0].node, "gpu-a");
    assert_int_equal(sel.items[0].gpus, 2);
    assert_string_equal(sel.items[0].accelerator, "h100-sxm");
    kiln_validation_selection_free(&sel);
    json_decref(sp);
    json_decref(nodes);
}

static void test_validation__fails_closed_on_what_cannot_be_checked(void **state)
{
    (void)state;
    json_t *nodes = json_pack("[o]", node("cpu-a", 0, NULL, true));
    json_t *sp = spec(NULL);
    kiln_validation_selection sel;
    kiln_validation_select(&sel, sp, nodes);
    assert_string_equal(sel.why_none, "no node advertises nvidia.com/gpu");
    kiln_validation_selection_free(&sel);

    /* A selected node without GPUs is selected, and fails. */
    json_object_set_new(sp, "nodeSelector", json_pack("{s:s}", "pool", "gpu"));
    kiln_validation_select(&sel, sp, nodes);
    assert_null(sel.why_none);
    assert_int_equal(sel.len, 1);
    assert_string_equal(sel.items[0].why_not,
                        "node cpu-a matches the nodeSelector but advertises no nvidia.com/gpu");
    kiln_validation_selection_free(&sel);

    json_t *none = json_array();
    kiln_validation_select(&sel, sp, none);
    assert_string_equal(sel.why_none, "no node matches the nodeSelector pool=gpu");
    kiln_validation_selection_free(&sel);
    json_decref(none);

    json_object_set_new(sp, "accelerator", json_string("h900"));
    kiln_validation_select(&sel, sp, nodes);
    assert_string_equal(sel.why_none, "unknown accelerator \"h900\" (known: a100-sxm, b200, "
                                      "h100-pcie, h100-sxm, h200, l40s)");
    kiln_validation_selection_free(&sel);
    json_decref(sp);
    json_decref(nodes);

    /* More GPUs asked than the node has; a product no thresholds know. */
    nodes = json_pack("[o,o]", node("gpu-a", 4, "NVIDIA-H100-80GB-HBM3", true),
                      node("gpu-l4", 1, "NVIDIA-L4", true));
    sp = spec("{\"gpusPerNode\": 8}");
    kiln_validation_select(&sel, sp, nodes);
    assert_int_equal(sel.len, 2);
    assert_string_equal(sel.items[0].why_not,
                        "node gpu-a has 4 allocatable GPUs; gpusPerNode asks for 8");
    kiln_validation_selection_free(&sel);
    json_object_del(sp, "gpusPerNode");
    kiln_validation_select(&sel, sp, nodes);
    assert_null(sel.items[0].why_not);
    assert_string_equal(sel.items[1].why_not,
                        "cannot tell the accelerator of node gpu-l4 "
                        "(nvidia.com/gpu.product=NVIDIA-L4): set validation.accelerator");
    kiln_validation_selection_free(&sel);
    json_decref(sp);
    json_decref(nodes);
}

static void test_validation__label_selector(void **state)
{
    (void)state;
    json_t *sp = spec("{\"nodeSelector\": {\"nvidia.com/gpu.product\": \"NVIDIA-H100-80GB-HBM3\", "
                      "\"a\": \"\"}}");
    kiln_err err = {0};
    char *s = kiln_validation_label_selector(sp, &err);
    assert_string_equal(s, "a=,nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3");
    kiln_xfree(s);
    json_object_set_new(sp, "nodeSelector", json_pack("{s:s}", "pool", "gpu nodes"));
    assert_null(kiln_validation_label_selector(sp, &err));
    assert_int_equal(err.code, KILN_EINVAL);
    assert_string_equal(err.msg,
                        "validation.nodeSelector: \"pool\": \"gpu nodes\" is not a valid label");
    json_object_del(sp, "nodeSelector");
    s = kiln_validation_label_selector(sp, &err);
    assert_string_equal(s, "");
    kiln_xfree(s);
    json_decref(sp);
}

static kiln_validation_run base_run(const json_t *checks)
{
    kiln_validation_run r = {.instance_name = "llama",
                             .instance_namespace = "team-a",
                             .node_id = "gpuCheck",
                             .node = "gpu-a",
                             .accelerator = "h100-sxm",
                             .checks = checks,
                             .gpus = 8,
                             .timeout_s = 600,
                             .generation = 2,
                             .revalidate = NULL,
                             .image = "ghcr.io/kiln-dev/kiln-gpucheck:0.1.0"};
    return r;
}

static void test_validation__run_hash_and_job_name(void **state)
{
    (void)state;
    json_t *checks = json_pack("[s,s]", "device", "gemm");
    kiln_validation_run r = base_run(checks);
    char h1[11], h2[11];
    kiln_validation_run_hash(h1, &r);
    assert_int_equal(strlen(h1), 10);
    kiln_validation_run_hash(h2, &r);
    assert_string_equal(h1, h2);
    char *name = kiln_validation_job_name(&r, h1);
    char want[64];
    snprintf(want, sizeof(want), "llama-gpucheck-%s", h1);
    assert_string_equal(name, want);
    kiln_xfree(name);

    /* Everything that decides the run changes the hash. */
    const char *reval = "2026-11-26T10:00:00Z";
    r.revalidate = reval;
    kiln_validation_run_hash(h2, &r);
    assert_string_not_equal(h1, h2);
    r.revalidate = NULL;
    r.generation = 3;
    kiln_validation_run_hash(h2, &r);
    assert_string_not_equal(h1, h2);
    r.generation = 2;
    r.node = "gpu-b";
    kiln_validation_run_hash(h2, &r);
    assert_string_not_equal(h1, h2);

    /* Long and odd names still make a valid name with room for a pod's suffix. */
    r.instance_name = "A-very.long_instance-name-that-goes-on-and-on-and-on";
    r.node_id = "gpuValidationOfEverything";
    name = kiln_validation_job_name(&r, h1);
    assert_true(strlen(name) <= 58);
    snprintf(want, sizeof(want), "a-very-long-instance-name-that-gpuvalidationofe-%s", h1);
    assert_string_equal(name, want);
    kiln_xfree(name);
    json_decref(checks);
}

static void test_validation__job_shape(void **state)
{
    (void)state;
    json_t *checks = json_pack("[s,s]", "device", "gemm");
    kiln_validation_run r = base_run(checks);
    json_t *labels = json_pack("{s:s}", "kiln.dev/instance-uid", "u-1");
    json_t *owner = json_pack("{s:s, s:s}", "kind", "InferenceStack", "uid", "u-1");
    json_t *job = kiln_validation_job(&r, "llama-gpucheck-0123456789", "0123456789", labels, owner);
    assert_string_equal(kiln_json_get_string(job, "apiVersion"), "batch/v1");
    assert_string_equal(kiln_json_get_string(job, "metadata.namespace"), "team-a");
    assert_string_equal(json_string_value(json_object_get(
                            kiln_json_get_path(job, "metadata.labels"), "kiln.dev/validation")),
                        "gpuCheck");
    assert_int_equal(json_integer_value(kiln_json_get_path(job, "spec.backoffLimit")), 0);
    assert_int_equal(json_integer_value(kiln_json_get_path(job, "spec.activeDeadlineSeconds")),
                     600);
    const json_t *ps = kiln_json_get_path(job, "spec.template.spec");
    assert_string_equal(kiln_json_get_string(ps, "nodeName"), "gpu-a");
    assert_string_equal(kiln_json_get_string(ps, "serviceAccountName"), "kiln-gpucheck");
    assert_true(json_is_false(json_object_get(ps, "automountServiceAccountToken")));
    assert_string_equal(kiln_json_get_string(ps, "restartPolicy"), "Never");
    const json_t *pl = kiln_json_get_path(job, "spec.template.metadata.labels");
    assert_string_equal(json_string_value(json_object_get(pl, "kiln.dev/validation-job")),
                        "llama-gpucheck-0123456789");
    assert_string_equal(json_string_value(json_object_get(pl, "kiln.dev/instance-uid")), "u-1");
    const json_t *c = json_array_get(json_object_get(ps, "containers"), 0);
    char *args = json_dumps(json_object_get(c, "args"), JSON_COMPACT);
    /* 600 s over 2 checks: each check keeps kiln-gpucheck's 10 s default. */
    assert_string_equal(args, "[\"--accelerator\",\"h100-sxm\",\"--checks\",\"device,gemm\","
                              "\"--expect-gpus\",\"8\",\"--timeout\",\"10\",\"--compact\"]");
    free(args);
    assert_string_equal(json_string_value(json_object_get(kiln_json_get_path(c, "resources.limits"),
                                                          "nvidia.com/gpu")),
                        "8");
    assert_string_equal(kiln_json_get_string(c, "image"), "ghcr.io/kiln-dev/kiln-gpucheck:0.1.0");
    assert_true(json_is_false(kiln_json_get_path(c, "securityContext.allowPrivilegeEscalation")));
    assert_string_equal(kiln_json_get_string(json_array_get(json_object_get(c, "env"), 0),
                                             "valueFrom.fieldRef."
                                             "fieldPath"),
                        "spec.nodeName");
    json_decref(job);

    /* A short deadline shrinks each check's bound. */
    r.timeout_s = 8;
    job = kiln_validation_job(&r, "j", "0123456789", NULL, NULL);
    args = json_dumps(kiln_json_get_path(json_array_get(kiln_json_get_path(job, "spec.template."
                                                                                "spec.containers"),
                                                        0),
                                         "args"),
                      JSON_COMPACT);
    assert_non_null(strstr(args, "\"--timeout\",\"2\""));
    free(args);
    assert_null(kiln_json_get_path(job, "metadata.ownerReferences"));
    json_decref(job);
    json_decref(labels);
    json_decref(owner);
    json_decref(checks);
}

/* A termination message as kiln-gpucheck writes it for a simulated node. */
static char *summary_for(const char *node_name, const char *const *fail)
{
    kiln_thresholds cat = {0};
    kiln_err err = {0};
    assert_int_equal(kiln_thresholds_load_builtin(&cat, &err), 0);
    const kiln_threshold_accel *acc = kiln_thresholds_find(&cat, "h100");
    assert_non_null(acc);
    const char *checks[] = {"device", "gemm", NULL};
    kiln_validate_sim_opts so = {
        .node = node_name, .gpus = 8, .checks = checks, .fail_checks = fail};
    json_t *doc = NULL, *report = NULL;
    assert_int_equal(kiln_validate_simulate(&doc, acc, &so, &err), 0);
    kiln_validate_eval_opts eo = {.node = node_name, .expect_gpus = 8, .checks = checks};
    assert_int_equal(kiln_validate_evaluate(&report, doc, acc, &eo, &err), 0);
    char *msg = NULL;
    assert_int_equal(kiln_validate_summary_build(&msg, report, &err), 0);
    json_decref(doc);
    json_decref(report);
    kiln_thresholds_free(&cat);
    return msg;
}

static json_t *job_obj(const char *created, const char *cond_type, const char *reason)
{
    json_t *j = json_pack("{s:{s:s, s:s}, s:{}}", "metadata", "name", "j1", "creationTimestamp",
                          created, "status");
    if (cond_type)
        json_object_set_new(json_object_get(j, "status"), "conditions",
                            json_pack("[{s:s, s:s, s:s, s:s}]", "type", cond_type, "status", "True",
                                      "reason", reason, "message",
                                      "Job was active longer than "
                                      "specified deadline"));
    return j;
}

static json_t *pod_terminated(const char *msg, int code)
{
    json_t *t = json_pack("{s:i, s:s}", "exitCode", code, "reason", code ? "Error" : "Completed");
    if (msg)
        json_object_set_new(t, "message", json_string(msg));
    return json_pack("[{s:{s:s, s:s}, s:{s:s, s:[{s:s, s:{s:o}}]}}]", "metadata", "name",
                     "j1-abcde", "creationTimestamp", "2026-11-26T10:00:01Z", "status", "phase",
                     code ? "Failed" : "Succeeded", "containerStatuses", "name", "gpucheck",
                     "state", "terminated", t);
}

static const int64_t T0 = 1795687200; /* 2026-11-26T10:00:00Z */

static void test_validation__node_results(void **state)
{
    (void)state;
    json_t *checks = json_pack("[s,s]", "device", "gemm");
    kiln_validation_run r = base_run(checks);
    const char h[11] = "0123456789";
    bool final = false;
    int64_t wait = -1;
    assert_int_equal(kiln_validation_parse_time("2026-11-26T10:00:00Z"), T0);
    assert_int_equal(kiln_validation_parse_time("2026-11-26T10:00:00.25Z"), T0);
    assert_int_equal(kiln_validation_parse_time("yesterday"), -1);

    /* Passed. */
    char *ok = summary_for("gpu-a", NULL);
    json_t *job = job_obj("2026-11-26T10:00:00Z", "Complete", "CompletionsReached");
    json_t *pods = pod_terminated(ok, 0);
    json_t *e = kiln_validation_node_result(&r, "j1", h, job, pods, T0 + 20, &final, &wait);
    assert_true(final);
    assert_true(json_is_true(json_object_get(e, "passed")));
    assert_true(json_is_true(json_object_get(e, "simulated")));
    assert_string_equal(kiln_json_get_string(e, "job"), "j1");
    assert_string_equal(kiln_json_get_string(e, "run"), "0123456789");
    assert_int_equal(json_array_size(json_object_get(e, "checks")), 2);
    json_decref(e);
    json_decref(pods);

    /* A passing message from a container that failed is not trusted. */
    pods = pod_terminated(ok, 1);
    e = kiln_validation_node_result(&r, "j1", h, job, pods, T0 + 20, &final, &wait);
    assert_true(final);
    assert_true(json_is_false(json_object_get(e, "passed")));
    assert_string_equal(kiln_json_get_string(e, "reason"),
                        "node gpu-a: pod j1-abcde exited with code 1 but its termination message "
                        "says passed");
    json_decref(e);
    json_decref(pods);

    /* A message from another node. */
    pods = pod_terminated(ok, 0);
    r.node = "gpu-b";
    e = kiln_validation_node_result(&r, "j1", h, job, pods, T0 + 20, &final, &wait);
    assert_true(json_is_false(json_object_get(e, "passed")));
    assert_non_null(strstr(kiln_json_get_string(e, "reason"), "node gpu-b: pod j1-abcde (exit "
                                                              "code 0): "));
    r.node = "gpu-a";
    json_decref(e);
    json_decref(pods);

    /* Truncated JSON. */
    ok[strlen(ok) / 2] = '\0';
    pods = pod_terminated(ok, 0);
    e = kiln_validation_node_result(&r, "j1", h, job, pods, T0 + 20, &final, &wait);
    assert_true(final);
    assert_true(json_is_false(json_object_get(e, "passed")));
    assert_string_equal(kiln_json_get_string(e, "result"), "error");
    json_decref(e);
    json_decref(pods);
    kiln_xfree(ok);

    /* Over 4 KB. */
    char *big = kiln_xcalloc(5000, 1);
    memset(big, ' ', 4999);
    big[0] = '{';
    pods = pod_terminated(big, 0);
    e = kiln_validation_node_result(&r, "j1", h, job, pods, T0 + 20, &final, &wait);
    assert_true(json_is_false(json_object_get(e, "passed")));
    assert_non_null(strstr(kiln_json_get_string(e, "reason"), "4096"));
    json_decref(e);
    json_decref(pods);
    kiln_xfree(big);

    /* Failed on a slow card: the reason names node, check, measured, expected. */
    const char *slow[] = {"gemm", NULL};
    char *bad = summary_for("gpu-a", slow);
    pods = pod_terminated(bad, 1);
    e = kiln_validation_node_result(&r, "j1", h, job, pods, T0 + 20, &final, &wait);
    assert_true(final);
    assert_true(json_is_false(json_object_get(e, "passed")));
    const char *why = kiln_json_get_string(e, "reason");
    assert_non_null(strstr(why, "gemm on node gpu-a GPU 7: bf16Tflops measured"));
    assert_non_null(strstr(why, "expected >= 494.5 TFLOP/s"));
    json_decref(e);
    json_decref(pods);
    kiln_xfree(bad);

    /* No message at all. */
    pods = pod_terminated(NULL, 2);
    e = kiln_validation_node_result(&r, "j1", h, job, pods, T0 + 20, &final, &wait);
    assert_string_equal(kiln_json_get_string(e, "reason"),
                        "node gpu-a: pod j1-abcde exited with code 2 (Error) and left no "
                        "termination message");
    json_decref(e);
    json_decref(pods);
    json_decref(job);

    /* Still running, inside the deadline (600 s + 30 s grace). */
    job = job_obj("2026-11-26T10:00:00Z", NULL, NULL);
    e = kiln_validation_node_result(&r, "j1", h, job, NULL, T0 + 30, &final, &wait);
    assert_false(final);
    assert_int_equal(wait, 600 * 1000);
    assert_string_equal(kiln_json_get_string(e, "result"), "running");
    assert_string_equal(kiln_json_get_string(e, "reason"),
                        "node gpu-a: Job j1: no pod was created");
    json_decref(e);
    /* Never started: a timeout, failed. */
    e = kiln_validation_node_result(&r, "j1", h, job, NULL, T0 + 631, &final, &wait);
    assert_true(final);
    assert_string_equal(kiln_json_get_string(e, "reason"),
                        "node gpu-a: Job j1 did not finish within 600 s; no pod was created");
    json_decref(e);
    json_decref(job);

    /* The Job controller gave up first. */
    job = job_obj("2026-11-26T10:00:00Z", "Failed", "DeadlineExceeded");
    pods = json_pack("[{s:{s:s}, s:{s:s}}]", "metadata", "name", "j1-xyz", "status", "phase",
                     "Pending");
    e = kiln_validation_node_result(&r, "j1", h, job, pods, T0 + 601, &final, &wait);
    assert_true(final);
    assert_string_equal(kiln_json_get_string(e, "reason"),
                        "node gpu-a: Job j1 failed (DeadlineExceeded: Job was active longer than "
                        "specified deadline); pod j1-xyz is Pending");
    json_decref(e);
    json_decref(pods);
    json_decref(job);
    json_decref(checks);
}

static void test_validation__status_conditions(void **state)
{
    (void)state;
    kiln_status_input in = {.generation = 1, .nodes = 2, .ready = 2, .validations = 1};
    in.validation_running = "gpuCheck: 1 of 1 nodes still running; node gpu-a: Job j1 created";
    json_t *st = kiln_status_instance(NULL, &in, "2026-01-01T00:00:00Z");
    const json_t *v = kiln_status_condition(st, "Validated");
    assert_string_equal(kiln_json_get_string(v, "status"), "False");
    assert_string_equal(kiln_json_get_string(v, "reason"), "Running");
    assert_string_equal(kiln_json_get_string(kiln_status_condition(st, "Ready"), "message"),
                        in.validation_running);
    assert_string_equal(kiln_json_get_string(st, "state"), "IN_PROGRESS");
    json_decref(st);

    in.validation_running = NULL;
    in.validation_failed = "gpuCheck: gemm on node gpu-a GPU 7: bf16Tflops measured 296.7 "
                           "TFLOP/s, expected >= 494.5 TFLOP/s (0.5 x 989)";
    st = kiln_status_instance(NULL, &in, "2026-01-01T00:00:00Z");
    v = kiln_status_condition(st, "Validated");
    assert_string_equal(kiln_json_get_string(v, "reason"), "Failed");
    assert_string_equal(kiln_json_get_string(v, "message"), in.validation_failed);
    const json_t *ready = kiln_status_condition(st, "Ready");
    assert_string_equal(kiln_json_get_string(ready, "status"), "False");
    assert_string_equal(kiln_json_get_string(ready, "reason"), "ValidationFailed");
    const json_t *stalled = kiln_status_condition(st, "Stalled");
    assert_string_equal(kiln_json_get_string(stalled, "status"), "True");
    assert_string_equal(kiln_json_get_string(stalled, "reason"), "ValidationFailed");
    assert_string_equal(kiln_json_get_string(st, "state"), "ERROR");
    json_decref(st);

    /* Passed. */
    in.validation_failed = NULL;
    in.validations_ready = 1;
    st = kiln_status_instance(NULL, &in, "2026-01-01T00:00:00Z");
    assert_string_equal(kiln_json_get_string(kiln_status_condition(st, "Validated"), "reason"),
                        "Passed");
    assert_string_equal(kiln_json_get_string(st, "state"), "ACTIVE");
    json_decref(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation__selects_gpu_nodes_sorted_with_their_accelerator),
        cmocka_unit_test(test_validation__fails_closed_on_what_cannot_be_checked),
        cmocka_unit_test(test_validation__label_selector),
        cmocka_unit_test(test_validation__run_hash_and_job_name),
        cmocka_unit_test(test_validation__job_shape),
        cmocka_unit_test(test_validation__node_results),
        cmocka_unit_test(test_validation__status_conditions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
