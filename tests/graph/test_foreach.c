/* forEach collections: cartesian product in order, identity, limits, and how
 * other nodes see a collection. */
#include <time.h>

#include "graph_test.h"

#define RGD(resources)                                                                             \
    "apiVersion: kiln.dev/v1alpha1\n"                                                              \
    "kind: ResourceGraphDefinition\n"                                                              \
    "metadata: {name: fe}\n"                                                                       \
    "spec:\n"                                                                                      \
    "  schema:\n"                                                                                  \
    "    apiVersion: v1alpha1\n"                                                                   \
    "    kind: Fe\n"                                                                               \
    "    spec:\n"                                                                                  \
    "      regions: \"[]string | default=[\\\"eu\\\",\\\"us\\\"]\"\n"                              \
    "      shards: integer | default=2\n"                                                          \
    "  resources:\n" resources

#define INST "apiVersion: kiln.dev/v1alpha1\nkind: Fe\nmetadata: {name: i, namespace: ns}\n"

static void test_foreach__cartesian_product_first_iterator_outermost(void **state)
{
    kiln_graph *g = gt_compile(RGD("    - id: cells\n"
                                   "      forEach:\n"
                                   "        - region: ${schema.spec.regions}\n"
                                   "        - shard: ${range(1, schema.spec.shards)}\n"
                                   "      template:\n"
                                   "        apiVersion: v1\n"
                                   "        kind: ConfigMap\n"
                                   "        metadata: {name: \"c-${region}-${shard}\"}\n"
                                   "        data: {shard: \"${shard}\"}\n"),
                               NULL);
    assert_int_equal(kiln_graph_node_flags(g, 0), KILN_GRAPH_NODE_FOREACH);
    kiln_render_result *r = gt_render(g, gt_lua(), INST, NULL, true);
    gt_assert_state(r, "cells", KILN_NODE_READY);
    gt_assert_json(
        gt_node(r, "cells")->desired,
        "[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c-eu-1\","
        "\"namespace\":\"ns\"},\"data\":{\"shard\":1}},"
        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c-eu-2\","
        "\"namespace\":\"ns\"},\"data\":{\"shard\":2}},"
        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c-us-1\","
        "\"namespace\":\"ns\"},\"data\":{\"shard\":1}},"
        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c-us-2\","
        "\"namespace\":\"ns\"},\"data\":{\"shard\":2}}]");
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_foreach__items_with_the_same_identity_fail_the_node(void **state)
{
    kiln_graph_options o = {.skip_dry_render = true};
    kiln_graph *g = gt_compile(RGD("    - id: clash\n"
                                   "      forEach:\n"
                                   "        - region: ${schema.spec.regions}\n"
                                   "      template:\n"
                                   "        apiVersion: v1\n"
                                   "        kind: ConfigMap\n"
                                   "        metadata: {name: \"c-${region and 'same'}\"}\n"
                                   "    - id: other\n"
                                   "      template: {apiVersion: v1, kind: ConfigMap, "
                                   "metadata: {name: o}}\n"),
                               &o);
    kiln_render_result *r = gt_render(g, gt_lua(), INST, NULL, true);
    gt_assert_state(r, "clash", KILN_NODE_ERROR);
    assert_int_equal(gt_node(r, "clash")->code, KILN_EINVAL);
    assert_string_equal(gt_node(r, "clash")->message,
                        "spec.resources[0]: items 0 and 1 have the same identity (ConfigMap "
                        "ns/c-same)");
    gt_assert_state(r, "other", KILN_NODE_READY);
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_foreach__more_than_1000_items_is_a_limit_error(void **state)
{
    kiln_graph_options o = {.skip_dry_render = true};
    kiln_graph *g = gt_compile(RGD("    - id: many\n"
                                   "      forEach:\n"
                                   "        - a: ${range(1, schema.spec.shards)}\n"
                                   "        - b: ${range(1, 100)}\n"
                                   "      template:\n"
                                   "        apiVersion: v1\n"
                                   "        kind: ConfigMap\n"
                                   "        metadata: {name: \"m-${a}-${b}\"}\n"
                                   "    - id: fine\n"
                                   "      template: {apiVersion: v1, kind: ConfigMap, "
                                   "metadata: {name: f}}\n"),
                               &o);
    kiln_render_result *r = gt_render(g, gt_lua(), INST "spec: {shards: 11}\n", NULL, true);
    gt_assert_state(r, "many", KILN_NODE_ERROR);
    assert_int_equal(gt_node(r, "many")->code, KILN_ELIMIT);
    assert_string_equal(gt_node(r, "many")->message,
                        "spec.resources[0].forEach: more than 1000 items (the product of the "
                        "iterator lists)");
    gt_assert_state(r, "fine", KILN_NODE_READY);
    kiln_render_result_free(r);

    /* exactly 1,000 is allowed, and fast */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = gt_render(g, gt_lua(), INST "spec: {shards: 10}\n", NULL, true);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    gt_assert_state(r, "many", KILN_NODE_READY);
    assert_int_equal(json_array_size(gt_node(r, "many")->desired), 1000);
    assert_string_equal(
        kiln_json_get_string(json_array_get(gt_node(r, "many")->desired, 999), "metadata.name"),
        "m-10-100");
    fprintf(stderr, "# 1000-item forEach render: %.2f ms\n",
            (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_foreach__empty_list_is_an_empty_ready_collection(void **state)
{
    kiln_graph *g = gt_compile(RGD("    - id: none\n"
                                   "      forEach: [{region: \"${schema.spec.regions}\"}]\n"
                                   "      template: {apiVersion: v1, kind: ConfigMap, metadata: "
                                   "{name: \"n-${region}\"}}\n"
                                   "    - id: after\n"
                                   "      template: {apiVersion: v1, kind: ConfigMap, metadata: "
                                   "{name: \"after-${#none}\"}}\n"),
                               NULL);
    kiln_render_result *r = gt_render(g, gt_lua(), INST "spec: {regions: []}\n", NULL, false);
    gt_assert_state(r, "none", KILN_NODE_READY);
    gt_assert_json(gt_node(r, "none")->desired, "[]");
    gt_assert_state(r, "after", KILN_NODE_PENDING);
    assert_string_equal(kiln_json_get_string(gt_node(r, "after")->desired, "metadata.name"),
                        "after-0");
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_foreach__others_see_a_collection_as_a_list(void **state)
{
    kiln_graph *g = gt_compile(RGD("    - id: shard\n"
                                   "      forEach: [{i: \"${range(1, schema.spec.shards)}\"}]\n"
                                   "      template: {apiVersion: v1, kind: ConfigMap, metadata: "
                                   "{name: \"s-${i}\"}}\n"
                                   "    - id: index\n"
                                   "      template:\n"
                                   "        apiVersion: v1\n"
                                   "        kind: ConfigMap\n"
                                   "        metadata: {name: idx}\n"
                                   "        data:\n"
                                   "          count: \"${#shard}\"\n"
                                   "          last: \"${shard[#shard].metadata.name}\"\n"),
                               NULL);
    kiln_render_result *r = gt_render(g, gt_lua(), INST "spec: {shards: 3}\n", NULL, true);
    gt_assert_json(json_object_get(gt_node(r, "index")->desired, "data"),
                   "{\"count\":3,\"last\":\"s-3\"}");
    kiln_render_result_free(r);

    /* online: the observed list, not the desired one */
    r = gt_render(g, gt_lua(), INST "spec: {shards: 3}\n",
                  "{\"shard\": [{\"metadata\": {\"name\": \"s-1\"}}, {\"metadata\": {\"name\": "
                  "\"s-2\"}}]}",
                  false);
    gt_assert_state(r, "shard", KILN_NODE_PENDING);
    assert_string_equal(gt_node(r, "shard")->message, "2 of 3 items observed");
    gt_assert_state(r, "index", KILN_NODE_WAITING);
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_foreach__list_from_another_resource_and_bad_lists(void **state)
{
    kiln_graph_options o = {.skip_dry_render = true};
    kiln_graph *g = gt_compile(RGD("    - id: zones\n"
                                   "      externalRef: {apiVersion: v1, kind: ConfigMap, "
                                   "metadata: {name: zones}}\n"
                                   "    - id: perZone\n"
                                   "      forEach: [{zone: \"${zones.data.list}\"}]\n"
                                   "      template: {apiVersion: v1, kind: ConfigMap, metadata: "
                                   "{name: \"z-${zone}\"}}\n"
                                   "    - id: notList\n"
                                   "      forEach: [{x: \"${'abc'}\"}]\n"
                                   "      template: {apiVersion: v1, kind: ConfigMap, metadata: "
                                   "{name: \"n-${x}\"}}\n"),
                               &o);
    assert_int_equal(kiln_graph_node_dep_count(g, 1), 1);
    kiln_render_result *r =
        gt_render(g, gt_lua(), INST, "{\"zones\": {\"data\": {\"list\": [\"a\", \"b\"]}}}", false);
    assert_int_equal(json_array_size(gt_node(r, "perZone")->desired), 2);
    assert_string_equal(
        kiln_json_get_string(json_array_get(gt_node(r, "perZone")->desired, 1), "metadata.name"),
        "z-b");
    gt_assert_state(r, "notList", KILN_NODE_ERROR);
    assert_string_equal(gt_node(r, "notList")->message,
                        "spec.resources[2].forEach[0].x: expected a list, got string");
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_foreach__script_runs_once_per_item(void **state)
{
    kiln_graph *g = gt_compile(RGD("    - id: gen\n"
                                   "      forEach: [{region: \"${schema.spec.regions}\"}]\n"
                                   "      script: |\n"
                                   "        if region == 'us' then return nil end\n"
                                   "        return {apiVersion = 'v1', kind = 'Secret',\n"
                                   "                metadata = {name = 'sec-' .. region}}\n"),
                               NULL);
    kiln_render_result *r = gt_render(g, gt_lua(), INST, NULL, true);
    gt_assert_json(gt_node(r, "gen")->desired,
                   "[{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"sec-eu\","
                   "\"namespace\":\"ns\"}}]");
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_foreach__ten_dimensions_are_allowed(void **state)
{
    char yaml[4096];
    int n = snprintf(yaml, sizeof yaml, RGD("    - id: a\n      forEach:\n"));
    for (int i = 0; i < 10; i++)
        n += snprintf(yaml + n, sizeof yaml - n, "        - d%d: \"${range(1, 1)}\"\n", i);
    n += snprintf(yaml + n, sizeof yaml - n,
                  "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: \"x");
    for (int i = 0; i < 10; i++)
        n += snprintf(yaml + n, sizeof yaml - n, "-${d%d}", i);
    snprintf(yaml + n, sizeof yaml - n, "\"}}\n");
    kiln_graph *g = gt_compile(yaml, NULL);
    kiln_render_result *r = gt_render(g, gt_lua(), INST, NULL, true);
    assert_string_equal(
        kiln_json_get_string(json_array_get(gt_node(r, "a")->desired, 0), "metadata.name"),
        "x-1-1-1-1-1-1-1-1-1-1");
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_foreach__cartesian_product_first_iterator_outermost),
        cmocka_unit_test(test_foreach__items_with_the_same_identity_fail_the_node),
        cmocka_unit_test(test_foreach__more_than_1000_items_is_a_limit_error),
        cmocka_unit_test(test_foreach__empty_list_is_an_empty_ready_collection),
        cmocka_unit_test(test_foreach__others_see_a_collection_as_a_list),
        cmocka_unit_test(test_foreach__list_from_another_resource_and_bad_lists),
        cmocka_unit_test(test_foreach__script_runs_once_per_item),
        cmocka_unit_test(test_foreach__ten_dimensions_are_allowed),
    };
    return cmocka_run_group_tests(tests, gt_lua_setup, gt_lua_teardown);
}
