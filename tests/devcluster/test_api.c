/* tests/devcluster/test_api.c: the dev cluster's request handling, in-process
 * (kiln_devcluster_handle, no network, no background controllers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "devcluster/devcluster.h"

typedef struct reply {
    int status;
    json_t *doc; /* parsed body or NULL */
    char content_type[96];
    char etag[80];
    int retry_after;
    char *raw;
} reply;

static kiln_devcluster *new_cluster(size_t history)
{
    kiln_devcluster_options o = {.history = history, .max_body = 1 << 20};
    kiln_devcluster *dc = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_devcluster_new(&dc, &o, &err), 0);
    return dc;
}

static void free_reply(reply *r)
{
    json_decref(r->doc);
    free(r->raw);
    memset(r, 0, sizeof *r);
}

static reply call(kiln_devcluster *dc, const char *method, const char *path, const char *query,
                  const char *ct, const char *body)
{
    kiln_devcluster_request req = {.method = method,
                                   .path = path,
                                   .query = query,
                                   .content_type = ct ? ct : (body ? "application/json" : NULL),
                                   .accept = "application/json",
                                   .user_agent = "test/1.0",
                                   .body = body,
                                   .body_len = body ? strlen(body) : 0,
                                   .loopback = true};
    kiln_devcluster_response resp;
    kiln_devcluster_response_init(&resp);
    kiln_devcluster_handle(dc, &req, &resp);
    reply r = {.status = resp.status, .retry_after = resp.retry_after};
    snprintf(r.content_type, sizeof r.content_type, "%s", resp.content_type);
    snprintf(r.etag, sizeof r.etag, "%s", resp.etag);
    r.raw = strdup(resp.body.data ? resp.body.data : "");
    r.doc = json_loads(r.raw, 0, NULL);
    kiln_devcluster_response_free(dc, &resp);
    return r;
}

static const char *str_at(const json_t *doc, const char *a, const char *b)
{
    json_t *v = json_object_get(doc, a);
    if (b)
        v = json_object_get(v, b);
    return json_string_value(v);
}

#define CM "/api/v1/namespaces/default/configmaps"

static void test_api__create_get_update_conflict(void **state)
{
    (void)state;
    kiln_devcluster *dc = new_cluster(0);
    reply r =
        call(dc, "POST", CM, NULL, NULL, "{\"metadata\":{\"name\":\"a\"},\"data\":{\"k\":\"v\"}}");
    assert_int_equal(r.status, 201);
    assert_string_equal(str_at(r.doc, "kind", NULL), "ConfigMap");
    assert_string_equal(str_at(r.doc, "metadata", "namespace"), "default");
    assert_int_equal(strlen(str_at(r.doc, "metadata", "uid")), 36);
    char rv[32];
    snprintf(rv, sizeof rv, "%s", str_at(r.doc, "metadata", "resourceVersion"));
    free_reply(&r);

    r = call(dc, "POST", CM, NULL, NULL, "{\"metadata\":{\"name\":\"a\"}}");
    assert_int_equal(r.status, 409);
    assert_string_equal(str_at(r.doc, "reason", NULL), "AlreadyExists");
    assert_string_equal(str_at(r.doc, "message", NULL), "configmaps \"a\" already exists");
    free_reply(&r);

    char body[256];
    snprintf(body, sizeof body,
             "{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"%s\"},\"data\":{\"k\":\"w\"}}",
             rv);
    r = call(dc, "PUT", CM "/a", NULL, NULL, body);
    assert_int_equal(r.status, 200);
    assert_true(strcmp(str_at(r.doc, "metadata", "resourceVersion"), rv) > 0 ||
                strlen(str_at(r.doc, "metadata", "resourceVersion")) > strlen(rv));
    free_reply(&r);

    /* The same body again carries a stale resourceVersion now. */
    r = call(dc, "PUT", CM "/a", NULL, NULL, body);
    assert_int_equal(r.status, 409);
    assert_string_equal(str_at(r.doc, "reason", NULL), "Conflict");
    assert_string_equal(str_at(r.doc, "message", NULL),
                        "Operation cannot be fulfilled on configmaps \"a\": the object has been "
                        "modified; please apply your changes to the latest version and try again");
    free_reply(&r);

    r = call(dc, "GET", CM "/a", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(str_at(r.doc, "data", "k"), "w");
    free_reply(&r);

    r = call(dc, "DELETE", CM "/a", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(str_at(r.doc, "status", NULL), "Success");
    free_reply(&r);
    r = call(dc, "GET", CM "/a", NULL, NULL, NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(str_at(r.doc, "message", NULL), "configmaps \"a\" not found");
    free_reply(&r);
    kiln_devcluster_stop(dc);
}

static void test_api__errors_are_status_objects(void **state)
{
    (void)state;
    kiln_devcluster *dc = new_cluster(0);
    reply r = call(dc, "GET", "/api/v1/widgets", NULL, NULL, NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(str_at(r.doc, "kind", NULL), "Status");
    assert_string_equal(str_at(r.doc, "reason", NULL), "NotFound");
    free_reply(&r);

    r = call(dc, "POST", CM, NULL, "application/vnd.kubernetes.protobuf", "k8s");
    assert_int_equal(r.status, 415);
    assert_string_equal(str_at(r.doc, "reason", NULL), "UnsupportedMediaType");
    free_reply(&r);

    r = call(dc, "POST", CM, NULL, NULL, "{\"metadata\":");
    assert_int_equal(r.status, 400);
    assert_string_equal(str_at(r.doc, "reason", NULL), "BadRequest");
    free_reply(&r);

    r = call(dc, "POST", CM, NULL, NULL, "{\"metadata\":{\"name\":\"UPPER\"}}");
    assert_int_equal(r.status, 422);
    assert_string_equal(str_at(r.doc, "reason", NULL), "Invalid");
    json_t *cause = json_array_get(json_object_get(json_object_get(r.doc, "details"), "causes"), 0);
    assert_string_equal(json_string_value(json_object_get(cause, "field")), "metadata.name");
    assert_string_equal(json_string_value(json_object_get(cause, "reason")), "FieldValueInvalid");
    free_reply(&r);

    kiln_devcluster_request req = {
        .method = "POST", .path = CM, .body_too_large = true, .content_type = "application/json"};
    kiln_devcluster_response resp;
    kiln_devcluster_response_init(&resp);
    kiln_devcluster_handle(dc, &req, &resp);
    assert_int_equal(resp.status, 413);
    assert_non_null(strstr(resp.body.data, "\"reason\":\"RequestEntityTooLarge\""));
    kiln_devcluster_response_free(dc, &resp);

    r = call(dc, "PATCH", CM "/none", NULL, "application/merge-patch+json", "{}");
    assert_int_equal(r.status, 404);
    free_reply(&r);
    kiln_devcluster_stop(dc);
}

static void test_api__strategic_merge_patch_merges_by_key(void **state)
{
    (void)state;
    kiln_devcluster *dc = new_cluster(0);
    reply r = call(dc, "POST", "/apis/apps/v1/namespaces/default/deployments", NULL, NULL,
                   "{\"metadata\":{\"name\":\"d\"},\"spec\":{\"selector\":{\"matchLabels\":{\"a\":"
                   "\"b\"}},\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":"
                   "\"x\",\"env\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"B\",\"value\":"
                   "\"2\"}]},{\"name\":\"s\",\"image\":\"y\"}]}}}}");
    assert_int_equal(r.status, 201);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.doc, "spec"), "replicas")), 1);
    free_reply(&r);
    r = call(dc, "PATCH", "/apis/apps/v1/namespaces/default/deployments/d", NULL,
             "application/strategic-merge-patch+json",
             "{\"spec\":{\"template\":{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"s\"},"
             "{\"name\":\"c\"}],\"containers\":[{\"name\":\"c\",\"image\":\"x2\",\"env\":[{"
             "\"name\":\"B\",\"$patch\":\"delete\"}]}]}}}}");
    assert_int_equal(r.status, 200);
    char *s = json_dumps(
        json_object_get(
            json_object_get(json_object_get(json_object_get(r.doc, "spec"), "template"), "spec"),
            "containers"),
        JSON_COMPACT);
    assert_string_equal(s, "[{\"name\":\"s\",\"image\":\"y\"},{\"name\":\"c\",\"image\":\"x2\","
                           "\"env\":[{\"name\":\"A\",\"value\":\"1\"}]}]");
    free(s);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.doc, "metadata"), "generation")), 2);
    free_reply(&r);
    kiln_devcluster_stop(dc);
}

static void test_api__json_patch_test_failure_is_422(void **state)
{
    (void)state;
    kiln_devcluster *dc = new_cluster(0);
    reply r =
        call(dc, "POST", CM, NULL, NULL, "{\"metadata\":{\"name\":\"j\"},\"data\":{\"a\":\"1\"}}");
    free_reply(&r);
    r = call(dc, "PATCH", CM "/j", NULL, "application/json-patch+json",
             "[{\"op\":\"test\",\"path\":\"/data/a\",\"value\":\"2\"},{\"op\":\"remove\",\"path\":"
             "\"/data/a\"}]");
    assert_int_equal(r.status, 422);
    assert_string_equal(str_at(r.doc, "message", NULL),
                        "testing value /data/a failed: test failed");
    free_reply(&r);
    r = call(dc, "PATCH", CM "/j", NULL, "application/json-patch+json",
             "[{\"op\":\"test\",\"path\":\"/data/a\",\"value\":\"1\"},{\"op\":\"add\",\"path\":"
             "\"/data/b~1c\",\"value\":\"3\"},{\"op\":\"move\",\"from\":\"/data/a\",\"path\":"
             "\"/data/z\"}]");
    assert_int_equal(r.status, 200);
    char *s = json_dumps(json_object_get(r.doc, "data"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"b/c\":\"3\",\"z\":\"1\"}");
    free(s);
    free_reply(&r);
    kiln_devcluster_stop(dc);
}

static long read_watch(kiln_devcluster *dc, void *w, char *buf, size_t n)
{
    size_t got = 0;
    for (int i = 0; i < 50 && got + 1 < n; i++) {
        long k = kiln_devcluster_watch_read(dc, w, buf + got, n - 1 - got, 10);
        if (k < 0)
            break;
        got += (size_t)k;
        if (k == 0 && got)
            break;
    }
    buf[got] = '\0';
    return (long)got;
}

static void test_api__watch_resume_and_expired(void **state)
{
    (void)state;
    kiln_devcluster *dc = new_cluster(5);
    reply r = call(dc, "POST", CM, NULL, NULL, "{\"metadata\":{\"name\":\"w0\"}}");
    char rv[32], query[96];
    snprintf(rv, sizeof rv, "%s", str_at(r.doc, "metadata", "resourceVersion"));
    free_reply(&r);
    r = call(dc, "POST", CM, NULL, NULL,
             "{\"metadata\":{\"name\":\"w1\",\"labels\":{\"x\":\"y\"}}}");
    free_reply(&r);
    r = call(dc, "DELETE", CM "/w0", NULL, NULL, NULL);
    free_reply(&r);

    snprintf(query, sizeof query, "watch=true&resourceVersion=%s", rv);
    kiln_devcluster_request req = {.method = "GET", .path = CM, .query = query};
    kiln_devcluster_response resp;
    kiln_devcluster_response_init(&resp);
    kiln_devcluster_handle(dc, &req, &resp);
    assert_int_equal(resp.status, 200);
    assert_non_null(resp.watch);
    char buf[8192];
    read_watch(dc, resp.watch, buf, sizeof buf);
    assert_non_null(strstr(buf, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"w1\""));
    assert_non_null(strstr(buf, "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"w0\""));
    /* Resuming after w0's creation: w0's own ADDED is not replayed. */
    assert_null(strstr(buf, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"w0\""));
    kiln_devcluster_response_free(dc, &resp);

    /* A label selector: the object that stops matching arrives as DELETED. */
    kiln_devcluster_request sel = {
        .method = "GET", .path = CM, .query = "watch=1&labelSelector=x%3Dy&resourceVersion=0"};
    kiln_devcluster_response_init(&resp);
    kiln_devcluster_handle(dc, &sel, &resp);
    read_watch(dc, resp.watch, buf, sizeof buf);
    assert_non_null(strstr(buf, "\"type\":\"ADDED\""));
    r = call(dc, "PATCH", CM "/w1", NULL, "application/merge-patch+json",
             "{\"metadata\":{\"labels\":{\"x\":null}}}");
    assert_int_equal(r.status, 200);
    free_reply(&r);
    read_watch(dc, resp.watch, buf, sizeof buf);
    assert_non_null(strstr(buf, "{\"type\":\"DELETED\""));
    kiln_devcluster_response_free(dc, &resp);

    /* History holds 5 events; after 6 more writes the old RV is gone: 410. */
    for (int i = 0; i < 6; i++) {
        char b[64];
        snprintf(b, sizeof b, "{\"metadata\":{\"name\":\"c%d\"}}", i);
        r = call(dc, "POST", CM, NULL, NULL, b);
        free_reply(&r);
    }
    kiln_devcluster_response_init(&resp);
    kiln_devcluster_handle(dc, &req, &resp);
    read_watch(dc, resp.watch, buf, sizeof buf);
    json_t *ev = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
    assert_string_equal(str_at(ev, "type", NULL), "ERROR");
    json_t *st = json_object_get(ev, "object");
    assert_int_equal(json_integer_value(json_object_get(st, "code")), 410);
    assert_string_equal(str_at(st, "reason", NULL), "Expired");
    json_decref(ev);
    assert_int_equal(kiln_devcluster_watch_read(dc, resp.watch, buf, sizeof buf, 10), -1);
    kiln_devcluster_response_free(dc, &resp);
    kiln_devcluster_stop(dc);
}

static const char *crd =
    "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
    "\"metadata\":{\"name\":\"things.example.com\"},\"spec\":{\"group\":\"example.com\","
    "\"scope\":\"Cluster\",\"names\":{\"plural\":\"things\",\"kind\":\"Thing\"},\"versions\":[{"
    "\"name\":\"v1\",\"served\":true,\"storage\":true,\"schema\":{\"openAPIV3Schema\":{\"type\":"
    "\"object\",\"properties\":{\"spec\":{\"type\":\"object\",\"properties\":{\"mode\":{\"type\":"
    "\"string\",\"enum\":[\"a\",\"b\"],\"default\":\"a\"},\"name\":{\"type\":\"string\","
    "\"pattern\":\"^[a-z]+$\",\"maxLength\":5},\"free\":{\"type\":\"object\","
    "\"x-kubernetes-preserve-unknown-fields\":true}}}}}}}]}}";

static void test_api__crd_served_validated_defaulted_pruned(void **state)
{
    (void)state;
    kiln_devcluster *dc = new_cluster(0);
    reply r = call(dc, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", NULL,
                   NULL, crd);
    assert_int_equal(r.status, 201);
    json_t *conds = json_object_get(json_object_get(r.doc, "status"), "conditions");
    assert_string_equal(str_at(json_array_get(conds, 0), "type", NULL), "NamesAccepted");
    assert_string_equal(str_at(json_array_get(conds, 1), "type", NULL), "Established");
    assert_string_equal(str_at(json_array_get(conds, 1), "status", NULL), "True");
    free_reply(&r);

    r = call(dc, "GET", "/apis/example.com/v1", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *res = json_array_get(json_object_get(r.doc, "resources"), 0);
    assert_string_equal(str_at(res, "name", NULL), "things");
    assert_false(json_is_true(json_object_get(res, "namespaced")));
    free_reply(&r);

    r = call(dc, "POST", "/apis/example.com/v1/things", NULL, NULL,
             "{\"metadata\":{\"name\":\"t\"},\"spec\":{\"junk\":1,\"free\":{\"any\":2}}}");
    assert_int_equal(r.status, 201);
    char *s = json_dumps(json_object_get(r.doc, "spec"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"free\":{\"any\":2},\"mode\":\"a\"}");
    free(s);
    free_reply(&r);

    r = call(dc, "POST", "/apis/example.com/v1/things", "fieldValidation=Strict", NULL,
             "{\"metadata\":{\"name\":\"u\"},\"spec\":{\"junk\":1}}");
    assert_int_equal(r.status, 400);
    assert_string_equal(str_at(r.doc, "message", NULL),
                        "strict decoding error: unknown field \"spec.junk\"");
    free_reply(&r);

    r = call(dc, "POST", "/apis/example.com/v1/things", NULL, NULL,
             "{\"metadata\":{\"name\":\"v\"},\"spec\":{\"mode\":\"c\",\"name\":\"ABCDEFG\"}}");
    assert_int_equal(r.status, 422);
    assert_string_equal(
        str_at(r.doc, "message", NULL),
        "Thing.example.com \"v\" is invalid: [spec.mode: Unsupported value: \"c\": supported "
        "values: \"a\", \"b\", spec.name: Too long: may not be longer than 5, spec.name: "
        "Invalid value: \"ABCDEFG\": spec.name in body should match '^[a-z]+$']");
    free_reply(&r);

    r = call(dc, "DELETE",
             "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/things.example.com", NULL,
             NULL, NULL);
    assert_int_equal(r.status, 200);
    free_reply(&r);
    r = call(dc, "GET", "/apis/example.com/v1/things/t", NULL, NULL, NULL);
    assert_int_equal(r.status, 404);
    free_reply(&r);
    kiln_devcluster_stop(dc);
}

static void test_api__server_side_apply_conflicts_and_force(void **state)
{
    (void)state;
    kiln_devcluster *dc = new_cluster(0);
    const char *ct = "application/apply-patch+yaml";
    reply r = call(dc, "PATCH", CM "/s", "fieldManager=one", ct,
                   "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"s\"},"
                   "\"data\":{\"a\":\"1\",\"b\":\"1\"}}");
    assert_int_equal(r.status, 201);
    json_t *mf =
        json_array_get(json_object_get(json_object_get(r.doc, "metadata"), "managedFields"), 0);
    assert_string_equal(str_at(mf, "manager", NULL), "one");
    assert_string_equal(str_at(mf, "operation", NULL), "Apply");
    char *s = json_dumps(json_object_get(mf, "fieldsV1"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"f:data\":{\"f:a\":{},\"f:b\":{}}}");
    free(s);
    free_reply(&r);

    r = call(dc, "PATCH", CM "/s", "fieldManager=two", ct,
             "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"s\"},"
             "\"data\":{\"a\":\"2\"}}");
    assert_int_equal(r.status, 409);
    assert_string_equal(str_at(r.doc, "message", NULL),
                        "Apply failed with 1 conflict: conflict with \"one\" using v1: .data.a");
    free_reply(&r);

    r = call(dc, "PATCH", CM "/s", "fieldManager=two&force=true", ct,
             "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"s\"},"
             "\"data\":{\"a\":\"2\"}}");
    assert_int_equal(r.status, 200);
    assert_string_equal(str_at(r.doc, "data", "a"), "2");
    free_reply(&r);

    /* "one" now applies only b: a belongs to "two" and stays; b is kept. */
    r = call(dc, "PATCH", CM "/s", "fieldManager=one", ct,
             "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"s\"},"
             "\"data\":{\"b\":\"1\"}}");
    assert_int_equal(r.status, 200);
    s = json_dumps(json_object_get(r.doc, "data"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"a\":\"2\",\"b\":\"1\"}");
    free(s);
    free_reply(&r);
    /* ...and when "one" drops b, nobody else owns it: it goes. */
    r = call(dc, "PATCH", CM "/s", "fieldManager=one", ct,
             "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"s\"}}");
    s = json_dumps(json_object_get(r.doc, "data"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"a\":\"2\"}");
    free(s);
    free_reply(&r);

    r = call(dc, "PATCH", CM "/s", NULL, ct, "{}");
    assert_int_equal(r.status, 422);
    assert_non_null(strstr(str_at(r.doc, "message", NULL), "fieldManager: Required value"));
    free_reply(&r);
    kiln_devcluster_stop(dc);
}

static void test_api__discovery_and_openapi_forms(void **state)
{
    (void)state;
    kiln_devcluster *dc = new_cluster(0);
    kiln_devcluster_request req = {
        .method = "GET",
        .path = "/apis",
        .accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                  "application/json"};
    kiln_devcluster_response resp;
    kiln_devcluster_response_init(&resp);
    kiln_devcluster_handle(dc, &req, &resp);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.content_type,
                        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
    assert_non_null(strstr(resp.body.data, "\"kind\":\"APIGroupDiscoveryList\""));
    kiln_devcluster_response_free(dc, &resp);

    reply r = call(dc, "GET", "/openapi/v2", NULL, NULL, NULL);
    kiln_devcluster_request v2 = {.method = "GET",
                                  .path = "/openapi/v2",
                                  .accept = "application/com.github.proto-openapi.spec.v2@v1.0+"
                                            "protobuf"};
    kiln_devcluster_response_init(&resp);
    kiln_devcluster_handle(dc, &v2, &resp);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.body.len, 0);
    assert_string_equal(resp.content_type,
                        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf");
    kiln_devcluster_response_free(dc, &resp);
    free_reply(&r);

    r = call(dc, "GET", "/openapi/v3/apis/apps/v1", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *op =
        json_object_get(json_object_get(json_object_get(r.doc, "paths"),
                                        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"),
                        "patch");
    assert_string_equal(str_at(op, "x-kubernetes-group-version-kind", "kind"), "Deployment");
    json_t *params = json_object_get(op, "parameters");
    bool has_fv = false;
    size_t i;
    json_t *p;
    json_array_foreach(params, i, p) has_fv |= !strcmp(str_at(p, "name", NULL), "fieldValidation");
    assert_true(has_fv);
    free_reply(&r);
    kiln_devcluster_stop(dc);
}

static void test_api__yaml_body_and_finalizers(void **state)
{
    (void)state;
    kiln_devcluster *dc = new_cluster(0);
    reply r =
        call(dc, "POST", CM, NULL, "application/yaml",
             "metadata:\n  name: yml\n  finalizers: [example.com/hold]\ndata:\n  v: \"1.0\"\n");
    assert_int_equal(r.status, 201);
    assert_string_equal(str_at(r.doc, "data", "v"), "1.0");
    free_reply(&r);

    /* Finalizers hold the object: DELETE answers it with deletionTimestamp. */
    r = call(dc, "DELETE", CM "/yml", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(str_at(r.doc, "metadata", "deletionTimestamp"));
    free_reply(&r);
    r = call(dc, "PATCH", CM "/yml", NULL, "application/merge-patch+json",
             "{\"metadata\":{\"finalizers\":[\"example.com/hold\",\"example.com/new\"]}}");
    assert_int_equal(r.status, 422);
    assert_non_null(strstr(str_at(r.doc, "message", NULL),
                           "no new finalizers can be added if the object is being deleted"));
    free_reply(&r);
    r = call(dc, "PATCH", CM "/yml", NULL, "application/json-patch+json",
             "[{\"op\":\"remove\",\"path\":\"/metadata/finalizers/0\"}]");
    assert_int_equal(r.status, 200);
    free_reply(&r);
    r = call(dc, "GET", CM "/yml", NULL, NULL, NULL);
    assert_int_equal(r.status, 404);
    free_reply(&r);

    r = call(dc, "POST", CM, NULL, "application/yaml", "a: [1\n");
    assert_int_equal(r.status, 400);
    assert_string_equal(str_at(r.doc, "reason", NULL), "BadRequest");
    free_reply(&r);
    kiln_devcluster_stop(dc);
}

static void test_api__list_selectors_and_pages(void **state)
{
    (void)state;
    kiln_devcluster *dc = new_cluster(0);
    const char *bodies[] = {
        "{\"metadata\":{\"name\":\"a\",\"labels\":{\"tier\":\"web\",\"env\":\"prod\"}}}",
        "{\"metadata\":{\"name\":\"b\",\"labels\":{\"tier\":\"db\"}}}",
        "{\"metadata\":{\"name\":\"c\",\"labels\":{\"tier\":\"web\"}}}",
    };
    for (size_t i = 0; i < 3; i++) {
        reply r = call(dc, "POST", CM, NULL, NULL, bodies[i]);
        assert_int_equal(r.status, 201);
        free_reply(&r);
    }
    struct {
        const char *query, *names;
    } cases[] = {
        {"labelSelector=tier%3Dweb", "a,c"},
        {"labelSelector=tier%20in%20(db,cache)", "b"},
        {"labelSelector=tier%3Dweb,!env", "c"},
        {"labelSelector=env", "a"},
        {"labelSelector=tier!%3Dweb", "b"},
        {"fieldSelector=metadata.name!%3Db", "a,c"},
        {"limit=2", "a,b"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reply r = call(dc, "GET", CM, cases[i].query, NULL, NULL);
        assert_int_equal(r.status, 200);
        char names[64] = "";
        size_t k;
        json_t *it;
        json_array_foreach(json_object_get(r.doc, "items"), k, it)
        {
            strcat(names, k ? "," : "");
            strcat(names, str_at(it, "metadata", "name"));
        }
        assert_string_equal(names, cases[i].names);
        free_reply(&r);
    }
    kiln_devcluster_stop(dc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api__create_get_update_conflict),
        cmocka_unit_test(test_api__errors_are_status_objects),
        cmocka_unit_test(test_api__strategic_merge_patch_merges_by_key),
        cmocka_unit_test(test_api__json_patch_test_failure_is_422),
        cmocka_unit_test(test_api__watch_resume_and_expired),
        cmocka_unit_test(test_api__crd_served_validated_defaulted_pruned),
        cmocka_unit_test(test_api__server_side_apply_conflicts_and_force),
        cmocka_unit_test(test_api__discovery_and_openapi_forms),
        cmocka_unit_test(test_api__yaml_body_and_finalizers),
        cmocka_unit_test(test_api__list_selectors_and_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
