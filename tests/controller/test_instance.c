/* tests/controller/test_instance.c: what the instance reconciler sends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controller/instance.h"
#include "core/json.h"

static json_t *instance(const char *ns)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s?, s:s, s:{s:s}}}", "apiVersion", "kiln.dev/v1alpha1",
                     "kind", "WebApp", "metadata", "name", "shop", "namespace", ns, "uid", "u-1",
                     "labels", "app.kubernetes.io/instance", "argo");
}

static json_t *child(void)
{
    return json_pack(
        "{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}}}", "apiVersion", "v1",
        "kind", "ConfigMap", "metadata", "name", "shop-cfg", "namespace", "team-a", "labels",
        "app.kubernetes.io/instance", "argo", "team", "blue", "argocd.argoproj.io/x", "y",
        "annotations", "argocd.argoproj.io/tracking-id", "argo:/ConfigMap:team-a/shop-cfg",
        "kubectl.kubernetes.io/last-applied-configuration", "{}", "kiln.dev/inventory", "[]");
}

static void test_instance__decorate_labels_owner_and_hash(void **state)
{
    (void)state;
    json_t *inst = instance("team-a");
    json_t *c = child();
    char hash[KILN_SHA256_HEX_LEN + 1];
    kiln_instance_decorate(c, inst, "web-app", "config", true, hash);
    const json_t *labels = kiln_json_get_path(c, "metadata.labels");
    assert_string_equal(json_string_value(json_object_get(labels, "app.kubernetes.io/managed-by")),
                        "kiln");
    assert_string_equal(json_string_value(json_object_get(labels, "kiln.dev/instance-uid")), "u-1");
    assert_string_equal(json_string_value(json_object_get(labels, "kiln.dev/instance-name")),
                        "shop");
    assert_string_equal(json_string_value(json_object_get(labels, "kiln.dev/instance-namespace")),
                        "team-a");
    assert_string_equal(json_string_value(json_object_get(labels, "kiln.dev/rgd")), "web-app");
    assert_string_equal(json_string_value(json_object_get(labels, "kiln.dev/node")), "config");
    assert_string_equal(json_string_value(json_object_get(labels, "team")), "blue");
    assert_null(json_object_get(labels, "app.kubernetes.io/instance"));
    assert_null(json_object_get(labels, "argocd.argoproj.io/x"));
    const json_t *ann = kiln_json_get_path(c, "metadata.annotations");
    assert_int_equal(json_object_size(ann), 1);
    assert_string_equal(json_string_value(json_object_get(ann, "kiln.dev/applied-hash")), hash);
    const json_t *refs = kiln_json_get_path(c, "metadata.ownerReferences");
    assert_int_equal(json_array_size(refs), 1);
    assert_string_equal(kiln_json_get_string(json_array_get(refs, 0), "uid"), "u-1");
    assert_true(json_is_true(json_object_get(json_array_get(refs, 0), "controller")));

    /* Same input, same hash; re-decorating an applied copy is stable too. */
    json_t *c2 = child();
    char hash2[KILN_SHA256_HEX_LEN + 1];
    kiln_instance_decorate(c2, inst, "web-app", "config", true, hash2);
    assert_string_equal(hash, hash2);
    json_t *c3 = child();
    json_object_set_new(c3, "data", json_pack("{s:s}", "k", "v"));
    kiln_instance_decorate(c3, inst, "web-app", "config", true, hash2);
    assert_string_not_equal(hash, hash2);
    json_decref(c);
    json_decref(c2);
    json_decref(c3);
    json_decref(inst);
}

static void test_instance__owner_only_in_same_namespace(void **state)
{
    (void)state;
    json_t *ns_inst = instance("team-a");
    json_t *cl_inst = instance(NULL);
    assert_true(kiln_instance_owner_allowed(ns_inst, "team-a"));
    assert_false(kiln_instance_owner_allowed(ns_inst, "team-b"));
    assert_false(kiln_instance_owner_allowed(ns_inst, NULL)); /* cluster-scoped child */
    assert_false(kiln_instance_owner_allowed(cl_inst, "team-a"));
    json_decref(ns_inst);
    json_decref(cl_inst);
}

static void test_instance__hash_skip_decision(void **state)
{
    (void)state;
    json_t *cached =
        json_pack("{s:{s:{s:s}}}", "metadata", "annotations", "kiln.dev/applied-hash", "abc");
    assert_true(kiln_instance_up_to_date(cached, "abc"));
    assert_false(kiln_instance_up_to_date(cached, "abd"));
    assert_false(kiln_instance_up_to_date(NULL, "abc"));
    json_object_set_new(json_object_get(cached, "metadata"), "deletionTimestamp",
                        json_string("2026-01-01T00:00:00Z"));
    assert_false(kiln_instance_up_to_date(cached, "abc")); /* terminating: recreate later */
    json_decref(cached);
}

static void test_instance__tracking_keys_and_suspend(void **state)
{
    (void)state;
    assert_false(kiln_instance_tracking_key("app.kubernetes.io/instance"));
    assert_true(kiln_instance_tracking_key("argocd.argoproj.io/sync-wave"));
    assert_true(kiln_instance_tracking_key("kustomize.toolkit.fluxcd.io/name"));
    assert_true(kiln_instance_tracking_key("meta.helm.sh/release-name"));
    assert_true(kiln_instance_tracking_key("kubectl.kubernetes.io/last-applied-configuration"));
    assert_false(kiln_instance_tracking_key("app.kubernetes.io/name"));
    json_t *inst =
        json_pack("{s:{s:{s:s}}}", "metadata", "annotations", "kiln.dev/reconcile", "Suspended");
    assert_true(kiln_instance_suspended(inst));
    json_decref(inst);
    inst = json_pack("{s:{s:{s:s}}}", "metadata", "annotations", "kiln.dev/reconcile", "on");
    assert_false(kiln_instance_suspended(inst));
    json_decref(inst);
}

static void test_instance__argo_instance_label_only_when_copied(void **state)
{
    (void)state;
    char hash[KILN_SHA256_HEX_LEN + 1];
    json_t *inst =
        json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:{s:s}}}", "apiVersion", "kiln.dev/v1alpha1",
                  "kind", "VLLMService", "metadata", "name", "chat", "namespace", "models", "uid",
                  "u-1", "labels", "app.kubernetes.io/instance", "gitops-app");
    /* A recipe's own value stays. */
    json_t *child =
        json_pack("{s:{s:{s:s}}}", "metadata", "labels", "app.kubernetes.io/instance", "chat");
    kiln_instance_decorate(child, inst, "vllm-service", "server", false, hash);
    assert_string_equal(
        json_string_value(json_object_get(kiln_json_get_path(child, "metadata.labels"),
                                          "app.kubernetes.io/instance")),
        "chat");
    json_decref(child);
    /* Argo CD's tracking value, copied from the instance, goes. */
    child = json_pack("{s:{s:{s:s}}}", "metadata", "labels", "app.kubernetes.io/instance",
                      "gitops-app");
    kiln_instance_decorate(child, inst, "vllm-service", "server", false, hash);
    assert_null(json_object_get(kiln_json_get_path(child, "metadata.labels"),
                                "app.kubernetes.io/instance"));
    json_decref(child);
    json_decref(inst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_instance__decorate_labels_owner_and_hash),
        cmocka_unit_test(test_instance__owner_only_in_same_namespace),
        cmocka_unit_test(test_instance__hash_skip_decision),
        cmocka_unit_test(test_instance__tracking_keys_and_suspend),
        cmocka_unit_test(test_instance__argo_instance_label_only_when_copied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
