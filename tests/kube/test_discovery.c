#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/json.h"
#include "kube/discovery.h"
#include "tests/kube/fake.h"

static void push_discovery(fake *f, bool with_gadget)
{
    fake_push(f, 200, "{\"kind\":\"APIVersions\",\"versions\":[\"v1\"]}");
    fake_push(f, 200,
              "{\"kind\":\"APIGroupList\",\"groups\":[{\"name\":\"apps\",\"versions\":[{"
              "\"groupVersion\":\"apps/v1\",\"version\":\"v1\"}]},{\"name\":\"example.com\","
              "\"versions\":[{\"groupVersion\":\"example.com/v1\",\"version\":\"v1\"},{"
              "\"groupVersion\":\"example.com/v1beta1\",\"version\":\"v1beta1\"}]}]}");
    fake_push(f, 200,
              "{\"kind\":\"APIResourceList\",\"groupVersion\":\"v1\",\"resources\":[{\"name\":"
              "\"pods/status\",\"namespaced\":true,\"kind\":\"Pod\",\"verbs\":[\"get\",\"patch\","
              "\"update\"]},{\"name\":\"pods\",\"namespaced\":true,\"kind\":\"Pod\",\"verbs\":["
              "\"get\",\"list\",\"watch\",\"create\",\"update\",\"patch\",\"delete\","
              "\"deletecollection\"]},{\"name\":\"namespaces\",\"namespaced\":false,\"kind\":"
              "\"Namespace\",\"verbs\":[\"get\",\"list\"]}]}");
    fake_push(
        f, 200,
        "{\"kind\":\"APIResourceList\",\"groupVersion\":\"apps/v1\",\"resources\":[{"
        "\"name\":\"deployments\",\"namespaced\":true,\"kind\":\"Deployment\",\"verbs\":["
        "\"get\",\"list\",\"watch\"]},{\"name\":\"deployments/scale\",\"namespaced\":true,"
        "\"group\":\"autoscaling\",\"version\":\"v1\",\"kind\":\"Scale\",\"verbs\":[\"get\"]},"
        "{\"name\":\"deployments/status\",\"namespaced\":true,\"kind\":\"Deployment\","
        "\"verbs\":[\"get\"]}]}");
    fake_push(f, 503,
              "{\"kind\":\"Status\",\"message\":\"the server is currently unable to handle the "
              "request\",\"reason\":\"ServiceUnavailable\",\"code\":503}");
    if (with_gadget)
        fake_push(f, 200,
                  "{\"kind\":\"APIResourceList\",\"resources\":[{\"name\":\"widgets\","
                  "\"namespaced\":true,\"kind\":\"Widget\",\"verbs\":[\"get\"]},{\"name\":"
                  "\"gadgets\",\"namespaced\":false,\"kind\":\"Gadget\",\"verbs\":[\"list\"]}]}");
    else
        fake_push(f, 200,
                  "{\"kind\":\"APIResourceList\",\"resources\":[{\"name\":\"widgets\","
                  "\"namespaced\":true,\"kind\":\"Widget\",\"verbs\":[\"get\"]}]}");
}

static void test_discovery__resolves_kinds_and_refreshes_on_a_miss(void **state)
{
    fake_clock clk = {.now_ms = 100000};
    fake *f;
    kiln_kube_client_opts o = {.qps = -1};
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    kiln_kube_discovery_opts dopts = {.min_refresh_ms = 10000, .clock = fake_clock_ops(&clk)};
    kiln_kube_discovery *d = kiln_kube_discovery_new(c, &dopts);
    push_discovery(f, false);
    kiln_kube_resource_info ri;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_discovery_resolve(&ri, d, "apps/v1", "Deployment", &err), 0);
    assert_string_equal(ri.group, "apps");
    assert_string_equal(ri.version, "v1");
    assert_string_equal(ri.resource, "deployments");
    assert_string_equal(ri.kind, "Deployment");
    assert_true(ri.namespaced);
    assert_int_equal(ri.verbs, KILN_KUBE_VERB_GET | KILN_KUBE_VERB_LIST | KILN_KUBE_VERB_WATCH);
    assert_true(ri.has_status);
    assert_true(ri.has_scale);
    assert_int_equal(f->nreqs, 6);
    assert_string_equal(f->reqs[0].path, "/api");
    assert_string_equal(f->reqs[1].path, "/apis");
    assert_string_equal(f->reqs[2].path, "/api/v1");
    assert_string_equal(f->reqs[3].path, "/apis/apps/v1");
    assert_string_equal(f->reqs[4].path, "/apis/example.com/v1");
    assert_string_equal(f->reqs[5].path, "/apis/example.com/v1beta1");

    assert_int_equal(kiln_kube_discovery_resolve(&ri, d, "v1", "Namespace", &err), 0);
    assert_string_equal(ri.group, "");
    assert_string_equal(ri.resource, "namespaces");
    assert_false(ri.namespaced);
    assert_false(ri.has_status);
    assert_int_equal(kiln_kube_discovery_resolve(&ri, d, "v1", "Pod", &err), 0);
    assert_string_equal(ri.resource, "pods");
    assert_true(ri.has_status);
    assert_int_equal(ri.verbs, 0xff);
    assert_int_equal(kiln_kube_discovery_resolve(&ri, d, "example.com/v1beta1", "Widget", &err), 0);
    assert_int_equal(f->nreqs, 6);

    /* A miss right after a refresh does not refresh again. */
    assert_int_equal(kiln_kube_discovery_resolve(&ri, d, "example.com/v1beta1", "Gadget", &err),
                     KILN_ENOTFOUND);
    assert_string_equal(err.msg, "no resource for kind Gadget in example.com/v1beta1: the server "
                                 "does not serve it (is its CRD installed?)");
    assert_int_equal(f->nreqs, 6);
    /* Later it does, and finds the new CRD's kind. */
    clk.now_ms += 10000;
    push_discovery(f, true);
    assert_int_equal(kiln_kube_discovery_resolve(&ri, d, "example.com/v1beta1", "Gadget", &err), 0);
    assert_string_equal(ri.resource, "gadgets");
    assert_false(ri.namespaced);
    assert_int_equal(f->nreqs, 12);
    kiln_kube_discovery_free(d);
    kiln_kube_client_free(c);
}

static void test_discovery__resolves_a_resource_to_its_kind_and_scope(void **state)
{
    fake_clock clk = {.now_ms = 100000};
    fake *f;
    kiln_kube_client_opts o = {.qps = -1};
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    kiln_kube_discovery_opts dopts = {.min_refresh_ms = 10000, .clock = fake_clock_ops(&clk)};
    kiln_kube_discovery *d = kiln_kube_discovery_new(c, &dopts);
    push_discovery(f, false);
    kiln_kube_resource_info ri;
    kiln_err err = {0};
    assert_int_equal(
        kiln_kube_discovery_resolve_resource(&ri, d, "apps", "v1", "deployments", &err), 0);
    assert_string_equal(ri.kind, "Deployment");
    assert_true(ri.namespaced);
    assert_int_equal(f->nreqs, 6);
    assert_int_equal(kiln_kube_discovery_resolve_resource(&ri, d, "", "v1", "namespaces", &err), 0);
    assert_string_equal(ri.kind, "Namespace");
    assert_false(ri.namespaced);
    /* NULL is the core group too; the wrong version is a miss. */
    assert_int_equal(kiln_kube_discovery_resolve_resource(&ri, d, NULL, "v1", "pods", &err), 0);
    assert_true(ri.namespaced);
    assert_int_equal(
        kiln_kube_discovery_resolve_resource(&ri, d, "example.com", "v1beta1", "gadgets", &err),
        KILN_ENOTFOUND);
    assert_string_equal(err.msg, "the server does not serve gadgets in example.com/v1beta1");
    assert_int_equal(f->nreqs, 6);
    clk.now_ms += 10000;
    push_discovery(f, true);
    assert_int_equal(
        kiln_kube_discovery_resolve_resource(&ri, d, "example.com", "v1beta1", "gadgets", &err), 0);
    assert_string_equal(ri.kind, "Gadget");
    assert_false(ri.namespaced);
    assert_int_equal(f->nreqs, 12);
    kiln_kube_discovery_free(d);
    kiln_kube_client_free(c);
}

static void test_discovery__aggregated_v2_in_two_requests(void **state)
{
    fake *f;
    kiln_kube_client_opts o = {.qps = -1};
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    kiln_kube_discovery *d = kiln_kube_discovery_new(c, NULL);
    const char *agg = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
    fake_reply core = {200,
                       "{\"kind\":\"APIGroupDiscoveryList\",\"apiVersion\":\"apidiscovery.k8s.io/"
                       "v2\",\"items\":[{\"metadata\":{},\"versions\":[{\"version\":\"v1\","
                       "\"resources\":[{\"resource\":\"pods\",\"responseKind\":{\"group\":"
                       "\"\",\"version\":\"v1\",\"kind\":\"Pod\"},\"scope\":\"Namespaced\","
                       "\"verbs\":[\"get\",\"list\"],\"subresources\":[{\"subresource\":"
                       "\"status\",\"verbs\":[\"get\"]}]}]}]}]}",
                       -1,
                       {NULL},
                       0,
                       agg};
    fake_reply groups = {200,
                         "{\"kind\":\"APIGroupDiscoveryList\",\"items\":[{\"metadata\":{"
                         "\"name\":\"apps\"},\"versions\":[{\"version\":\"v1\",\"resources\":"
                         "[{\"resource\":\"statefulsets\",\"responseKind\":{\"group\":\"apps\","
                         "\"version\":\"v1\",\"kind\":\"StatefulSet\"},\"scope\":"
                         "\"Namespaced\",\"verbs\":[\"watch\"],\"subresources\":[{"
                         "\"subresource\":\"scale\",\"responseKind\":{\"group\":\"autoscaling\","
                         "\"version\":\"v1\",\"kind\":\"Scale\"}}]}]}]},{\"metadata\":{\"name\":"
                         "\"kiln.dev\"},\"versions\":[{\"version\":\"v1alpha1\",\"resources\":"
                         "[{\"resource\":\"resourcegraphdefinitions\",\"responseKind\":{"
                         "\"kind\":\"ResourceGraphDefinition\"},\"scope\":\"Cluster\"}]}]}]}",
                         -1,
                         {NULL},
                         0,
                         agg};
    fake_push_reply(f, core);
    fake_push_reply(f, groups);
    kiln_kube_resource_info ri;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_discovery_resolve(&ri, d, "apps/v1", "StatefulSet", &err), 0);
    assert_string_equal(ri.resource, "statefulsets");
    assert_true(ri.namespaced);
    assert_true(ri.has_scale);
    assert_false(ri.has_status);
    assert_int_equal(ri.verbs, KILN_KUBE_VERB_WATCH);
    assert_int_equal(kiln_kube_discovery_resolve(&ri, d, "v1", "Pod", &err), 0);
    assert_true(ri.has_status);
    assert_int_equal(
        kiln_kube_discovery_resolve(&ri, d, "kiln.dev/v1alpha1", "ResourceGraphDefinition", &err),
        0);
    assert_false(ri.namespaced);
    assert_string_equal(ri.resource, "resourcegraphdefinitions");
    assert_int_equal(f->nreqs, 2);
    assert_string_equal(f->reqs[0].accept, "application/json;g=apidiscovery.k8s.io;v=v2;as="
                                           "APIGroupDiscoveryList,application/json");
    kiln_kube_discovery_free(d);
    kiln_kube_client_free(c);
}

static void test_discovery__openapi_v3_cached_by_hash(void **state)
{
    fake_clock clk = {.now_ms = 100000};
    fake *f;
    kiln_kube_client_opts o = {.qps = -1};
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    kiln_kube_discovery_opts dopts = {.clock = fake_clock_ops(&clk)};
    kiln_kube_discovery *d = kiln_kube_discovery_new(c, &dopts);
    fake_push(f, 200,
              "{\"paths\":{\"api/v1\":{\"serverRelativeURL\":\"/openapi/v3/api/v1?hash=AA\"},"
              "\"apis/example.com/v1\":{\"serverRelativeURL\":\"/openapi/v3/apis/example.com/"
              "v1?hash=BB\"}}}");
    fake_push(f, 200,
              "{\"openapi\":\"3.0.0\",\"components\":{\"schemas\":{\"com.example.v1.Widget\":{"
              "\"type\":\"object\",\"x-kubernetes-group-version-kind\":[{\"group\":\"example."
              "com\",\"kind\":\"Widget\",\"version\":\"v1\"}]},\"com.example.v1.WidgetList\":{"
              "\"type\":\"object\",\"x-kubernetes-group-version-kind\":[{\"group\":\"example."
              "com\",\"kind\":\"WidgetList\",\"version\":\"v1\"}]}}}}");
    json_t *doc = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_openapi_document(&doc, d, "example.com", "v1", &err), 0);
    json_t *w = kiln_kube_openapi_find_kind(doc, "example.com", "v1", "Widget");
    assert_non_null(w);
    assert_ptr_equal(
        w, json_object_get(kiln_json_get_path(doc, "components.schemas"), "com.example.v1.Widget"));
    json_decref(doc);
    assert_int_equal(f->nreqs, 2);
    assert_string_equal(f->reqs[0].path, "/openapi/v3");
    assert_string_equal(f->reqs[1].path, "/openapi/v3/apis/example.com/v1?hash=BB");
    assert_int_equal(kiln_kube_openapi_document(&doc, d, "example.com", "v1", &err), 0);
    assert_null(kiln_kube_openapi_find_kind(doc, "example.com", "v1", "Gadget"));
    json_decref(doc);
    assert_int_equal(f->nreqs, 2);
    /* A group-version the index lacks: the index is re-read only after the
     * refresh interval. */
    assert_int_equal(kiln_kube_openapi_document(&doc, d, "apps", "v1", &err), KILN_ENOTFOUND);
    assert_string_equal(err.msg, "no OpenAPI v3 document for apis/apps/v1");
    assert_int_equal(f->nreqs, 2);
    kiln_kube_discovery_free(d);
    kiln_kube_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovery__resolves_kinds_and_refreshes_on_a_miss),
        cmocka_unit_test(test_discovery__resolves_a_resource_to_its_kind_and_scope),
        cmocka_unit_test(test_discovery__aggregated_v2_in_two_requests),
        cmocka_unit_test(test_discovery__openapi_v3_cached_by_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
