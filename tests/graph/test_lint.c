/* What `kiln lint` relies on: compile reports every problem at once, each
 * with its path, including the configuration errors the dry render finds. */
#include "graph_test.h"

#define HEAD                                                                                       \
    "apiVersion: kiln.dev/v1alpha1\n"                                                              \
    "kind: ResourceGraphDefinition\n"                                                              \
    "metadata: {name: lint}\n"                                                                     \
    "spec:\n"                                                                                      \
    "  schema:\n"                                                                                  \
    "    apiVersion: v1alpha1\n"                                                                   \
    "    kind: Lint\n"

#define SPEC                                                                                       \
    "    spec:\n"                                                                                  \
    "      name: string | required=true\n"                                                         \
    "      tier: string | required=true enum=gold,silver\n"                                        \
    "      count: integer | required=true minimum=5\n"                                             \
    "      zones: \"[]string | default=[\\\"a\\\"]\"\n"

static void test_lint__every_problem_is_reported_at_once(void **state)
{
    kiln_errs errs = {0};
    kiln_graph *g = NULL;
    int rc = gt_compile_errs(&g,
                             HEAD SPEC "    status:\n"
                                       "      fixed: 3\n"
                                       "  resources:\n"
                                       "    - id: Bad\n"
                                       "      template: {apiVersion: v1, kind: ConfigMap, "
                                       "metadata: {name: b}}\n"
                                       "    - id: typo\n"
                                       "      template: {apiVersion: v1, kind: ConfigMap, "
                                       "metadata: {name: \"${schema.spec.name}-${confg}\"}}\n"
                                       "    - id: syntax\n"
                                       "      template: {apiVersion: v1, kind: ConfigMap, "
                                       "metadata: {name: \"${schema.spec.name ..}\"}}\n",
                             NULL, &errs);
    assert_int_equal(rc, KILN_EINVAL);
    assert_null(g);
    assert_true(gt_has_error(
        &errs, "spec.resources[0].id: \"Bad\" must be lowerCamelCase (^[a-z][a-zA-Z0-9]*$)"));
    assert_true(gt_has_error(&errs, "spec.resources[1].template.metadata.name: unknown "
                                    "identifier \"confg\""));
    assert_true(gt_has_error(&errs, "spec.schema.status.fixed: status fields must be ${...} "
                                    "expressions, got integer"));
    bool syntax = false;
    for (size_t i = 0; i < errs.len; i++)
        syntax = syntax || (errs.items[i].code == KILN_ESCRIPT &&
                            strstr(errs.items[i].msg, "spec.resources[2].template.metadata.name"));
    assert_true(syntax);
    assert_int_equal(errs.len, 4);
    kiln_errs_free(&errs);
}

static void test_lint__dry_render_reports_schema_only_failures(void **state)
{
    kiln_errs errs = {0};
    kiln_graph *g = NULL;
    int rc = gt_compile_errs(&g,
                             HEAD SPEC "  resources:\n"
                                       "    - id: cm\n"
                                       "      template:\n"
                                       "        apiVersion: v1\n"
                                       "        kind: ConfigMap\n"
                                       "        metadata: {name: x}\n"
                                       "        data: {v: \"${schema.spec.count .. {}}\"}\n"
                                       "    - id: flag\n"
                                       "      includeWhen: [\"${schema.spec.count}\"]\n"
                                       "      template: {apiVersion: v1, kind: ConfigMap, "
                                       "metadata: {name: f}}\n",
                             NULL, &errs);
    assert_int_equal(rc, KILN_ESCRIPT);
    assert_int_equal(errs.len, 2);
    assert_non_null(strstr(errs.items[0].msg, "spec.resources[0].template.data.v: "));
    assert_non_null(strstr(errs.items[0].msg, "concatenate"));
    assert_string_equal(errs.items[1].msg,
                        "spec.resources[1].includeWhen[0]: expected boolean, got integer");
    kiln_errs_free(&errs);
}

static void test_lint__required_fields_get_placeholders_in_the_dry_render(void **state)
{
    /* Without placeholders string.upper(nil) and 10 // nil would fail. */
    kiln_graph *g =
        gt_compile(HEAD SPEC "  resources:\n"
                             "    - id: cm\n"
                             "      template:\n"
                             "        apiVersion: v1\n"
                             "        kind: ConfigMap\n"
                             "        metadata: {name: \"${string.lower(schema.spec.name)}\"}\n"
                             "        data:\n"
                             "          tier: \"${string.upper(schema.spec.tier)}\"\n"
                             "          per: \"${100 // schema.spec.count}\"\n",
                   NULL);
    kiln_graph_free(g);
}

static void test_lint__dry_render_tolerates_missing_status(void **state)
{
    kiln_graph *g = gt_compile(HEAD SPEC "  resources:\n"
                                         "    - id: svc\n"
                                         "      template: {apiVersion: v1, kind: Service, "
                                         "metadata: {name: s}}\n"
                                         "    - id: cm\n"
                                         "      template:\n"
                                         "        apiVersion: v1\n"
                                         "        kind: ConfigMap\n"
                                         "        metadata: {name: c}\n"
                                         "        data: {ip: \"${svc.status.loadBalancer.ip}\"}\n",
                               NULL);
    kiln_graph_free(g);
}

static void test_lint__cluster_scoped_kind_missing_namespace_is_caught(void **state)
{
    gt_expect_error(HEAD "    scope: Cluster\n"
                         "  resources:\n"
                         "    - id: cm\n"
                         "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n",
                    "spec.resources[0].template.metadata.namespace: ConfigMap \"c\" is "
                    "namespaced and the instance is cluster-scoped: set a namespace");
    gt_expect_error(HEAD
                    "  resources:\n"
                    "    - id: ns\n"
                    "      template: {apiVersion: v1, kind: Namespace, metadata: {name: extra, "
                    "namespace: x}}\n",
                    "spec.resources[0].template.metadata.namespace: Namespace is cluster-scoped "
                    "and takes no namespace");
}

static void test_lint__identity_collision_with_defaults_is_caught(void **state)
{
    gt_expect_error(HEAD "    spec:\n"
                         "      zones: \"[]string | default=[\\\"a\\\",\\\"b\\\"]\"\n"
                         "  resources:\n"
                         "    - id: perZone\n"
                         "      forEach: [{zone: \"${schema.spec.zones}\"}]\n"
                         "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: "
                         "\"z${zone and ''}\"}}\n",
                    "spec.resources[0]: items 0 and 1 have the same identity (ConfigMap "
                    "default/z)");
}

static void test_lint__skip_dry_render_compiles_what_only_fails_at_render(void **state)
{
    kiln_graph_options o = {.skip_dry_render = true};
    kiln_graph *g = gt_compile(HEAD "  resources:\n"
                                    "    - id: cm\n"
                                    "      template: {apiVersion: v1, kind: ConfigMap, "
                                    "metadata: {name: \"${nil .. 'x'}\"}}\n",
                               &o);
    kiln_graph_free(g);
}

static const json_t *deployment_schema(void *ud, const char *api_version, const char *kind)
{
    return strcmp(api_version, "apps/v1") == 0 && strcmp(kind, "Deployment") == 0 ? ud : NULL;
}

static void test_lint__templates_are_checked_against_their_kind_schema(void **state)
{
    json_t *schema =
        gt_json("{\"type\":\"object\",\"properties\":{\"apiVersion\":{\"type\":\"string\"},"
                "\"kind\":{\"type\":\"string\"},\"metadata\":{\"type\":\"object\","
                "\"x-kubernetes-preserve-unknown-fields\":true},\"spec\":{\"type\":\"object\","
                "\"properties\":{\"replicas\":{\"type\":\"integer\"},\"paused\":{\"type\":"
                "\"boolean\"},\"template\":{\"type\":\"object\",\"x-kubernetes-preserve-unknown-"
                "fields\":true},\"selector\":{\"type\":\"object\",\"properties\":{\"matchLabels\":"
                "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}}},\"ports\":"
                "{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"port\":{"
                "\"x-kubernetes-int-or-string\":true}}}}}}}}");
    kiln_graph_options o = {.kind_schema = deployment_schema, .kind_schema_userdata = schema};
    kiln_errs errs = {0};
    kiln_graph *g = NULL;
    int rc = gt_compile_errs(&g,
                             HEAD SPEC "  resources:\n"
                                       "    - id: web\n"
                                       "      template:\n"
                                       "        apiVersion: apps/v1\n"
                                       "        kind: Deployment\n"
                                       "        metadata: {name: web, anything: [1]}\n"
                                       "        spec:\n"
                                       "          replicas: two\n"
                                       "          replicsa: 1\n"
                                       "          paused: \"${schema.spec.count > 1}\"\n"
                                       "          template: {free: form}\n"
                                       "          selector: {matchLabels: {app: 1}}\n"
                                       "          ports: [{port: 80}, {port: http}, {port: true}]\n"
                                       "    - id: other\n"
                                       "      template: {apiVersion: v1, kind: ConfigMap, "
                                       "metadata: {name: o}, whatever: 1}\n",
                             &o, &errs);
    assert_int_equal(rc, KILN_EINVAL);
    assert_true(gt_has_error(&errs, "spec.resources[0].template.spec.replicas: expected integer, "
                                    "got string \"two\""));
    assert_true(gt_has_error(&errs, "spec.resources[0].template.spec.replicsa: unknown field"));
    assert_true(gt_has_error(&errs, "spec.resources[0].template.spec.selector.matchLabels.app: "
                                    "expected string, got integer 1"));
    assert_true(gt_has_error(&errs, "spec.resources[0].template.spec.ports[2].port: expected "
                                    "integer or string, got boolean"));
    assert_int_equal(errs.len, 4);
    kiln_errs_free(&errs);
    json_decref(schema);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lint__every_problem_is_reported_at_once),
        cmocka_unit_test(test_lint__dry_render_reports_schema_only_failures),
        cmocka_unit_test(test_lint__required_fields_get_placeholders_in_the_dry_render),
        cmocka_unit_test(test_lint__dry_render_tolerates_missing_status),
        cmocka_unit_test(test_lint__cluster_scoped_kind_missing_namespace_is_caught),
        cmocka_unit_test(test_lint__identity_collision_with_defaults_is_caught),
        cmocka_unit_test(test_lint__skip_dry_render_compiles_what_only_fails_at_render),
        cmocka_unit_test(test_lint__templates_are_checked_against_their_kind_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
