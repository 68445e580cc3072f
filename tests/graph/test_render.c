/* Rendering one instance: defaults, whole-field vs splice, namespaces,
 * readiness and waiting, includeWhen, scripts, externalRef, status
 * projections, the pending rule and offline mode. */
#include <pthread.h>
#include <stdlib.h>

#include "core/buf.h"
#include "graph_test.h"

static kiln_graph *load_fixture(const char *name)
{
    const char *root = getenv("KILN_SOURCE_DIR");
    char path[1024];
    kiln_buf b;
    kiln_err err = {0};
    kiln_graph *g;
    snprintf(path, sizeof path, "%s/tests/graph/fixtures/%s", root ? root : ".", name);
    kiln_buf_init(&b, KILN_BUF_DEFAULT_LIMIT);
    if (kiln_buf_read_file(&b, path, &err) != 0)
        fail_msg("%s", err.msg);
    g = gt_compile(b.data, NULL);
    kiln_buf_free(&b);
    return g;
}

#define SHOP                                                                                       \
    "apiVersion: kiln.dev/v1alpha1\n"                                                              \
    "kind: WebApp\n"                                                                               \
    "metadata: {name: demo, namespace: team}\n"                                                    \
    "spec: {name: shop}\n"

#define CONFIG_OBS                                                                                 \
    "\"config\": {\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": "      \
    "\"shop-config\", \"namespace\": \"team\"}}"

#define DEPLOY_OBS(avail)                                                                          \
    "\"deployment\": {\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", \"metadata\": "       \
    "{\"name\": \"shop\"}, \"spec\": {\"replicas\": 1}, \"status\": "                              \
    "{\"availableReplicas\": " avail "}}"

#define SERVICE_OBS                                                                                \
    "\"service\": {\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": "       \
    "\"shop-svc\"}, \"spec\": {\"clusterIP\": \"10.0.0.7\", \"ports\": [{\"port\": 80}]}}"

static void test_render__defaults_applied_and_first_wave_rendered(void **state)
{
    kiln_graph *g = load_fixture("webapp.yaml");
    kiln_render_result *r = gt_render(g, gt_lua(), SHOP, NULL, false);

    gt_assert_order(r, "config deployment service ingress");
    gt_assert_json(r->spec, "{\"name\":\"shop\",\"image\":\"nginx:1.27\",\"replicas\":1,"
                            "\"ingress\":{\"enabled\":false}}");
    gt_assert_state(r, "config", KILN_NODE_PENDING);
    assert_string_equal(gt_node(r, "config")->message, "not observed yet");
    gt_assert_json(gt_node(r, "config")->desired,
                   "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                   "\"shop-config\",\"namespace\":\"team\"},\"data\":{\"image\":\"nginx:1.27\","
                   "\"replicas\":\"1\"}}");
    gt_assert_state(r, "deployment", KILN_NODE_WAITING);
    assert_string_equal(gt_node(r, "deployment")->message, "waiting for \"config\"");
    assert_null(gt_node(r, "deployment")->desired);
    gt_assert_state(r, "service", KILN_NODE_WAITING);
    /* includeWhen reads only schema: excluded at once, not waiting. */
    gt_assert_state(r, "ingress", KILN_NODE_EXCLUDED);
    assert_string_equal(gt_node(r, "ingress")->message,
                        "spec.resources[3].includeWhen[0] is false");
    gt_assert_json(r->status, "{}");
    assert_true(gt_has_note(r, "status.endpoint: waiting for \"service\""));
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_render__ready_dependencies_unlock_dependents(void **state)
{
    kiln_graph *g = load_fixture("webapp.yaml");
    kiln_render_result *r = gt_render(g, gt_lua(), SHOP, "{" CONFIG_OBS "}", false);
    gt_assert_state(r, "config", KILN_NODE_READY);
    gt_assert_state(r, "deployment", KILN_NODE_PENDING);
    gt_assert_json(
        gt_node(r, "deployment")->desired,
        "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"shop\","
        "\"namespace\":\"team\",\"labels\":{\"app\":\"shop\"}},\"spec\":{\"replicas\":1,"
        "\"selector\":{\"matchLabels\":{\"app\":\"shop\"}},\"template\":{\"metadata\":{"
        "\"labels\":{\"app\":\"shop\"}},\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":"
        "\"nginx:1.27\",\"envFrom\":[{\"configMapRef\":{\"name\":\"shop-config\"}}]}]}}}}");
    gt_assert_state(r, "service", KILN_NODE_WAITING);
    /* config is observed, so its projection is there; the others wait. */
    gt_assert_json(r->status, "{\"config\":{\"name\":\"shop-config\"}}");
    kiln_render_result_free(r);

    r = gt_render(g, gt_lua(), SHOP, "{" CONFIG_OBS "," DEPLOY_OBS("0") "}", false);
    gt_assert_state(r, "deployment", KILN_NODE_PENDING);
    assert_string_equal(gt_node(r, "deployment")->message,
                        "spec.resources[1].readyWhen[0] is false");
    assert_non_null(gt_node(r, "deployment")->desired);
    gt_assert_state(r, "service", KILN_NODE_WAITING);
    kiln_render_result_free(r);

    r = gt_render(g, gt_lua(), SHOP, "{" CONFIG_OBS "," DEPLOY_OBS("1") "}", false);
    gt_assert_state(r, "deployment", KILN_NODE_READY);
    gt_assert_state(r, "service", KILN_NODE_PENDING);
    gt_assert_json(gt_node(r, "service")->desired,
                   "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":"
                   "\"shop-svc\",\"namespace\":\"team\"},\"spec\":{\"selector\":{\"app\":"
                   "\"shop\"},\"ports\":[{\"port\":80,\"targetPort\":80}]}}");
    kiln_render_result_free(r);

    r = gt_render(g, gt_lua(), SHOP, "{" CONFIG_OBS "," DEPLOY_OBS("1") "," SERVICE_OBS "}", false);
    gt_assert_state(r, "service", KILN_NODE_READY);
    gt_assert_json(r->status, "{\"endpoint\":\"10.0.0.7\",\"available\":1,\"url\":"
                              "\"http://10.0.0.7:80\",\"config\":{\"name\":\"shop-config\"}}");
    assert_int_equal(r->npending, 0);
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_render__include_when_true_renders_the_ingress(void **state)
{
    kiln_graph *g = load_fixture("webapp.yaml");
    kiln_render_result *r = gt_render(
        g, gt_lua(),
        "apiVersion: kiln.dev/v1alpha1\nkind: WebApp\nmetadata: {name: demo, namespace: team}\n"
        "spec: {name: shop, ingress: {enabled: true}}\n",
        "{" CONFIG_OBS "," DEPLOY_OBS("1") "," SERVICE_OBS "}", false);
    gt_assert_state(r, "ingress", KILN_NODE_PENDING);
    gt_assert_json(gt_node(r, "ingress")->desired,
                   "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"Ingress\",\"metadata\":{"
                   "\"name\":\"shop\",\"namespace\":\"team\"},\"spec\":{\"defaultBackend\":{"
                   "\"service\":{\"name\":\"shop-svc\",\"port\":{\"number\":80}}}}}");
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_render__instance_values_are_data_never_evaluated(void **state)
{
    kiln_graph *g = load_fixture("webapp.yaml");
    kiln_render_result *r = gt_render(g, gt_lua(),
                                      "apiVersion: kiln.dev/v1alpha1\nkind: WebApp\n"
                                      "metadata: {name: demo, namespace: team}\n"
                                      "spec: {name: \"${error('boom')}\", image: \"${config}\"}\n",
                                      NULL, false);
    gt_assert_state(r, "config", KILN_NODE_PENDING);
    gt_assert_json(gt_node(r, "config")->desired,
                   "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                   "\"${error('boom')}-config\",\"namespace\":\"team\"},\"data\":{\"image\":"
                   "\"${config}\",\"replicas\":\"1\"}}");
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_render__invalid_instance_fails_listing_fields(void **state)
{
    kiln_graph *g = load_fixture("webapp.yaml");
    json_t *inst = gt_yaml("apiVersion: kiln.dev/v1alpha1\nkind: WebApp\n"
                           "metadata: {name: demo}\nspec: {replicas: -1}\n");
    kiln_render_result *r = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_graph_render(&r, g, gt_lua(), inst, NULL, NULL, &err), KILN_EINVAL);
    assert_null(r);
    assert_non_null(strstr(err.msg, "WebApp.kiln.dev \"demo\" is invalid"));
    assert_non_null(strstr(err.msg, "spec.name: Required value"));
    assert_non_null(strstr(err.msg, "spec.replicas"));
    json_decref(inst);
    inst = gt_yaml("apiVersion: kiln.dev/v1alpha1\nkind: Other\nmetadata: {name: demo}\n");
    assert_int_equal(kiln_graph_render(&r, g, gt_lua(), inst, NULL, NULL, &err), KILN_EINVAL);
    assert_string_equal(err.msg, "instance: expected kiln.dev/v1alpha1 WebApp, got "
                                 "kiln.dev/v1alpha1 Other (RGD \"web-app\")");
    json_decref(inst);
    kiln_graph_free(g);
}

#define RGD(schema_extra, resources)                                                               \
    "apiVersion: kiln.dev/v1alpha1\n"                                                              \
    "kind: ResourceGraphDefinition\n"                                                              \
    "metadata: {name: t}\n"                                                                        \
    "spec:\n"                                                                                      \
    "  schema:\n"                                                                                  \
    "    apiVersion: v1alpha1\n"                                                                   \
    "    kind: T\n" schema_extra "    spec:\n"                                                     \
    "      count: integer | default=3\n"                                                           \
    "      enabled: boolean | default=false\n"                                                     \
    "  resources:\n" resources

#define INST "apiVersion: kiln.dev/v1alpha1\nkind: T\nmetadata: {name: i, namespace: ns}\n"

static void test_render__whole_field_keeps_type_and_splice_builds_strings(void **state)
{
    kiln_graph *g = gt_compile(RGD("", "    - id: cm\n"
                                       "      template:\n"
                                       "        apiVersion: v1\n"
                                       "        kind: ConfigMap\n"
                                       "        metadata: {name: \"n-${schema.spec.count}\"}\n"
                                       "        data:\n"
                                       "          whole: \"${schema.spec.count}\"\n"
                                       "          bool: \"${schema.spec.count > 2}\"\n"
                                       "          real: \"${1.5}\"\n"
                                       "          table: \"${ {a = 1, b = {'x', 'y'}} }\"\n"
                                       "          gone: \"${nil}\"\n"
                                       "          list: [a, \"${nil}\", \"${'c'}\"]\n"
                                       "          two: \"${schema.spec.count}/${1.5}\"\n"
                                       "          shell: \"echo ${'${HOME}'}\"\n"
                                       "          \"${key}\": map keys are not evaluated\n"),
                               NULL);
    kiln_render_result *r = gt_render(g, gt_lua(), INST, NULL, true);
    gt_assert_state(r, "cm", KILN_NODE_READY);
    gt_assert_json(
        gt_node(r, "cm")->desired,
        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"n-3\","
        "\"namespace\":\"ns\"},\"data\":{\"whole\":3,\"bool\":true,\"real\":1.5,"
        "\"table\":{\"a\":1,\"b\":[\"x\",\"y\"]},\"list\":[\"a\",\"c\"],\"two\":"
        "\"3/1.5\",\"shell\":\"echo ${HOME}\",\"${key}\":\"map keys are not evaluated\"}}");
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_render__splicing_a_table_is_an_error_naming_the_field(void **state)
{
    kiln_graph_options o = {.skip_dry_render = true};
    kiln_graph *g = gt_compile(RGD("", "    - id: bad\n"
                                       "      template:\n"
                                       "        apiVersion: v1\n"
                                       "        kind: ConfigMap\n"
                                       "        metadata: {name: \"x-${ {} }\"}\n"
                                       "    - id: good\n"
                                       "      template: {apiVersion: v1, kind: ConfigMap, "
                                       "metadata: {name: ok}}\n"),
                               &o);
    kiln_render_result *r = gt_render(g, gt_lua(), INST, NULL, false);
    gt_assert_state(r, "bad", KILN_NODE_ERROR);
    assert_int_equal(gt_node(r, "bad")->code, KILN_ESCRIPT);
    assert_non_null(strstr(gt_node(r, "bad")->message, "spec.resources[0].template.metadata.name"));
    assert_null(gt_node(r, "bad")->desired);
    gt_assert_state(r, "good", KILN_NODE_PENDING);
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_render__namespaces_follow_the_kind_scope(void **state)
{
    kiln_graph *g = gt_compile(
        RGD("", "    - id: ns\n"
                "      template: {apiVersion: v1, kind: Namespace, metadata: {name: extra}}\n"
                "    - id: role\n"
                "      template: {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, "
                "metadata: {name: r}}\n"
                "    - id: elsewhere\n"
                "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: e, "
                "namespace: other}}\n"
                "    - id: here\n"
                "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: h}}\n"),
        NULL);
    kiln_render_result *r = gt_render(g, gt_lua(), INST, NULL, true);
    gt_assert_json(
        gt_node(r, "ns")->desired,
        "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"extra\"}}");
    assert_null(
        json_object_get(json_object_get(gt_node(r, "role")->desired, "metadata"), "namespace"));
    assert_string_equal(
        kiln_json_get_string(gt_node(r, "elsewhere")->desired, "metadata.namespace"), "other");
    assert_string_equal(kiln_json_get_string(gt_node(r, "here")->desired, "metadata.namespace"),
                        "ns");
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static int custom_scope(void *ud, const char *api_version, const char *kind)
{
    (void)ud;
    (void)api_version;
    return strcmp(kind, "Tenant") == 0 ? 1 : -1;
}

static void test_render__cluster_scoped_instance_needs_explicit_namespaces(void **state)
{
    kiln_graph_options o = {.skip_dry_render = true, .scope = custom_scope};
    kiln_graph *g = gt_compile(
        RGD("    scope: Cluster\n",
            "    - id: tenant\n"
            "      template: {apiVersion: example.com/v1, kind: Tenant, metadata: {name: t}}\n"
            "    - id: loose\n"
            "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: l}}\n"
            "    - id: placed\n"
            "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: p, "
            "namespace: kube-system}}\n"),
        &o);
    kiln_render_result *r = gt_render(
        g, gt_lua(), "apiVersion: kiln.dev/v1alpha1\nkind: T\nmetadata: {name: c}\n", NULL, true);
    gt_assert_state(r, "tenant", KILN_NODE_READY);
    gt_assert_state(r, "loose", KILN_NODE_ERROR);
    assert_int_equal(gt_node(r, "loose")->code, KILN_EINVAL);
    assert_string_equal(gt_node(r, "loose")->message,
                        "spec.resources[1].template.metadata.namespace: ConfigMap \"l\" is "
                        "namespaced and the instance is cluster-scoped: set a namespace");
    gt_assert_state(r, "placed", KILN_NODE_READY);
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_render__exclusion_is_contagious(void **state)
{
    kiln_graph *g = gt_compile(
        RGD("", "    - id: a\n"
                "      includeWhen: [\"${schema.spec.enabled}\"]\n"
                "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
                "    - id: b\n"
                "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: "
                "\"${a.metadata.name}-b\"}}\n"
                "    - id: c\n"
                "      includeWhen: [\"${b.metadata.name ~= nil}\"]\n"
                "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n"
                "    - id: free\n"
                "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: f}}\n"),
        NULL);
    kiln_render_result *r = gt_render(g, gt_lua(), INST, NULL, true);
    gt_assert_state(r, "a", KILN_NODE_EXCLUDED);
    gt_assert_state(r, "b", KILN_NODE_EXCLUDED);
    assert_string_equal(gt_node(r, "b")->message, "depends on excluded resource \"a\"");
    gt_assert_state(r, "c", KILN_NODE_EXCLUDED);
    gt_assert_state(r, "free", KILN_NODE_READY);
    kiln_render_result_free(r);

    r = gt_render(g, gt_lua(), INST "spec: {enabled: true}\n", NULL, true);
    gt_assert_state(r, "a", KILN_NODE_READY);
    gt_assert_state(r, "b", KILN_NODE_READY);
    assert_string_equal(kiln_json_get_string(gt_node(r, "b")->desired, "metadata.name"), "a-b");
    gt_assert_state(r, "c", KILN_NODE_READY);
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_render__script_returning_nil_excludes_its_node(void **state)
{
    kiln_graph *g = gt_compile(
        RGD("",
            "    - id: maybe\n"
            "      script: |\n"
            "        if not schema.spec.enabled then return nil end\n"
            "        return {apiVersion = 'v1', kind = 'ConfigMap',\n"
            "                metadata = {name = 'm'}, data = {n = tostring(schema.spec.count)}}\n"
            "    - id: after\n"
            "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: "
            "\"${maybe.metadata.name}-after\"}}\n"),
        NULL);
    kiln_render_result *r = gt_render(g, gt_lua(), INST, NULL, false);
    gt_assert_state(r, "maybe", KILN_NODE_EXCLUDED);
    assert_string_equal(gt_node(r, "maybe")->message, "spec.resources[0].script returned nil");
    gt_assert_state(r, "after", KILN_NODE_EXCLUDED);
    kiln_render_result_free(r);
    r = gt_render(g, gt_lua(), INST "spec: {enabled: true}\n", NULL, false);
    gt_assert_state(r, "maybe", KILN_NODE_PENDING);
    gt_assert_json(gt_node(r, "maybe")->desired,
                   "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"m\","
                   "\"namespace\":\"ns\"},\"data\":{\"n\":\"3\"}}");
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_render__pending_when_reading_resources_error_when_only_schema(void **state)
{
    kiln_graph_options o = {.skip_dry_render = true};
    kiln_graph *g = gt_compile(
        RGD("", "    - id: src\n"
                "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: s}}\n"
                "    - id: reader\n"
                "      template:\n"
                "        apiVersion: v1\n"
                "        kind: ConfigMap\n"
                "        metadata: {name: r}\n"
                "        data: {v: \"${src.status.phase.name}\"}\n"
                "    - id: nilreader\n"
                "      template:\n"
                "        apiVersion: v1\n"
                "        kind: ConfigMap\n"
                "        metadata: {name: \"${src.data}\"}\n"
                "    - id: broken\n"
                "      template:\n"
                "        apiVersion: v1\n"
                "        kind: ConfigMap\n"
                "        metadata: {name: b}\n"
                "        data: {v: \"${schema.spec.missing.field}\"}\n"),
        &o);
    kiln_render_result *r = gt_render(
        g, gt_lua(), INST,
        "{\"src\": {\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": "
        "\"s\"}}}",
        false);
    gt_assert_state(r, "src", KILN_NODE_READY);
    gt_assert_state(r, "reader", KILN_NODE_PENDING);
    assert_non_null(strstr(gt_node(r, "reader")->message, "spec.resources[1].template.data.v"));
    assert_null(gt_node(r, "reader")->desired);
    gt_assert_state(r, "nilreader", KILN_NODE_PENDING);
    assert_string_equal(gt_node(r, "nilreader")->message,
                        "spec.resources[2].template.metadata.name: no value yet (waiting for "
                        "data from another resource)");
    gt_assert_state(r, "broken", KILN_NODE_ERROR);
    assert_int_equal(gt_node(r, "broken")->code, KILN_ESCRIPT);
    assert_non_null(strstr(gt_node(r, "broken")->message, "spec.resources[3].template.data.v"));
    assert_true(gt_has_note(r, "reader: spec.resources[1].template.data.v"));
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_render__external_ref_is_read_only_and_gates_dependents(void **state)
{
    kiln_graph *g = gt_compile(RGD("    status:\n"
                                   "      region: ${info.data.region}\n",
                                   "    - id: info\n"
                                   "      externalRef:\n"
                                   "        apiVersion: v1\n"
                                   "        kind: ConfigMap\n"
                                   "        metadata: {name: \"cluster-${schema.spec.count}\"}\n"
                                   "    - id: user\n"
                                   "      template:\n"
                                   "        apiVersion: v1\n"
                                   "        kind: ConfigMap\n"
                                   "        metadata: {name: u}\n"
                                   "        data: {region: \"${info.data.region}\"}\n"),
                               NULL);
    kiln_render_result *r = gt_render(g, gt_lua(), INST, NULL, false);
    const kiln_render_node *info = gt_node(r, "info");
    assert_int_equal(info->state, KILN_NODE_PENDING);
    assert_true(info->read_only);
    assert_string_equal(info->message, "waiting for ConfigMap ns/cluster-3 to exist");
    gt_assert_json(info->desired, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
                                  "\"name\":\"cluster-3\",\"namespace\":\"ns\"}}");
    gt_assert_state(r, "user", KILN_NODE_WAITING);
    kiln_render_result_free(r);

    /* offline the same: no guessing an object kiln never writes */
    r = gt_render(g, gt_lua(), INST, NULL, true);
    gt_assert_state(r, "info", KILN_NODE_PENDING);
    gt_assert_state(r, "user", KILN_NODE_WAITING);
    assert_true(gt_has_note(r, "info: waiting for ConfigMap ns/cluster-3 to exist"));
    kiln_render_result_free(r);

    r = gt_render(g, gt_lua(), INST,
                  "{\"info\": {\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": "
                  "{\"name\": \"cluster-3\"}, \"data\": {\"region\": \"eu\"}}}",
                  false);
    gt_assert_state(r, "info", KILN_NODE_READY);
    gt_assert_state(r, "user", KILN_NODE_PENDING);
    assert_string_equal(kiln_json_get_string(gt_node(r, "user")->desired, "data.region"), "eu");
    gt_assert_json(r->status, "{\"region\":\"eu\"}");
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_render__offline_uses_desired_objects_and_notes_status_needs(void **state)
{
    kiln_graph *g = load_fixture("webapp.yaml");
    kiln_render_result *r = gt_render(g, gt_lua(), SHOP, NULL, true);
    gt_assert_state(r, "config", KILN_NODE_READY);
    gt_assert_state(r, "deployment", KILN_NODE_READY);
    gt_assert_state(r, "service", KILN_NODE_READY);
    assert_string_equal(kiln_json_get_string(gt_node(r, "service")->desired, "metadata.name"),
                        "shop-svc");
    gt_assert_state(r, "ingress", KILN_NODE_EXCLUDED);
    gt_assert_json(r->status, "{\"config\":{\"name\":\"shop-config\"}}");
    assert_true(gt_has_note(r, "status.endpoint: no value yet"));
    assert_true(gt_has_note(r, "status.available: attempt to index a nil value (field 'status')"));
    assert_true(gt_has_note(r, "status.url: expected a string or number for ${...} at column 8, "
                               "got nil"));
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_render__offline_expression_needing_status_is_pending(void **state)
{
    kiln_graph *g =
        gt_compile(RGD("", "    - id: svc\n"
                           "      template: {apiVersion: v1, kind: Service, metadata: {name: s}}\n"
                           "    - id: cfg\n"
                           "      template:\n"
                           "        apiVersion: v1\n"
                           "        kind: ConfigMap\n"
                           "        metadata: {name: \"${svc.metadata.name}-cfg\"}\n"
                           "        data: {ip: \"${svc.spec.clusterIP}\"}\n"),
                   NULL);
    kiln_render_result *r = gt_render(g, gt_lua(), INST, NULL, true);
    gt_assert_state(r, "svc", KILN_NODE_READY);
    gt_assert_state(r, "cfg", KILN_NODE_PENDING);
    assert_true(gt_has_note(r, "cfg: spec.resources[1].template.data.ip"));
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_render__validation_node_gates_on_results(void **state)
{
    kiln_graph *g =
        gt_compile(RGD("", "    - id: gpuCheck\n"
                           "      validation:\n"
                           "        accelerator: \"${'h' .. (schema.spec.count * 100)}\"\n"
                           "        checks: [device, gemm]\n"
                           "        gpusPerNode: 8\n"
                           "    - id: server\n"
                           "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: "
                           "\"s-${gpuCheck.accelerator or 'x'}\"}}\n"),
                   NULL);
    kiln_render_result *r = gt_render(g, gt_lua(), INST, NULL, false);
    gt_assert_state(r, "gpuCheck", KILN_NODE_PENDING);
    assert_string_equal(gt_node(r, "gpuCheck")->message, "waiting for GPU validation results");
    gt_assert_json(gt_node(r, "gpuCheck")->desired,
                   "{\"accelerator\":\"h300\",\"checks\":[\"device\",\"gemm\"],\"gpusPerNode\":8,"
                   "\"maxNodes\":0,\"timeoutSeconds\":600}");
    gt_assert_state(r, "server", KILN_NODE_WAITING);
    kiln_render_result_free(r);

    r = gt_render(g, gt_lua(), INST,
                  "{\"gpuCheck\": {\"passed\": false, \"simulated\": true, \"nodes\": []}}", false);
    gt_assert_state(r, "gpuCheck", KILN_NODE_PENDING);
    assert_string_equal(gt_node(r, "gpuCheck")->message, "GPU validation has not passed");
    gt_assert_state(r, "server", KILN_NODE_WAITING);
    kiln_render_result_free(r);

    r = gt_render(g, gt_lua(), INST,
                  "{\"gpuCheck\": {\"passed\": true, \"simulated\": true, \"nodes\": []}}", false);
    gt_assert_state(r, "gpuCheck", KILN_NODE_READY);
    gt_assert_state(r, "server", KILN_NODE_PENDING);
    assert_string_equal(kiln_json_get_string(gt_node(r, "server")->desired, "metadata.name"),
                        "s-x");
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_render__shared_expression_text_reports_its_own_field(void **state)
{
    kiln_graph *g = gt_compile(
        RGD("", "    - id: src\n"
                "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: s}}\n"
                "    - id: one\n"
                "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: one}, "
                "data: {v: \"${src.status.phase.name}\"}}\n"
                "    - id: two\n"
                "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: two}, "
                "data: {w: \"${src.status.phase.name}\"}}\n"),
        NULL);
    kiln_render_result *r =
        gt_render(g, gt_lua(), INST, "{\"src\": {\"metadata\": {\"name\": \"s\"}}}", false);
    gt_assert_state(r, "one", KILN_NODE_PENDING);
    gt_assert_state(r, "two", KILN_NODE_PENDING);
    assert_string_equal(gt_node(r, "one")->message,
                        "spec.resources[1].template.data.v: attempt to index a nil value "
                        "(field 'status')");
    assert_string_equal(gt_node(r, "two")->message,
                        "spec.resources[2].template.data.w: attempt to index a nil value "
                        "(field 'status')");
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_render__script_result_must_be_a_kubernetes_object(void **state)
{
    kiln_graph_options o = {.skip_dry_render = true};
    kiln_graph *g = gt_compile(RGD("", "    - id: noKind\n"
                                       "      script: \"return {apiVersion = 'v1', metadata = "
                                       "{name = 'x'}}\"\n"
                                       "    - id: scalar\n"
                                       "      script: \"return 'text'\"\n"
                                       "    - id: noName\n"
                                       "      script: \"return {apiVersion = 'v1', kind = 'X', "
                                       "metadata = {}}\"\n"),
                               &o);
    kiln_render_result *r = gt_render(g, gt_lua(), INST, NULL, true);
    assert_string_equal(gt_node(r, "noKind")->message,
                        "spec.resources[0].script.kind: expected a non-empty string, got nothing");
    assert_string_equal(gt_node(r, "scalar")->message,
                        "spec.resources[1].script: expected an object, got string");
    assert_string_equal(gt_node(r, "noName")->message,
                        "spec.resources[2].script.metadata.name: expected a non-empty string, "
                        "got nothing");
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

static void test_render__graph_is_shared_by_several_states(void **state)
{
    kiln_graph *g = load_fixture("webapp.yaml");
    kiln_lua *other = kiln_lua_new(NULL);
    kiln_render_result *a = gt_render(g, gt_lua(), SHOP, NULL, true);
    kiln_render_result *b = gt_render(g, other, SHOP, NULL, true);
    for (size_t i = 0; i < a->nnodes; i++)
        assert_true(kiln_json_equal(a->nodes[i].desired, b->nodes[i].desired) ||
                    (!a->nodes[i].desired && !b->nodes[i].desired));
    kiln_render_result_free(a);
    kiln_render_result_free(b);
    kiln_graph_unbind(g, other);
    kiln_lua_free(other);
    /* unbinding one state leaves the others working */
    a = gt_render(g, gt_lua(), SHOP, NULL, true);
    gt_assert_state(a, "service", KILN_NODE_READY);
    kiln_render_result_free(a);
    kiln_graph_unbind(g, gt_lua());
    kiln_graph_free(g);
}

static void test_render__status_lists_and_schema_only_projections(void **state)
{
    kiln_graph *g =
        gt_compile(RGD("    status:\n"
                       "      count: ${schema.spec.count}\n"
                       "      names: [\"${a.metadata.name}\", \"${b.metadata.name}\", "
                       "\"n-${schema.spec.count}\"]\n",
                       "    - id: a\n"
                       "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
                       "    - id: b\n"
                       "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n"),
                   NULL);
    kiln_render_result *r =
        gt_render(g, gt_lua(), INST, "{\"a\": {\"metadata\": {\"name\": \"a-obs\"}}}", false);
    gt_assert_json(r->status, "{\"count\":3,\"names\":[\"a-obs\",\"n-3\"]}");
    assert_true(gt_has_note(r, "status.names[1]: waiting for \"b\""));
    kiln_render_result_free(r);
    kiln_graph_free(g);
}

typedef struct worker {
    const kiln_graph *g;
    int ok;
} worker;

static void *render_worker(void *arg)
{
    worker *w = arg;
    kiln_lua *own = kiln_lua_new(NULL);
    json_t *inst = gt_yaml(SHOP);
    kiln_render_options ro = {.offline = true};
    w->ok = 1;
    for (int i = 0; i < 20; i++) {
        kiln_render_result *r = NULL;
        kiln_err err = {0};
        if (kiln_graph_render(&r, w->g, own, inst, NULL, &ro, &err) != 0 ||
            kiln_render_result_find(r, "service")->state != KILN_NODE_READY)
            w->ok = 0;
        kiln_render_result_free(r);
    }
    json_decref(inst);
    kiln_graph_unbind(w->g, own);
    kiln_lua_free(own);
    return NULL;
}

static void test_render__workers_render_one_graph_concurrently(void **state)
{
    kiln_graph *g = load_fixture("webapp.yaml");
    pthread_t t[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i].g = g;
        w[i].ok = 0;
        assert_int_equal(pthread_create(&t[i], NULL, render_worker, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].ok, 1);
    }
    kiln_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render__defaults_applied_and_first_wave_rendered),
        cmocka_unit_test(test_render__ready_dependencies_unlock_dependents),
        cmocka_unit_test(test_render__include_when_true_renders_the_ingress),
        cmocka_unit_test(test_render__instance_values_are_data_never_evaluated),
        cmocka_unit_test(test_render__invalid_instance_fails_listing_fields),
        cmocka_unit_test(test_render__whole_field_keeps_type_and_splice_builds_strings),
        cmocka_unit_test(test_render__splicing_a_table_is_an_error_naming_the_field),
        cmocka_unit_test(test_render__namespaces_follow_the_kind_scope),
        cmocka_unit_test(test_render__cluster_scoped_instance_needs_explicit_namespaces),
        cmocka_unit_test(test_render__exclusion_is_contagious),
        cmocka_unit_test(test_render__script_returning_nil_excludes_its_node),
        cmocka_unit_test(test_render__pending_when_reading_resources_error_when_only_schema),
        cmocka_unit_test(test_render__external_ref_is_read_only_and_gates_dependents),
        cmocka_unit_test(test_render__offline_uses_desired_objects_and_notes_status_needs),
        cmocka_unit_test(test_render__offline_expression_needing_status_is_pending),
        cmocka_unit_test(test_render__validation_node_gates_on_results),
        cmocka_unit_test(test_render__shared_expression_text_reports_its_own_field),
        cmocka_unit_test(test_render__script_result_must_be_a_kubernetes_object),
        cmocka_unit_test(test_render__status_lists_and_schema_only_projections),
        cmocka_unit_test(test_render__graph_is_shared_by_several_states),
        cmocka_unit_test(test_render__workers_render_one_graph_concurrently),
    };
    return cmocka_run_group_tests(tests, gt_lua_setup, gt_lua_teardown);
}
