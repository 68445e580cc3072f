#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate/thresholds.h"

static const char good_yaml[] = "accelerator: test-card\n"
                                "description: A test card\n"
                                "aliases: [tc, test-card-80gb]\n"
                                "device:\n"
                                "  products: [\"Test Card\"]\n"
                                "  computeCapability: \"9.0\"\n"
                                "  memoryGB: 80\n"
                                "  memoryFloor: 0.9\n"
                                "metrics:\n"
                                "  hbm-bandwidth:\n"
                                "    copyGBps: {achievable: 1000, floor: 0.75, typical: 0.9}\n"
                                "    triadGBps: {achievable: 1000, floor: 0.75, typical: 0.9}\n"
                                "    memcpyGBps: {achievable: 1000, floor: 0.75, typical: 0.9}\n"
                                "  gemm:\n"
                                "    bf16Tflops: {achievable: 100, floor: 0.5, typical: 0.7}\n"
                                "    fp32Tflops: {achievable: 10, floor: 0.5, typical: 0.8}\n"
                                "  pcie:\n"
                                "    h2dGBps: {achievable: 25, floor: 0.8, typical: 1.0}\n"
                                "    d2hGBps: {achievable: 25, floor: 0.8, typical: 1.0}\n"
                                "  p2p:\n"
                                "    peerGBps: {achievable: 20, floor: 0.5, typical: 1.0}\n";

/* good_yaml with the first occurrence of from replaced by to. */
static char *variant(const char *from, const char *to)
{
    const char *at = strstr(good_yaml, from);
    assert_non_null(at);
    size_t pre = (size_t)(at - good_yaml);
    size_t len = strlen(good_yaml) - strlen(from) + strlen(to);
    char *s = malloc(len + 1);
    memcpy(s, good_yaml, pre);
    strcpy(s + pre, to);
    strcat(s, at + strlen(from));
    return s;
}

static int add_variant(kiln_thresholds *cat, const char *from, const char *to, kiln_err *err)
{
    char *text = variant(from, to);
    int rc = kiln_thresholds_add_yaml(cat, text, strlen(text), "card.yaml", err);
    free(text);
    return rc;
}

static void expect_invalid(const char *from, const char *to, const char *msg_part)
{
    kiln_thresholds cat = {0};
    kiln_err err = {0};
    assert_int_equal(add_variant(&cat, from, to, &err), KILN_EINVAL);
    if (!strstr(err.msg, msg_part))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, msg_part);
    assert_int_equal(cat.len, 0);
    kiln_thresholds_free(&cat);
}

static void test_thresholds__builtin_has_every_required_accelerator(void **state)
{
    kiln_thresholds cat = {0};
    kiln_err err = {0};
    assert_int_equal(kiln_thresholds_load_builtin(&cat, &err), 0);
    static const char *const want[] = {"a100-sxm", "b200", "h100-pcie", "h100-sxm", "h200", "l40s"};
    assert_int_equal(cat.len, 6);
    for (size_t i = 0; i < 6; i++) {
        /* The embedded files are sorted by file name. */
        assert_string_equal(cat.items[i].name, want[i]);
        assert_int_equal(cat.items[i].n_metrics, 8);
        for (size_t m = 0; m < cat.items[i].n_metrics; m++) {
            assert_true(cat.items[i].metrics[m].floor > 0 && cat.items[i].metrics[m].floor <= 1);
            assert_true(cat.items[i].metrics[m].achievable > 0);
        }
    }
    kiln_thresholds_free(&cat);
}

static void test_thresholds__builtin_figures_come_from_the_reference(void **state)
{
    kiln_thresholds cat = {0};
    assert_int_equal(kiln_thresholds_load_builtin(&cat, NULL), 0);
    const kiln_threshold_accel *h100 = kiln_thresholds_find(&cat, "h100-sxm");
    assert_non_null(h100);
    assert_int_equal(h100->cc_major, 9);
    assert_int_equal(h100->cc_minor, 0);
    assert_true(h100->memory_gb == 80);
    const kiln_threshold_metric *m = kiln_thresholds_metric(h100, "hbm-bandwidth", "copyGBps");
    assert_non_null(m);
    assert_true(m->achievable == 3350);
    assert_true(m->floor == 0.75);
    assert_string_equal(m->unit, "GB/s");
    m = kiln_thresholds_metric(h100, "gemm", "bf16Tflops");
    assert_true(m->achievable == 989);
    m = kiln_thresholds_metric(h100, "p2p", "peerGBps");
    assert_true(m->per_pair);
    /* A smaller card has its own figures, not the H100's. */
    const kiln_threshold_accel *l40s = kiln_thresholds_find(&cat, "l40s");
    assert_int_equal(l40s->cc_minor, 9);
    assert_true(kiln_thresholds_metric(l40s, "hbm-bandwidth", "copyGBps")->achievable == 864);
    assert_true(kiln_thresholds_metric(l40s, "gemm", "bf16Tflops")->achievable == 362);
    assert_null(kiln_thresholds_metric(l40s, "gemm", "fp8Tflops"));
    kiln_thresholds_free(&cat);
}

static void test_thresholds__aliases_and_label_forms_resolve(void **state)
{
    kiln_thresholds cat = {0};
    assert_int_equal(kiln_thresholds_load_builtin(&cat, NULL), 0);
    static const struct {
        const char *ask, *want;
    } cases[] = {
        {"h100", "h100-sxm"},
        {"H100", "h100-sxm"},
        {"NVIDIA-H100-80GB-HBM3", "h100-sxm"},
        {"h100_sxm5", "h100-sxm"},
        {"NVIDIA-H100-PCIe", "h100-pcie"},
        {"h200", "h200"},
        {"NVIDIA-H200", "h200"},
        {"a100", "a100-sxm"},
        {"NVIDIA-A100-SXM4-80GB", "a100-sxm"},
        {"L40S", "l40s"},
        {"nvidia l40s", "l40s"},
        {"B200", "b200"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const kiln_threshold_accel *a = kiln_thresholds_find(&cat, cases[i].ask);
        if (!a)
            fail_msg("%s did not resolve", cases[i].ask);
        assert_string_equal(a->name, cases[i].want);
    }
    assert_null(kiln_thresholds_find(&cat, "gb300"));
    assert_null(kiln_thresholds_find(&cat, ""));
    assert_null(kiln_thresholds_find(&cat, NULL));
    assert_null(kiln_thresholds_find(&cat, "h10"));
    kiln_thresholds_free(&cat);
}

static void test_thresholds__normalize(void **state)
{
    char out[32];
    kiln_thresholds_normalize(out, sizeof(out), "NVIDIA_H100 PCIe");
    assert_string_equal(out, "h100-pcie");
    kiln_thresholds_normalize(out, sizeof(out), "nvidia-nvidia-x");
    assert_string_equal(out, "nvidia-x");
    kiln_thresholds_normalize(out, 5, "abcdefgh");
    assert_string_equal(out, "abcd");
}

static void test_thresholds__product_match_is_unique_or_nothing(void **state)
{
    kiln_thresholds cat = {0};
    assert_int_equal(kiln_thresholds_load_builtin(&cat, NULL), 0);
    assert_string_equal(kiln_thresholds_match_product(&cat, "NVIDIA H100 80GB HBM3")->name,
                        "h100-sxm");
    assert_string_equal(kiln_thresholds_match_product(&cat, "NVIDIA H100 PCIe")->name, "h100-pcie");
    assert_string_equal(kiln_thresholds_match_product(&cat, "NVIDIA A100-SXM4-80GB")->name,
                        "a100-sxm");
    assert_string_equal(kiln_thresholds_match_product(&cat, "nvidia l40s")->name, "l40s");
    assert_null(kiln_thresholds_match_product(&cat, "Tesla T4"));
    assert_null(kiln_thresholds_match_product(&cat, NULL));
    /* A name that fits two entries is refused rather than guessed. */
    kiln_thresholds cat2 = {0};
    assert_int_equal(kiln_thresholds_add_yaml(&cat2, good_yaml, strlen(good_yaml), "a", NULL), 0);
    assert_string_equal(kiln_thresholds_match_product(&cat2, "Test Card rev 2")->name, "test-card");
    char *twin = variant("accelerator: test-card\ndescription: A test card\naliases: [tc, "
                         "test-card-80gb]",
                         "accelerator: twin-card\naliases: []");
    assert_int_equal(kiln_thresholds_add_yaml(&cat2, twin, strlen(twin), "b", NULL), 0);
    assert_null(kiln_thresholds_match_product(&cat2, "Test Card rev 2"));
    free(twin);
    kiln_thresholds_free(&cat2);
    kiln_thresholds_free(&cat);
}

static void test_thresholds__good_document_parses(void **state)
{
    kiln_thresholds cat = {0};
    kiln_err err = {0};
    assert_int_equal(
        kiln_thresholds_add_yaml(&cat, good_yaml, strlen(good_yaml), "card.yaml", &err), 0);
    assert_int_equal(cat.len, 1);
    const kiln_threshold_accel *a = &cat.items[0];
    assert_string_equal(a->name, "test-card");
    assert_string_equal(a->description, "A test card");
    assert_string_equal(a->source, "card.yaml");
    assert_int_equal(a->n_aliases, 2);
    assert_string_equal(a->aliases[1], "test-card-80gb");
    assert_int_equal(a->n_products, 1);
    assert_true(a->memory_floor == 0.9);
    assert_ptr_equal(kiln_thresholds_find(&cat, "TC"), a);
    kiln_thresholds_free(&cat);
}

static void test_thresholds__malformed_documents_are_rejected_with_the_field(void **state)
{
    expect_invalid("floor: 0.75, typical: 0.9}\n    triadGBps",
                   "flor: 0.75, typical: 0.9}\n    triadGBps",
                   "card.yaml: metrics.hbm-bandwidth.copyGBps.flor: unknown field");
    expect_invalid("bf16Tflops: {achievable: 100, floor: 0.5,",
                   "bf16Tflops: {achievable: 100, floor: 1.5,",
                   "metrics.gemm.bf16Tflops.floor: 1.5 is not a fraction in (0, 1]");
    expect_invalid("    triadGBps: {achievable: 1000, floor: 0.75, typical: 0.9}\n", "",
                   "card.yaml: metrics.hbm-bandwidth.triadGBps: required metric is missing");
    expect_invalid("  p2p:\n    peerGBps: {achievable: 20, floor: 0.5, typical: 1.0}\n", "  p2p:\n",
                   "card.yaml: metrics.p2p: expected a map of metrics");
    expect_invalid("computeCapability: \"9.0\"", "computeCapability: \"9\"",
                   "device.computeCapability: \"9\" is not MAJOR.MINOR");
    expect_invalid("computeCapability: \"9.0\"", "computeCapability: 9.0",
                   "device.computeCapability: expected a non-empty string");
    expect_invalid("aliases: [tc, test-card-80gb]", "aliases: [TC]",
                   "aliases[0]: \"TC\" is not in normalized form (expected \"tc\")");
    expect_invalid("aliases: [tc, test-card-80gb]", "aliases: [tc, tc]",
                   "aliases[1]: \"tc\" is already defined");
    expect_invalid("  gemm:\n", "  fp8:\n", "metrics.fp8: unknown check");
    expect_invalid("fp32Tflops: {achievable: 10, floor: 0.5, typical: 0.8}",
                   "fp32Tflops: {achievable: 10, floor: 0.5, typical: 0.4}",
                   "metrics.gemm.fp32Tflops.typical: 0.4 must lie between floor (0.5) and 1.5");
    expect_invalid("  memoryGB: 80\n", "", "card.yaml: device.memoryGB: required field is missing");
    expect_invalid("  products: [\"Test Card\"]\n", "  products: []\n",
                   "device.products: must not be empty");
    expect_invalid("achievable: 1000, floor: 0.75, typical: 0.9}\n    triadGBps",
                   "achievable: \"1000\", floor: 0.75, typical: 0.9}\n    triadGBps",
                   "metrics.hbm-bandwidth.copyGBps.achievable: expected a number");
    expect_invalid("description: A test card\n", "descripton: typo\n",
                   "card.yaml: descripton: unknown field");
}

static void test_thresholds__duplicate_names_across_files_are_rejected(void **state)
{
    kiln_thresholds cat = {0};
    kiln_err err = {0};
    assert_int_equal(kiln_thresholds_add_yaml(&cat, good_yaml, strlen(good_yaml), "a.yaml", &err),
                     0);
    assert_int_equal(add_variant(&cat, "accelerator: test-card", "accelerator: tc", &err),
                     KILN_EINVAL);
    assert_string_equal(err.msg,
                        "card.yaml: accelerator: \"tc\" is already defined (name or alias)");
    assert_int_equal(add_variant(&cat, "accelerator: test-card", "accelerator: card-two", &err),
                     KILN_EINVAL);
    assert_string_equal(err.msg,
                        "card.yaml: aliases[0]: \"tc\" is already defined (name or alias)");
    assert_int_equal(cat.len, 1);
    kiln_thresholds_free(&cat);
}

static void test_thresholds__yaml_errors_name_the_source(void **state)
{
    kiln_thresholds cat = {0};
    kiln_err err = {0};
    const char *bad = "accelerator: x\nmetrics: {\n";
    assert_int_not_equal(kiln_thresholds_add_yaml(&cat, bad, strlen(bad), "bad.yaml", &err), 0);
    assert_non_null(strstr(err.msg, "bad.yaml"));
    const char *two = "accelerator: x\n---\naccelerator: y\n";
    assert_int_equal(kiln_thresholds_add_yaml(&cat, two, strlen(two), "two.yaml", &err),
                     KILN_EINVAL);
    assert_string_equal(err.msg, "two.yaml: expected one YAML document, found 2");
    const char *list = "- a\n";
    assert_int_equal(kiln_thresholds_add_yaml(&cat, list, strlen(list), "l.yaml", &err),
                     KILN_EINVAL);
    assert_string_equal(err.msg, "l.yaml: expected a map at the top level");
    assert_int_equal(cat.len, 0);
    kiln_thresholds_free(&cat);
}

static void test_thresholds__load_path_reads_the_data_directory(void **state)
{
    const char *src = getenv("KILN_SOURCE_DIR");
    if (!src)
        skip(); /* run outside CTest: no source tree to point at */
    char path[4096];
    kiln_thresholds cat = {0}, builtin = {0};
    kiln_err err = {0};
    snprintf(path, sizeof(path), "%s/validate/thresholds", src);
    assert_int_equal(kiln_thresholds_load_path(&cat, path, &err), 0);
    assert_int_equal(kiln_thresholds_load_builtin(&builtin, &err), 0);
    assert_int_equal(cat.len, builtin.len);
    for (size_t i = 0; i < cat.len; i++)
        assert_string_equal(cat.items[i].name, builtin.items[i].name);
    kiln_thresholds_free(&cat);

    snprintf(path, sizeof(path), "%s/validate/thresholds/h200.yaml", src);
    assert_int_equal(kiln_thresholds_load_path(&cat, path, &err), 0);
    assert_int_equal(cat.len, 1);
    assert_string_equal(cat.items[0].name, "h200");
    kiln_thresholds_free(&cat);

    assert_int_equal(kiln_thresholds_load_path(&cat, "/nonexistent/kiln-thresholds", &err),
                     KILN_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/kiln-thresholds"));
    assert_int_equal(cat.len, 0);
    kiln_thresholds_free(&builtin);
}

static void test_thresholds__check_names(void **state)
{
    assert_true(kiln_validate_is_check("hbm-bandwidth"));
    assert_true(kiln_validate_is_check("p2p"));
    assert_false(kiln_validate_is_check("hbm"));
    assert_false(kiln_validate_is_check(NULL));
    assert_string_equal(kiln_validate_checks[0], "device");
    assert_string_equal(kiln_validate_checks[KILN_VALIDATE_N_CHECKS - 1], "p2p");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thresholds__builtin_has_every_required_accelerator),
        cmocka_unit_test(test_thresholds__builtin_figures_come_from_the_reference),
        cmocka_unit_test(test_thresholds__aliases_and_label_forms_resolve),
        cmocka_unit_test(test_thresholds__normalize),
        cmocka_unit_test(test_thresholds__product_match_is_unique_or_nothing),
        cmocka_unit_test(test_thresholds__good_document_parses),
        cmocka_unit_test(test_thresholds__malformed_documents_are_rejected_with_the_field),
        cmocka_unit_test(test_thresholds__duplicate_names_across_files_are_rejected),
        cmocka_unit_test(test_thresholds__yaml_errors_name_the_source),
        cmocka_unit_test(test_thresholds__load_path_reads_the_data_directory),
        cmocka_unit_test(test_thresholds__check_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
