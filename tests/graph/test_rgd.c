/* Parsing and validating the RGD document: every malformed field is reported
 * with its exact path, and all of them at once. */
#include "graph_test.h"

#define HEAD                                                                                       \
    "apiVersion: kiln.dev/v1alpha1\n"                                                              \
    "kind: ResourceGraphDefinition\n"                                                              \
    "metadata: {name: web-app}\n"

#define SCHEMA                                                                                     \
    "spec:\n"                                                                                      \
    "  schema:\n"                                                                                  \
    "    apiVersion: v1alpha1\n"                                                                   \
    "    kind: WebApp\n"                                                                           \
    "    spec:\n"                                                                                  \
    "      name: string | default=web\n"

static void test_rgd__minimal_graph_compiles_with_defaults(void **state)
{
    kiln_graph *g = gt_compile(HEAD SCHEMA "  resources:\n"
                                           "    - id: config\n"
                                           "      template:\n"
                                           "        apiVersion: v1\n"
                                           "        kind: ConfigMap\n"
                                           "        metadata: {name: \"${schema.spec.name}\"}\n",
                               NULL);
    assert_string_equal(kiln_graph_name(g), "web-app");
    assert_string_equal(kiln_graph_kind(g), "WebApp");
    assert_string_equal(kiln_graph_group(g), "kiln.dev");
    assert_string_equal(kiln_graph_version(g), "v1alpha1");
    assert_string_equal(kiln_graph_api_version(g), "kiln.dev/v1alpha1");
    assert_false(kiln_graph_cluster_scoped(g));
    assert_int_equal(kiln_graph_node_count(g), 1);
    assert_string_equal(kiln_graph_node_id(g, 0), "config");
    assert_int_equal(kiln_graph_node_kind_of(g, 0), KILN_GRAPH_NODE_TEMPLATE);
    assert_int_equal(kiln_graph_node_flags(g, 0), 0);
    assert_string_equal(kiln_graph_node_object_kind(g, 0), "ConfigMap");
    assert_int_equal(kiln_graph_node_find(g, "config"), 0);
    assert_int_equal(kiln_graph_node_find(g, "nope"), -1);
    assert_non_null(kiln_graph_crd(g));
    assert_string_equal(kiln_json_get_string(kiln_graph_crd(g), "metadata.name"),
                        "webapps.kiln.dev");
    gt_assert_json(kiln_graph_spec_schema(g),
                   "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\","
                   "\"default\":\"web\"}},\"default\":{}}");
    kiln_graph_free(g);
}

static void test_rgd__header_errors_name_their_fields(void **state)
{
    kiln_errs errs = {0};
    kiln_graph *g = NULL;
    int rc = gt_compile_errs(&g,
                             "apiVersion: kro.run/v1alpha1\n"
                             "kind: Graph\n"
                             "metadata: {}\n"
                             "spec:\n"
                             "  schema:\n"
                             "    apiVersion: v1gamma\n"
                             "    kind: webApp\n"
                             "    scope: Global\n"
                             "    extra: 1\n"
                             "  resources: {}\n",
                             NULL, &errs);
    assert_int_equal(rc, KILN_EINVAL);
    assert_null(g);
    assert_true(gt_has_error(&errs, "apiVersion: expected \"kiln.dev/v1alpha1\", got "
                                    "\"kro.run/v1alpha1\""));
    assert_true(gt_has_error(&errs, "kind: expected \"ResourceGraphDefinition\", got \"Graph\""));
    assert_true(gt_has_error(&errs, "metadata.name: required"));
    assert_true(gt_has_error(&errs, "spec.schema.apiVersion: \"v1gamma\" must match "
                                    "^v[0-9]+((alpha|beta)[0-9]+)?$ (v1, v1alpha1, v2beta3)"));
    assert_true(gt_has_error(&errs, "spec.schema.kind: \"webApp\" must be UpperCamelCase "
                                    "(^[A-Z][a-zA-Z0-9]*$, at most 63 characters)"));
    assert_true(gt_has_error(
        &errs, "spec.schema.scope: expected \"Namespaced\" or \"Cluster\", got \"Global\""));
    assert_true(gt_has_error(&errs, "spec.schema.extra: unknown field"));
    assert_true(gt_has_error(&errs, "spec.resources: expected a list, got object"));
    kiln_errs_free(&errs);
}

static void test_rgd__resource_ids_are_checked(void **state)
{
    kiln_errs errs = {0};
    kiln_graph *g = NULL;
    const char *cm = "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: x}}\n";
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             HEAD SCHEMA "  resources:\n"
                         "    - id: web\n%s"
                         "    - id: Web2\n%s"
                         "    - id: schema\n%s"
                         "    - id: web\n%s"
                         "    - id: string\n%s"
                         "    - id: end\n%s"
                         "    - template: {apiVersion: v1, kind: ConfigMap, metadata: {name: y}}\n",
             cm, cm, cm, cm, cm, cm);
    assert_int_equal(gt_compile_errs(&g, yaml, NULL, &errs), KILN_EINVAL);
    assert_true(gt_has_error(
        &errs, "spec.resources[1].id: \"Web2\" must be lowerCamelCase (^[a-z][a-zA-Z0-9]*$)"));
    assert_true(gt_has_error(&errs, "spec.resources[2].id: \"schema\" is a reserved name"));
    assert_true(gt_has_error(
        &errs, "spec.resources[3].id: duplicate id \"web\" (first at spec.resources[0])"));
    assert_true(gt_has_error(&errs, "spec.resources[4].id: \"string\" is a reserved name"));
    assert_true(gt_has_error(&errs, "spec.resources[5].id: \"end\" is a reserved name"));
    assert_true(gt_has_error(&errs, "spec.resources[6].id: required"));
    kiln_errs_free(&errs);
}

static void test_rgd__wrong_types_report_exact_paths(void **state)
{
    kiln_errs errs = {0};
    kiln_graph *g = NULL;
    int rc = gt_compile_errs(
        &g,
        HEAD SCHEMA "  resources:\n"
                    "    - id: a\n"
                    "      template: {apiVersion: v1, kind: ConfigMap}\n"
                    "    - id: b\n"
                    "      template: {apiVersion: v1, kind: ConfigMap, metadata: x}\n"
                    "      includeWhen: \"${true}\"\n"
                    "    - id: c\n"
                    "      script: 'return nil'\n"
                    "      readyWhen: {x: 1}\n"
                    "    - id: d\n"
                    "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: d}}\n"
                    "      script: 'return nil'\n"
                    "    - id: e\n"
                    "      template: [1]\n"
                    "      colour: red\n"
                    "    - id: f\n"
                    "      script: 'return nil'\n"
                    "      readyWhen: [\"${f}\", 3]\n",
        NULL, &errs);
    assert_int_equal(rc, KILN_EINVAL);
    assert_true(gt_has_error(&errs, "spec.resources[0].template.metadata: required"));
    assert_true(gt_has_error(&errs, "spec.resources[1].template.metadata: expected object, got "
                                    "string"));
    assert_true(gt_has_error(&errs, "spec.resources[1].includeWhen: expected a list of strings, "
                                    "got string"));
    assert_true(gt_has_error(&errs, "spec.resources[2].readyWhen: expected a list of strings, got "
                                    "object"));
    assert_true(gt_has_error(&errs, "spec.resources[3]: exactly one of template, script, "
                                    "externalRef or validation is required, got 2"));
    assert_true(gt_has_error(&errs, "spec.resources[4].template: expected object, got array"));
    assert_true(gt_has_error(&errs, "spec.resources[4].colour: unknown field"));
    assert_true(gt_has_error(&errs, "spec.resources[5].readyWhen[1]: expected string, got "
                                    "integer"));
    kiln_errs_free(&errs);
}

static void test_rgd__schema_errors_carry_the_simpleschema_path(void **state)
{
    kiln_errs errs = {0};
    kiln_graph *g = NULL;
    assert_int_equal(gt_compile_errs(&g,
                                     HEAD "spec:\n"
                                          "  schema:\n"
                                          "    apiVersion: v1\n"
                                          "    kind: WebApp\n"
                                          "    spec:\n"
                                          "      replicas: integer | minimun=1\n"
                                          "  resources: []\n",
                                     NULL, &errs),
                     KILN_EINVAL);
    assert_true(errs.len >= 1);
    assert_non_null(strstr(errs.items[0].msg, "spec.schema.spec.replicas"));
    assert_non_null(strstr(errs.items[0].msg, "minimun"));
    kiln_errs_free(&errs);
}

static void test_rgd__validation_node_fields_are_checked(void **state)
{
    kiln_errs errs = {0};
    kiln_graph *g = NULL;
    int rc = gt_compile_errs(&g,
                             HEAD SCHEMA "  resources:\n"
                                         "    - id: gpuCheck\n"
                                         "      validation:\n"
                                         "        checks: [device, flops]\n"
                                         "        nodeSelector: {a: 1}\n"
                                         "        gpusPerNode: 0\n"
                                         "        maxNodes: -1\n"
                                         "        timeoutSeconds: \"600\"\n"
                                         "        colour: red\n",
                             NULL, &errs);
    assert_int_equal(rc, KILN_EINVAL);
    assert_true(gt_has_error(&errs, "spec.resources[0].validation.checks[1]: unknown check "
                                    "\"flops\" (known: device, memory, hbm-bandwidth, gemm, "
                                    "pcie, p2p)"));
    assert_true(gt_has_error(&errs, "spec.resources[0].validation.nodeSelector.a: expected "
                                    "string, got integer"));
    assert_true(gt_has_error(&errs, "spec.resources[0].validation.gpusPerNode: must be at least "
                                    "1, got 0"));
    assert_true(gt_has_error(&errs, "spec.resources[0].validation.maxNodes: must be at least 0, "
                                    "got -1"));
    assert_true(gt_has_error(&errs, "spec.resources[0].validation.timeoutSeconds: expected "
                                    "integer, got string"));
    assert_true(gt_has_error(&errs, "spec.resources[0].validation.colour: unknown field"));
    kiln_errs_free(&errs);
}

static void test_rgd__validation_node_gets_defaults(void **state)
{
    kiln_graph *g = gt_compile(HEAD SCHEMA "  resources:\n"
                                           "    - id: gpuCheck\n"
                                           "      validation:\n"
                                           "        accelerator: h100\n"
                                           "        gpusPerNode: 8\n",
                               NULL);
    assert_int_equal(kiln_graph_node_kind_of(g, 0), KILN_GRAPH_NODE_VALIDATION);
    gt_assert_json(kiln_graph_node_source(g, 0),
                   "{\"accelerator\":\"h100\",\"gpusPerNode\":8,\"checks\":[\"device\","
                   "\"memory\",\"hbm-bandwidth\",\"gemm\",\"pcie\",\"p2p\"],\"maxNodes\":0,"
                   "\"timeoutSeconds\":600}");
    kiln_graph_free(g);
}

static void test_rgd__foreach_shape_and_iterator_names(void **state)
{
    kiln_errs errs = {0};
    kiln_graph *g = NULL;
    int rc = gt_compile_errs(
        &g,
        HEAD SCHEMA "  resources:\n"
                    "    - id: a\n"
                    "      forEach: [{i: \"${range(1,2)}\", j: \"${range(1,2)}\"}]\n"
                    "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: x}}\n"
                    "    - id: b\n"
                    "      forEach: [{Item: \"${range(1,2)}\"}, {self: \"${range(1,2)}\"}]\n"
                    "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: x}}\n"
                    "    - id: c\n"
                    "      forEach: [{a: \"${range(1,2)}\"}, {k: \"${range(1,2)}\"}, "
                    "{k: \"${range(1,2)}\"}]\n"
                    "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: x}}\n"
                    "    - id: d\n"
                    "      forEach: [{i: \"${range(1,2)}\"}]\n"
                    "      externalRef: {apiVersion: v1, kind: ConfigMap, metadata: {name: x}}\n",
        NULL, &errs);
    assert_int_equal(rc, KILN_EINVAL);
    assert_true(gt_has_error(&errs, "spec.resources[0].forEach[0]: expected a map with exactly "
                                    "one iterator, got 2 keys"));
    assert_true(gt_has_error(&errs, "spec.resources[1].forEach[0]: iterator \"Item\" must be "
                                    "lowerCamelCase (^[a-z][a-zA-Z0-9]*$)"));
    assert_true(
        gt_has_error(&errs, "spec.resources[1].forEach[1]: iterator \"self\" is a reserved name"));
    assert_true(gt_has_error(&errs, "spec.resources[2].forEach[2]: duplicate iterator \"k\""));
    assert_true(gt_has_error(&errs, "spec.resources[2].forEach[0]: iterator \"a\" is also a "
                                    "resource id (spec.resources[0])"));
    assert_true(gt_has_error(&errs, "spec.resources[3].forEach: not allowed on externalRef "
                                    "resources"));
    kiln_errs_free(&errs);
}

static void test_rgd__foreach_with_eleven_dimensions_is_rejected(void **state)
{
    char yaml[4096];
    int n = snprintf(yaml, sizeof yaml, HEAD SCHEMA "  resources:\n    - id: a\n      forEach:\n");
    for (int i = 0; i < 11; i++)
        n += snprintf(yaml + n, sizeof yaml - n, "        - i%d: \"${range(1, 1)}\"\n", i);
    snprintf(yaml + n, sizeof yaml - n,
             "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: x}}\n");
    gt_expect_error(yaml, "spec.resources[0].forEach: 11 iterators exceed the limit of 10 "
                          "dimensions");
}

static void test_rgd__cluster_scope_and_custom_group(void **state)
{
    kiln_graph *g = gt_compile(HEAD "spec:\n"
                                    "  schema:\n"
                                    "    apiVersion: v2beta1\n"
                                    "    kind: GpuRuntime\n"
                                    "    group: platform.example.com\n"
                                    "    scope: Cluster\n"
                                    "  resources:\n"
                                    "    - id: ns\n"
                                    "      template: {apiVersion: v1, kind: Namespace, "
                                    "metadata: {name: gpu-operator}}\n",
                               NULL);
    assert_true(kiln_graph_cluster_scoped(g));
    assert_string_equal(kiln_graph_api_version(g), "platform.example.com/v2beta1");
    assert_string_equal(kiln_json_get_string(kiln_graph_crd(g), "spec.scope"), "Cluster");
    kiln_graph_free(g);
}

static void test_rgd__not_an_object_is_one_clear_error(void **state)
{
    kiln_errs errs = {0};
    kiln_graph *g = NULL;
    json_t *doc = json_string("rgd");
    assert_int_equal(kiln_graph_compile(&g, doc, NULL, &errs), KILN_EINVAL);
    assert_null(g);
    assert_int_equal(errs.len, 1);
    assert_string_equal(errs.items[0].msg,
                        "<document>: expected a ResourceGraphDefinition object, got string");
    kiln_errs_free(&errs);
    json_decref(doc);
    /* errs may be NULL: the code still says it failed */
    assert_int_equal(kiln_graph_compile(&g, NULL, NULL, NULL), KILN_EINVAL);
    assert_null(g);
}

static void test_rgd__status_projections_shape_the_crd_status(void **state)
{
    kiln_graph *g = gt_compile(HEAD SCHEMA "    status:\n"
                                           "      ready: boolean | ${cfg.data ~= nil}\n"
                                           "      name: ${cfg.metadata.name}\n"
                                           "      url: http://${schema.spec.name}\n"
                                           "      nested: {names: [\"${schema.spec.name}\"]}\n"
                                           "  resources:\n"
                                           "    - id: cfg\n"
                                           "      template: {apiVersion: v1, kind: ConfigMap, "
                                           "metadata: {name: c}}\n",
                               NULL);
    const json_t *props = json_object_get(kiln_graph_status_schema(g), "properties");
    gt_assert_json(json_object_get(props, "ready"), "{\"type\":\"boolean\"}");
    gt_assert_json(json_object_get(props, "name"),
                   "{\"x-kubernetes-preserve-unknown-fields\":true}");
    gt_assert_json(json_object_get(props, "url"), "{\"type\":\"string\"}");
    gt_assert_json(json_object_get(props, "nested"),
                   "{\"type\":\"object\",\"properties\":{\"names\":{\"type\":\"array\","
                   "\"items\":{\"x-kubernetes-preserve-unknown-fields\":true}}}}");
    /* kiln's own fields are there too */
    assert_non_null(json_object_get(props, "conditions"));
    assert_non_null(json_object_get(props, "state"));
    kiln_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rgd__minimal_graph_compiles_with_defaults),
        cmocka_unit_test(test_rgd__header_errors_name_their_fields),
        cmocka_unit_test(test_rgd__resource_ids_are_checked),
        cmocka_unit_test(test_rgd__wrong_types_report_exact_paths),
        cmocka_unit_test(test_rgd__schema_errors_carry_the_simpleschema_path),
        cmocka_unit_test(test_rgd__validation_node_fields_are_checked),
        cmocka_unit_test(test_rgd__validation_node_gets_defaults),
        cmocka_unit_test(test_rgd__foreach_shape_and_iterator_names),
        cmocka_unit_test(test_rgd__foreach_with_eleven_dimensions_is_rejected),
        cmocka_unit_test(test_rgd__cluster_scope_and_custom_group),
        cmocka_unit_test(test_rgd__not_an_object_is_one_clear_error),
        cmocka_unit_test(test_rgd__status_projections_shape_the_crd_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
