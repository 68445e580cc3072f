#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/schema.h"
#include "core/yaml.h"
#include "graph/crd.h"
#include "tests/support/json_assert.h"

/* Borrowed value at a dotted path; a numeric segment indexes an array. */
static json_t *at(json_t *doc, const char *path)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *seg = strtok(buf, "/"); seg && doc; seg = strtok(NULL, "/"))
        doc = json_is_array(doc) ? json_array_get(doc, strtoul(seg, NULL, 10))
                                 : json_object_get(doc, seg);
    return doc;
}

static void test_crd__plural_follows_english_suffix_rules(void **state)
{
    static const char *const cases[][2] = {
        {"WebApp", "webapps"},
        {"Policy", "policies"},
        {"Ingress", "ingresses"},
        {"Status", "statuses"},
        {"Day", "days"},
        {"Box", "boxes"},
        {"Match", "matches"},
        {"Wish", "wishes"},
        {"Buzz", "buzzes"},
        {"Key", "keys"},
        {"Y", "ys"},
        {"InferencePool", "inferencepools"},
        {"Monarch", "monarches"},
        {"Graph", "graphs"},
    };
    char out[KILN_CRD_NAME_MAX + 2];
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        assert_int_equal(kiln_crd_plural(out, sizeof(out), cases[i][0], NULL), 0);
        assert_string_equal(out, cases[i][1]);
    }
    kiln_err err;
    assert_int_equal(kiln_crd_plural(out, sizeof(out), "", &err), KILN_EINVAL);
    assert_string_equal(err.msg, "kind is empty");
    char small[6];
    assert_int_equal(kiln_crd_plural(small, sizeof(small), "WebApp", &err), KILN_ELIMIT);
    assert_string_equal(err.msg, "kind \"WebApp\" is too long for a plural name");
    assert_int_equal(kiln_crd_plural(small, sizeof(small), "Box", &err), 0);
    assert_string_equal(small, "boxes");
}

static void test_crd__name_checks(void **state)
{
    assert_true(kiln_crd_valid_kind("WebApp"));
    assert_true(kiln_crd_valid_kind("A"));
    assert_false(kiln_crd_valid_kind("webApp"));
    assert_false(kiln_crd_valid_kind("Web-App"));
    assert_false(kiln_crd_valid_kind(""));
    assert_false(kiln_crd_valid_kind(NULL));
    char long_kind[70];
    memset(long_kind, 'a', sizeof(long_kind));
    long_kind[0] = 'A';
    long_kind[63] = '\0';
    assert_true(kiln_crd_valid_kind(long_kind));
    long_kind[63] = 'a';
    long_kind[64] = '\0';
    assert_false(kiln_crd_valid_kind(long_kind));

    assert_true(kiln_crd_valid_version("v1"));
    assert_true(kiln_crd_valid_version("v1alpha1"));
    assert_true(kiln_crd_valid_version("v2beta3"));
    assert_false(kiln_crd_valid_version("v1alpha"));
    assert_false(kiln_crd_valid_version("1"));
    assert_false(kiln_crd_valid_version("v"));
    assert_false(kiln_crd_valid_version("v1gamma1"));
    assert_false(kiln_crd_valid_version("V1"));

    assert_true(kiln_crd_valid_group("kiln.dev"));
    assert_true(kiln_crd_valid_group("inference.example-corp.io"));
    assert_false(kiln_crd_valid_group("kiln"));
    assert_false(kiln_crd_valid_group("Kiln.dev"));
    assert_false(kiln_crd_valid_group("kiln..dev"));
    assert_false(kiln_crd_valid_group("-kiln.dev"));
    assert_false(kiln_crd_valid_group(""));
}

static const char *webapp_crd =
    "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
    "\"metadata\":{\"name\":\"webapps.kiln.dev\",\"labels\":{\"app.kubernetes.io/managed-by\":"
    "\"kiln\",\"kiln.dev/rgd\":\"web-app\"}},"
    "\"spec\":{\"group\":\"kiln.dev\",\"scope\":\"Namespaced\","
    "\"names\":{\"kind\":\"WebApp\",\"listKind\":\"WebAppList\",\"plural\":\"webapps\","
    "\"singular\":\"webapp\"},"
    "\"versions\":[{\"name\":\"v1alpha1\",\"served\":true,\"storage\":true,"
    "\"subresources\":{\"status\":{}},"
    "\"additionalPrinterColumns\":["
    "{\"name\":\"Ready\",\"type\":\"string\",\"jsonPath\":\".status.conditions[?(@.type==\\"
    "\"Ready\\\")].status\"},"
    "{\"name\":\"State\",\"type\":\"string\",\"jsonPath\":\".status.state\"},"
    "{\"name\":\"Age\",\"type\":\"date\",\"jsonPath\":\".metadata.creationTimestamp\"}],"
    "\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\",\"properties\":{"
    "\"apiVersion\":{\"type\":\"string\"},\"kind\":{\"type\":\"string\"},"
    "\"metadata\":{\"type\":\"object\"},"
    "\"spec\":{\"type\":\"object\",\"properties\":{\"replicas\":{\"type\":\"integer\","
    "\"default\":1}},\"default\":{}},"
    "\"status\":{\"type\":\"object\",\"properties\":{"
    "\"endpoint\":{\"type\":\"string\"},"
    "\"observedGeneration\":{\"type\":\"integer\",\"format\":\"int64\"},"
    "\"conditions\":{\"type\":\"array\",\"x-kubernetes-list-type\":\"map\","
    "\"x-kubernetes-list-map-keys\":[\"type\"],\"items\":{\"type\":\"object\",\"required\":["
    "\"type\",\"status\"],\"properties\":{\"type\":{\"type\":\"string\"},\"status\":{\"type\":"
    "\"string\"},\"reason\":{\"type\":\"string\"},\"message\":{\"type\":\"string\"},"
    "\"lastTransitionTime\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"observedGeneration\":{\"type\":\"integer\",\"format\":\"int64\"}}}},"
    "\"state\":{\"type\":\"string\"},"
    "\"resources\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "\"id\":{\"type\":\"string\"},\"kind\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},"
    "\"namespace\":{\"type\":\"string\"},\"state\":{\"type\":\"string\"},\"message\":{\"type\":"
    "\"string\"}}}},"
    "\"validation\":{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true}"
    "}}}}}}]}}";

static void test_crd__synthesize_builds_the_whole_crd(void **state)
{
    json_t *spec_schema = ja_parse("{\"type\":\"object\",\"properties\":{\"replicas\":{\"type\":"
                                   "\"integer\",\"default\":1}},\"default\":{}}");
    /* A projection named like one of kiln's fields loses to kiln's. */
    json_t *status_schema = ja_parse("{\"type\":\"object\",\"properties\":{\"endpoint\":{\"type\":"
                                     "\"string\"},\"state\":{\"type\":\"integer\"}}}");
    kiln_crd_spec spec = {.version = "v1alpha1",
                          .kind = "WebApp",
                          .spec_schema = spec_schema,
                          .status_schema = status_schema,
                          .rgd_name = "web-app"};
    json_t *crd = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_crd_synthesize(&crd, &spec, &err), 0);
    ja_assert_json(crd, webapp_crd);
    json_decref(crd);
    json_decref(spec_schema);
    json_decref(status_schema);
}

static void test_crd__synthesize_copies_names_columns_and_metadata(void **state)
{
    json_t *short_names = ja_parse("[\"inf\"]");
    json_t *categories = ja_parse("[\"kiln\",\"ai\"]");
    json_t *labels = ja_parse("{\"team\":\"ml\",\"app.kubernetes.io/managed-by\":\"someone\"}");
    json_t *annotations = ja_parse("{\"note\":\"x\"}");
    json_t *columns = ja_parse("[{\"name\":\"Model\",\"type\":\"string\",\"jsonPath\":\".spec."
                               "model\"}]");
    kiln_crd_spec spec = {.group = "ai.example.com",
                          .version = "v1",
                          .kind = "InferencePolicy",
                          .scope = "Cluster",
                          .short_names = short_names,
                          .categories = categories,
                          .labels = labels,
                          .annotations = annotations,
                          .printer_columns = columns,
                          .rgd_name = "policy"};
    json_t *crd = NULL;
    assert_int_equal(kiln_crd_synthesize(&crd, &spec, NULL), 0);
    assert_string_equal(json_string_value(at(crd, "metadata/name")),
                        "inferencepolicies.ai.example.com");
    ja_assert_json(at(crd, "metadata/labels"),
                   "{\"team\":\"ml\",\"app.kubernetes.io/managed-by\":\"kiln\",\"kiln.dev/rgd\":"
                   "\"policy\"}");
    ja_assert_json(at(crd, "metadata/annotations"), "{\"note\":\"x\"}");
    ja_assert_json(
        at(crd, "spec/names"),
        "{\"kind\":\"InferencePolicy\",\"listKind\":\"InferencePolicyList\",\"plural\":"
        "\"inferencepolicies\",\"singular\":\"inferencepolicy\",\"shortNames\":[\"inf\"],"
        "\"categories\":[\"kiln\",\"ai\"]}");
    assert_string_equal(json_string_value(at(crd, "spec/scope")), "Cluster");
    assert_string_equal(json_string_value(at(crd, "spec/group")), "ai.example.com");
    ja_assert_json(at(crd, "spec/versions/0/additionalPrinterColumns"),
                   "[{\"name\":\"Model\",\"type\":\"string\",\"jsonPath\":\".spec.model\"}]");
    /* No spec schema: a free-form object. */
    ja_assert_json(at(crd, "spec/versions/0/schema/openAPIV3Schema/properties/spec"),
                   "{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true}");
    json_decref(crd);
    json_decref(short_names);
    json_decref(categories);
    json_decref(labels);
    json_decref(annotations);
    json_decref(columns);
}

static void test_crd__synthesize_rejects_bad_names(void **state)
{
    json_t *bad_short = ja_parse("[\"Inf\"]");
    json_t *bad_columns = ja_parse("[{\"name\":\"X\",\"type\":\"float\",\"jsonPath\":\".a\"}]");
    struct {
        kiln_crd_spec spec;
        const char *msg;
    } cases[] = {
        {{.version = "v1", .kind = "webApp"},
         "spec.schema.kind: \"webApp\" is not a valid kind: must match ^[A-Z][a-zA-Z0-9]{0,62}$"},
        {{.version = "1", .kind = "WebApp"},
         "spec.schema.apiVersion: \"1\" is not a valid version: must match "
         "^v[0-9]+((alpha|beta)[0-9]+)?$"},
        {{.group = "kiln", .version = "v1", .kind = "WebApp"},
         "spec.schema.group: \"kiln\" is not a valid group: must be a lowercase DNS subdomain "
         "with at least one dot"},
        {{.version = "v1", .kind = "WebApp", .scope = "Global"},
         "spec.schema.scope: must be Namespaced or Cluster, got \"Global\""},
        {{.version = "v1", .kind = "WebApp", .short_names = bad_short},
         "spec.schema.shortNames[0]: must be a lowercase DNS label (letters, digits, -; at most "
         "63)"},
        {{.version = "v1", .kind = "WebApp", .printer_columns = bad_columns},
         "spec.schema.printerColumns[0].type: must be integer, number, string, boolean or date"},
        {{.version = "v1",
          .kind = "WebApp",
          .rgd_name = "a-very-long-rgd-name-that-goes-on-and-on-and-on-past-the-label-limit"},
         "metadata.name: \"a-very-long-rgd-name-that-goes-on-and-on-and-on-past-the-label-l"
         "...\" is longer than 63 characters, the most a label value (kiln.dev/rgd) can hold"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        json_t *crd = (json_t *)1;
        kiln_err err = {0};
        assert_int_equal(kiln_crd_synthesize(&crd, &cases[i].spec, &err), KILN_EINVAL);
        assert_null(crd);
        assert_string_equal(err.msg, cases[i].msg);
    }
    json_decref(bad_short);
    json_decref(bad_columns);
}

static void test_crd__builtin_rgd_crd_has_the_documented_shape(void **state)
{
    json_t *all = kiln_crd_builtin();
    assert_non_null(all);
    assert_int_equal(json_array_size(all), 1);
    json_t *crd = json_array_get(all, 0);
    assert_string_equal(json_string_value(at(crd, "metadata/name")),
                        "resourcegraphdefinitions.kiln.dev");
    assert_string_equal(json_string_value(at(crd, "spec/scope")), "Cluster");
    ja_assert_json(
        at(crd, "spec/names"),
        "{\"kind\":\"ResourceGraphDefinition\",\"listKind\":\"ResourceGraphDefinitionList\","
        "\"plural\":\"resourcegraphdefinitions\",\"singular\":\"resourcegraphdefinition\","
        "\"shortNames\":[\"rgd\"],\"categories\":[\"kiln\"]}");
    json_t *v = at(crd, "spec/versions/0");
    assert_string_equal(json_string_value(at(v, "name")), "v1alpha1");
    assert_true(json_is_true(at(v, "served")));
    assert_true(json_is_true(at(v, "storage")));
    ja_assert_json(at(v, "subresources"), "{\"status\":{}}");
    ja_assert_json(
        at(v, "additionalPrinterColumns"),
        "[{\"name\":\"APIVERSION\",\"type\":\"string\",\"jsonPath\":\".spec.schema."
        "apiVersion\"},{\"name\":\"KIND\",\"type\":\"string\",\"jsonPath\":\".spec.schema."
        "kind\"},{\"name\":\"STATE\",\"type\":\"string\",\"jsonPath\":\".status.state\"},"
        "{\"name\":\"READY\",\"type\":\"string\",\"jsonPath\":\".status.conditions[?(@."
        "type==\\\"Ready\\\")].status\"},{\"name\":\"TOPOLOGICALORDER\",\"type\":\"string\","
        "\"jsonPath\":\".status.topologicalOrder\",\"priority\":1},{\"name\":\"AGE\","
        "\"type\":\"date\",\"jsonPath\":\".metadata.creationTimestamp\"}]");
    json_t *schema = at(v, "schema/openAPIV3Schema/properties/spec/properties/schema");
    ja_assert_json(at(schema, "required"), "[\"apiVersion\",\"kind\"]");
    assert_string_equal(json_string_value(at(schema, "properties/kind/pattern")),
                        "^[A-Z][a-zA-Z0-9]{0,62}$");
    assert_string_equal(json_string_value(at(schema, "properties/group/default")), "kiln.dev");
    ja_assert_json(at(schema, "properties/scope/enum"), "[\"Namespaced\",\"Cluster\"]");
    json_t *status = at(v, "schema/openAPIV3Schema/properties/status/properties");
    assert_string_equal(json_string_value(at(status, "conditions/x-kubernetes-list-type")), "map");
    ja_assert_json(at(status, "resources/items/properties/dependsOn"),
                   "{\"type\":\"array\",\"items\":{\"type\":\"string\"}}");
    json_decref(all);
}

static const char *design_rgd =
    "{\"apiVersion\":\"kiln.dev/v1alpha1\",\"kind\":\"ResourceGraphDefinition\","
    "\"metadata\":{\"name\":\"web-app\"},"
    "\"spec\":{\"schema\":{\"apiVersion\":\"v1alpha1\",\"kind\":\"WebApp\","
    "\"spec\":{\"name\":\"string | required=true\",\"replicas\":\"integer | default=1\"},"
    "\"status\":{\"endpoint\":\"${service.spec.clusterIP}\"}},"
    "\"lua\":\"function f() return 1 end\","
    "\"resources\":[{\"id\":\"deployment\",\"template\":{\"apiVersion\":\"apps/v1\",\"kind\":"
    "\"Deployment\"},\"readyWhen\":[\"${deployment.status.availableReplicas > 0}\"]},"
    "{\"id\":\"shard\",\"forEach\":[{\"i\":\"${range(1, 3)}\"}],\"template\":{}},"
    "{\"id\":\"cfg\",\"script\":\"return nil\"}]}}";

static void test_crd__builtin_schema_accepts_the_design_example(void **state)
{
    json_t *all = kiln_crd_builtin();
    json_t *schema = at(json_array_get(all, 0), "spec/versions/0/schema/openAPIV3Schema");
    json_t *rgd = ja_parse(design_rgd);
    kiln_schema_errors errs = {0};
    kiln_schema_prune(rgd, schema, true);
    kiln_schema_default(rgd, schema);
    assert_int_equal(kiln_schema_validate(rgd, schema, NULL, &errs), 0);
    assert_int_equal(errs.len, 0);
    assert_string_equal(json_string_value(at(rgd, "spec/schema/group")), "kiln.dev");
    assert_string_equal(json_string_value(at(rgd, "spec/schema/scope")), "Namespaced");
    assert_string_equal(json_string_value(at(rgd, "spec/schema/spec/name")),
                        "string | required=true");

    json_t *bad = ja_parse("{\"spec\":{\"schema\":{\"apiVersion\":\"v1\",\"kind\":\"webApp\","
                           "\"scope\":\"Global\"},\"resources\":[{\"template\":{}}]}}");
    assert_int_equal(kiln_schema_validate(bad, schema, NULL, &errs), KILN_EINVAL);
    assert_int_equal(errs.len, 3);
    assert_string_equal(errs.items[0].field, "spec.resources[0].id");
    assert_string_equal(errs.items[0].message, "Required value");
    assert_string_equal(errs.items[1].field, "spec.schema.kind");
    assert_string_equal(errs.items[1].message,
                        "Invalid value: \"webApp\": spec.schema.kind in body should match "
                        "'^[A-Z][a-zA-Z0-9]{0,62}$'");
    assert_string_equal(errs.items[2].field, "spec.schema.scope");
    assert_string_equal(errs.items[2].message,
                        "Unsupported value: \"Global\": supported values: \"Namespaced\", "
                        "\"Cluster\"");
    kiln_schema_errors_free(&errs);
    json_decref(bad);
    json_decref(rgd);
    json_decref(all);
}

static void test_crd__checked_in_crd_matches_builtin(void **state)
{
    const char *root = getenv("KILN_SOURCE_DIR");
    char path[1024];
    json_t *docs = NULL;
    kiln_err err = {0};
    if (!root)
        skip(); /* run outside CTest: no source directory to read crds/ from */
    snprintf(path, sizeof(path), "%s/crds/resourcegraphdefinitions.kiln.dev.yaml", root);
    if (kiln_yaml_load_file(&docs, path, NULL, &err) != 0)
        fail_msg("%s", err.msg);
    json_t *all = kiln_crd_builtin();
    if (!json_equal(json_array_get(docs, 0), json_array_get(all, 0)))
        fail_msg("crds/resourcegraphdefinitions.kiln.dev.yaml differs from kiln_crd_builtin(): "
                 "regenerate it with `kiln crd --builtin`");
    assert_int_equal(json_array_size(docs), 1);
    json_decref(all);
    json_decref(docs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crd__plural_follows_english_suffix_rules),
        cmocka_unit_test(test_crd__name_checks),
        cmocka_unit_test(test_crd__synthesize_builds_the_whole_crd),
        cmocka_unit_test(test_crd__synthesize_copies_names_columns_and_metadata),
        cmocka_unit_test(test_crd__synthesize_rejects_bad_names),
        cmocka_unit_test(test_crd__builtin_rgd_crd_has_the_documented_shape),
        cmocka_unit_test(test_crd__builtin_schema_accepts_the_design_example),
        cmocka_unit_test(test_crd__checked_in_crd_matches_builtin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
