/* Dependency inference: which names in templates, scripts, forEach,
 * includeWhen and status expressions become edges, and what is rejected. */
#include "graph_test.h"

#define HEAD                                                                                       \
    "apiVersion: kiln.dev/v1alpha1\n"                                                              \
    "kind: ResourceGraphDefinition\n"                                                              \
    "metadata: {name: deps}\n"                                                                     \
    "spec:\n"                                                                                      \
    "  schema:\n"                                                                                  \
    "    apiVersion: v1alpha1\n"                                                                   \
    "    kind: Deps\n"                                                                             \
    "    spec:\n"                                                                                  \
    "      name: string | default=app\n"                                                           \
    "      enabled: boolean | default=true\n"

#define CM(id, name)                                                                               \
    "    - id: " id "\n      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: \"" name \
    "\"}}\n"

/* "a: b c" per node, in declaration order. */
static void assert_deps(const kiln_graph *g, const char *want)
{
    char buf[1024] = "";
    for (size_t i = 0; i < kiln_graph_node_count(g); i++) {
        if (i)
            strcat(buf, "; ");
        strcat(buf, kiln_graph_node_id(g, i));
        strcat(buf, ":");
        for (size_t j = 0; j < kiln_graph_node_dep_count(g, i); j++) {
            strcat(buf, " ");
            strcat(buf, kiln_graph_node_id(g, kiln_graph_node_dep(g, i, j)));
        }
    }
    assert_string_equal(buf, want);
}

static void assert_topo(const kiln_graph *g, const char *want)
{
    size_t n;
    const size_t *order = kiln_graph_topological_order(g, &n);
    char buf[1024] = "";
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(buf, " ");
        strcat(buf, kiln_graph_node_id(g, order[i]));
    }
    assert_string_equal(buf, want);
}

static void test_deps__every_expression_kind_contributes_edges(void **state)
{
    kiln_graph *g = gt_compile(
        HEAD "    status:\n"
             "      fromStatus: ${viaStatus.data.x}\n"
             "  resources:\n"
             "    - id: user\n"
             "      template:\n"
             "        apiVersion: v1\n"
             "        kind: ConfigMap\n"
             "        metadata: {name: user}\n"
             "        data: {a: \"${viaTemplate.metadata.name}\", \"${viaKey}\": literal}\n"
             "      includeWhen: [\"${viaInclude.metadata.name ~= ''}\"]\n"
             "    - id: looper\n"
             "      forEach: [{i: \"${viaForEach.data.list}\"}]\n"
             "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: \"l-${i}\"}}\n"
             "    - id: scripted\n"
             "      script: |\n"
             "        -- viaComment is not read; 'viaString' neither\n"
             "        local cm = k8s.object('v1', 'ConfigMap', viaScript.metadata.name .. 'x')\n"
             "        cm.data = {viaKey = 'x', y = cm.viaField}\n"
             "        return cm\n" CM("viaTemplate", "t") CM("viaInclude", "i")
                 CM("viaForEach", "f") CM("viaScript", "s") CM("viaStatus", "st") CM("viaKey", "k")
                     CM("viaComment", "c") CM("viaString", "str") CM("viaField", "fld"),
        NULL);
    assert_deps(g, "user: viaTemplate viaInclude; looper: viaForEach; scripted: viaScript; "
                   "viaTemplate:; viaInclude:; viaForEach:; viaScript:; viaStatus:; viaKey:; "
                   "viaComment:; viaString:; viaField:");
    assert_topo(g, "viaTemplate viaInclude user viaForEach looper viaScript scripted viaStatus "
                   "viaKey viaComment viaString viaField");
    json_t *d = kiln_graph_describe(g);
    assert_string_equal(
        kiln_json_get_string(json_array_get(json_object_get(d, "resources"), 2), "id"), "user");
    gt_assert_json(json_object_get(json_array_get(json_object_get(d, "resources"), 2), "dependsOn"),
                   "[\"viaTemplate\",\"viaInclude\"]");
    json_decref(d);
    kiln_graph_free(g);
}

static void test_deps__schema_is_not_an_edge_and_order_keeps_author_order(void **state)
{
    kiln_graph *g =
        gt_compile(HEAD "  resources:\n" CM("c", "${schema.spec.name}-${b.metadata.name}")
                       CM("a", "${schema.spec.name}") CM("b", "${a.metadata.name}-b"),
                   NULL);
    assert_deps(g, "c: b; a:; b: a");
    assert_topo(g, "a b c");
    kiln_graph_free(g);
}

static void test_deps__cycle_is_rejected_with_the_cycle_spelled_out(void **state)
{
    gt_expect_error(HEAD "  resources:\n" CM("first", "x") CM("a", "${b.metadata.name}")
                        CM("b", "${c.metadata.name}") CM("c", "${a.metadata.name}"),
                    "graph contains a cycle: a -> b -> c -> a");
}

static void test_deps__self_reference_is_rejected(void **state)
{
    gt_expect_error(HEAD "  resources:\n" CM("web", "${web.metadata.name}"),
                    "spec.resources[0].template.metadata.name: resource \"web\" may not "
                    "reference itself");
}

static void test_deps__unknown_identifier_names_field_and_name(void **state)
{
    gt_expect_error(HEAD "  resources:\n" CM("deployment", "x")
                        CM("svc", "${deploymnt.metadata.name}"),
                    "spec.resources[1].template.metadata.name: unknown identifier \"deploymnt\"");
    gt_expect_error(HEAD "  resources:\n"
                         "    - id: s\n"
                         "      script: 'return io.open(\"/etc/passwd\")'\n",
                    "spec.resources[0].script: unknown identifier \"io\"");
}

static void test_deps__locals_helpers_and_library_are_known(void **state)
{
    kiln_graph *g = gt_compile(
        HEAD
        "  lua: |\n"
        "    prefix = 'p-'\n"
        "    function label(x) return prefix .. x end\n"
        "  resources:\n"
        "    - id: s\n"
        "      script: |\n"
        "        local n = label(schema.spec.name)\n"
        "        for _, v in ipairs({1}) do n = n .. tostring(v) end\n"
        "        return {apiVersion = 'v1', kind = 'ConfigMap',\n"
        "                metadata = {name = string.lower(n)}}\n"
        "    - id: t\n"
        "      template:\n"
        "        apiVersion: v1\n"
        "        kind: ConfigMap\n"
        "        metadata: {name: \"${label('t')}\"}\n"
        "        data: {n: \"${string.format('%d', math.max(1, #table.concat({'a', 'b'})))}\"}\n",
        NULL);
    assert_deps(g, "s:; t:");
    kiln_graph_free(g);
}

static void test_deps__helpers_may_not_read_resources(void **state)
{
    gt_expect_error(HEAD "  lua: |\n"
                         "    function peek() return web.metadata.name end\n"
                         "  resources:\n" CM("web", "w"),
                    "spec.lua: helpers may not read resource \"web\"; pass it as an argument");
}

static void test_deps__ready_when_may_reference_only_its_own_resource(void **state)
{
    gt_expect_error(
        HEAD "  resources:\n" CM("service", "s")
            CM("deployment", "d") "      readyWhen: [\"${service.spec.clusterIP ~= nil}\"]\n",
        "spec.resources[1].readyWhen[0]: readyWhen may reference only "
        "\"deployment\", not \"service\"");
    gt_expect_error(HEAD "  resources:\n" CM("deployment",
                                             "d") "      readyWhen: [\"${schema.spec.enabled}\"]\n",
                    "spec.resources[0].readyWhen[0]: readyWhen may reference only "
                    "\"deployment\", not \"schema\"");
    kiln_graph *g = gt_compile(
        HEAD
        "  resources:\n" CM("deployment", "d") "      readyWhen: [\"${deployment.data ~= nil}\"]\n",
        NULL);
    assert_deps(g, "deployment:");
    assert_int_equal(kiln_graph_node_flags(g, 0), KILN_GRAPH_NODE_READY_WHEN);
    kiln_graph_free(g);
}

static void test_deps__include_and_ready_want_a_single_expression(void **state)
{
    gt_expect_error(
        HEAD "  resources:\n" CM("a", "a") "      includeWhen: [\"yes ${schema.spec.enabled}\"]\n",
        "spec.resources[0].includeWhen[0]: expected a single ${...} expression, got "
        "\"yes ${schema.spec.enabled}\"");
}

static void test_deps__iterators_may_not_reference_each_other(void **state)
{
    gt_expect_error(HEAD "  resources:\n"
                         "    - id: grid\n"
                         "      forEach: [{col: \"${range(1, 2)}\"}, {row: \"${range(1, col)}\"}]\n"
                         "      template: {apiVersion: v1, kind: ConfigMap, metadata: "
                         "{name: \"g-${col}-${row}\"}}\n",
                    "spec.resources[0].forEach[1].row: forEach iterators may not reference each "
                    "other (\"col\")");
}

static void test_deps__every_iterator_must_be_in_the_name(void **state)
{
    gt_expect_error(HEAD "  resources:\n"
                         "    - id: grid\n"
                         "      forEach: [{col: \"${range(1, 2)}\"}, {row: \"${range(1, 2)}\"}]\n"
                         "      template:\n"
                         "        apiVersion: v1\n"
                         "        kind: ConfigMap\n"
                         "        metadata: {name: \"g-${col}\"}\n"
                         "        data: {row: \"${row}\"}\n",
                    "spec.resources[0].forEach[1]: iterator \"row\" must appear in "
                    "spec.resources[0].template.metadata.name or "
                    "spec.resources[0].template.metadata.namespace");
    kiln_graph *g = gt_compile(HEAD "  resources:\n"
                                    "    - id: grid\n"
                                    "      forEach: [{x: \"${range(1, 2)}\"}, {ns: \"${{'a'}}\"}]\n"
                                    "      template:\n"
                                    "        apiVersion: v1\n"
                                    "        kind: ConfigMap\n"
                                    "        metadata: {name: \"g-${x}\", namespace: \"${ns}\"}\n",
                               NULL);
    assert_int_equal(kiln_graph_node_flags(g, 0), KILN_GRAPH_NODE_FOREACH);
    kiln_graph_free(g);
}

static void test_deps__lua_syntax_errors_are_reported_with_their_field(void **state)
{
    kiln_errs errs = {0};
    kiln_graph *g = NULL;
    assert_int_equal(
        gt_compile_errs(&g, HEAD "  resources:\n" CM("a", "${schema.spec.name +}") CM("b", "${(}"),
                        NULL, &errs),
        KILN_ESCRIPT);
    assert_int_equal(errs.len, 2);
    assert_non_null(strstr(errs.items[0].msg, "spec.resources[0].template.metadata.name"));
    assert_non_null(strstr(errs.items[1].msg, "spec.resources[1].template.metadata.name"));
    kiln_errs_free(&errs);
}

static void test_deps__status_literals_are_rejected(void **state)
{
    gt_expect_error(HEAD "    status:\n"
                         "      fixed: hello\n"
                         "  resources:\n" CM("a", "a"),
                    "spec.schema.status.fixed: status fields must be ${...} expressions, got "
                    "\"hello\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deps__every_expression_kind_contributes_edges),
        cmocka_unit_test(test_deps__schema_is_not_an_edge_and_order_keeps_author_order),
        cmocka_unit_test(test_deps__cycle_is_rejected_with_the_cycle_spelled_out),
        cmocka_unit_test(test_deps__self_reference_is_rejected),
        cmocka_unit_test(test_deps__unknown_identifier_names_field_and_name),
        cmocka_unit_test(test_deps__locals_helpers_and_library_are_known),
        cmocka_unit_test(test_deps__helpers_may_not_read_resources),
        cmocka_unit_test(test_deps__ready_when_may_reference_only_its_own_resource),
        cmocka_unit_test(test_deps__include_and_ready_want_a_single_expression),
        cmocka_unit_test(test_deps__iterators_may_not_reference_each_other),
        cmocka_unit_test(test_deps__every_iterator_must_be_in_the_name),
        cmocka_unit_test(test_deps__lua_syntax_errors_are_reported_with_their_field),
        cmocka_unit_test(test_deps__status_literals_are_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
