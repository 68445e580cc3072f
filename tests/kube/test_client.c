#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/json.h"
#include "kube/client.h"
#include "tests/kube/fake.h"

static json_t *parse(const char *s)
{
    json_t *j = json_loads(s, 0, NULL);
    assert_non_null(j);
    return j;
}

static void assert_json_eq(const json_t *j, const char *expected)
{
    json_t *e = parse(expected);
    char *a = kiln_json_canonical(j);
    char *b = kiln_json_canonical(e);
    assert_string_equal(a, b);
    kiln_xfree(a);
    kiln_xfree(b);
    json_decref(e);
}

static kiln_kube_client_opts no_limit(void)
{
    kiln_kube_client_opts o = {0};
    o.qps = -1;
    return o;
}

/* ------------------------------------------------------------------------ */

static void path_of(const kiln_kube_ref *ref, const char *expected, int code)
{
    kiln_buf b;
    kiln_err err = {0};
    kiln_buf_init(&b, 0);
    int rc = kiln_kube_path(&b, ref, &err);
    assert_int_equal(rc, code);
    if (!code)
        assert_string_equal(b.data, expected);
    else
        assert_string_equal(err.msg, expected);
    kiln_buf_free(&b);
}

static void test_client__paths_for_core_and_groups(void **state)
{
    path_of(&(kiln_kube_ref){"", "v1", "pods", "ns1", "p", NULL}, "/api/v1/namespaces/ns1/pods/p",
            0);
    path_of(&(kiln_kube_ref){NULL, "v1", "namespaces", NULL, NULL, NULL}, "/api/v1/namespaces", 0);
    path_of(&(kiln_kube_ref){"", "v1", "nodes", NULL, "n1", "status"}, "/api/v1/nodes/n1/status",
            0);
    path_of(&(kiln_kube_ref){"apps", "v1", "deployments", "default", "web", "scale"},
            "/apis/apps/v1/namespaces/default/deployments/web/scale", 0);
    path_of(&(kiln_kube_ref){"kiln.dev", "v1alpha1", "resourcegraphdefinitions", NULL, "a", NULL},
            "/apis/kiln.dev/v1alpha1/resourcegraphdefinitions/a", 0);
    path_of(&(kiln_kube_ref){"rbac.authorization.k8s.io", "v1", "clusterroles", NULL,
                             "system:controller:x y", NULL},
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:controller:x%20y", 0);
    path_of(&(kiln_kube_ref){"", "v1", "pods", "ns", "a/b", NULL},
            "invalid name \"a/b\" in request path", KILN_EINVAL);
    path_of(&(kiln_kube_ref){"", "v1", "pods", "ns", "..", NULL},
            "invalid name \"..\" in request path", KILN_EINVAL);
    path_of(&(kiln_kube_ref){"", "v1", "pods", "ns", NULL, "status"},
            "subresource \"status\" needs an object name", KILN_EINVAL);
    path_of(&(kiln_kube_ref){"", NULL, "pods", NULL, NULL, NULL},
            "invalid version \"\" in request path", KILN_EINVAL);
}

static void test_client__get_sends_accept_and_bearer(void **state)
{
    fake *f;
    kiln_kube_config *cfg = kiln_kube_config_new("https://k8s.test:6443");
    cfg->token = kiln_xstrdup("s3cr3t");
    kiln_kube_client_opts o = no_limit();
    kiln_kube_client *c = fake_client(&f, cfg, &o);
    fake_push(f, 200, "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}}");
    json_t *obj = NULL;
    kiln_err err = {0};
    kiln_kube_ref ref = {"", "v1", "configmaps", "ns", "a", NULL};
    assert_int_equal(kiln_kube_get(&obj, c, &ref, &err), 0);
    assert_json_eq(obj, "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}}");
    assert_int_equal(f->nreqs, 1);
    assert_string_equal(f->reqs[0].method, "GET");
    assert_string_equal(f->reqs[0].path, "/api/v1/namespaces/ns/configmaps/a");
    assert_string_equal(f->reqs[0].accept, "application/json");
    assert_string_equal(f->reqs[0].token, "s3cr3t");
    assert_null(f->reqs[0].content_type);
    assert_int_equal(kiln_kube_last_status()->http, 200);
    json_decref(obj);
    kiln_kube_client_free(c);
}

static void test_client__list_follows_continue_without_resource_version(void **state)
{
    fake *f;
    kiln_kube_client_opts o = no_limit();
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    fake_push(f, 200,
              "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":"
              "\"100\",\"continue\":\"tok 1\",\"remainingItemCount\":1},\"items\":[{\"metadata\":"
              "{\"name\":\"a\"}}]}");
    fake_push(f, 200,
              "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":"
              "\"100\"},\"items\":[{\"metadata\":{\"name\":\"b\"}}]}");
    json_t *list = NULL;
    kiln_err err = {0};
    kiln_kube_ref ref = {"", "v1", "pods", "ns", NULL, NULL};
    kiln_kube_list_opts lo = {.label_selector = "app=web,tier in (a,b)",
                              .field_selector = "metadata.name=x",
                              .limit = 1,
                              .resource_version = "0"};
    assert_int_equal(kiln_kube_list(&list, c, &ref, &lo, &err), 0);
    assert_json_eq(list, "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{"
                         "\"resourceVersion\":\"100\"},\"items\":[{\"metadata\":{\"name\":\"a\"}},"
                         "{\"metadata\":{\"name\":\"b\"}}]}");
    assert_int_equal(f->nreqs, 2);
    assert_string_equal(f->reqs[0].path,
                        "/api/v1/namespaces/ns/pods?labelSelector=app%3Dweb%2Ctier%20in%20%28a%"
                        "2Cb%29&fieldSelector=metadata.name%3Dx&limit=1&resourceVersion=0");
    assert_string_equal(f->reqs[1].path,
                        "/api/v1/namespaces/ns/pods?labelSelector=app%3Dweb%2Ctier%20in%20%28a%"
                        "2Cb%29&fieldSelector=metadata.name%3Dx&limit=1&continue=tok%201");
    json_decref(list);
    kiln_kube_client_free(c);
}

static void test_client__list_expired_continue_is_conflict_and_expired(void **state)
{
    fake *f;
    kiln_kube_client_opts o = no_limit();
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    fake_push(f, 200,
              "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"5\",\"continue\":\"c\"},"
              "\"items\":[]}");
    fake_push(f, 410,
              "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
              "\"The provided continue parameter is too old\",\"reason\":\"Expired\",\"code\":"
              "410}");
    json_t *list = (json_t *)1;
    kiln_err err = {0};
    kiln_kube_ref ref = {"", "v1", "pods", NULL, NULL, NULL};
    assert_int_equal(kiln_kube_list(&list, c, &ref, NULL, &err), KILN_ECONFLICT);
    assert_null(list);
    assert_string_equal(err.msg, "The provided continue parameter is too old");
    assert_true(kiln_kube_last_expired());
    assert_string_equal(kiln_kube_last_status()->reason, "Expired");
    assert_string_equal(f->reqs[0].path, "/api/v1/pods?limit=500");
    kiln_kube_client_free(c);
}

static void test_client__list_item_bound_is_elimit(void **state)
{
    fake *f;
    kiln_kube_client_opts o = no_limit();
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    fake_push(f, 200,
              "{\"metadata\":{\"continue\":\"c\"},\"items\":[{\"metadata\":{\"name\":\"a\"}},"
              "{\"metadata\":{\"name\":\"b\"}}]}");
    fake_push(f, 200, "{\"metadata\":{},\"items\":[{\"metadata\":{\"name\":\"c\"}}]}");
    json_t *list = NULL;
    kiln_err err = {0};
    kiln_kube_ref ref = {"", "v1", "secrets", "ns", NULL, NULL};
    kiln_kube_list_opts lo = {.max_items = 2};
    assert_int_equal(kiln_kube_list(&list, c, &ref, &lo, &err), KILN_ELIMIT);
    assert_string_equal(err.msg, "list of secrets: more than 2 items");
    assert_null(list);
    assert_int_equal(f->nreqs, 2);
    kiln_kube_client_free(c);
}

static void test_client__writes_use_exact_content_types_and_queries(void **state)
{
    fake *f;
    kiln_kube_client_opts o = no_limit();
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    for (int i = 0; i < 5; i++)
        fake_push(f, i == 0 ? 201 : 200, "{\"kind\":\"Widget\"}");
    json_t *obj = parse("{\"apiVersion\":\"example.com/v1\",\"kind\":\"Widget\",\"metadata\":"
                        "{\"name\":\"a\"},\"spec\":{\"size\":3}}");
    json_t *out = NULL;
    kiln_err err = {0};
    kiln_kube_ref ref = {"example.com", "v1", "widgets", "ns", "a", NULL};
    kiln_kube_write_opts w = {.field_manager = "kiln", .dry_run = true};

    assert_int_equal(kiln_kube_create(&out, c, &ref, obj, &w, &err), 0);
    json_decref(out);
    assert_int_equal(kiln_kube_update(&out, c, &ref, obj, NULL, &err), 0);
    json_decref(out);
    json_t *mp = parse("{\"metadata\":{\"labels\":{\"x\":null}}}");
    assert_int_equal(kiln_kube_patch(&out, c, &ref, KILN_KUBE_PATCH_MERGE, mp, NULL, &err), 0);
    json_decref(out);
    json_t *jp = parse("[{\"op\":\"test\",\"path\":\"/metadata/finalizers/0\",\"value\":\"k\"},"
                       "{\"op\":\"remove\",\"path\":\"/metadata/finalizers/0\"}]");
    assert_int_equal(kiln_kube_patch(&out, c, &ref, KILN_KUBE_PATCH_JSON, jp, NULL, &err), 0);
    json_decref(out);
    kiln_kube_ref st = ref;
    st.subresource = "status";
    assert_int_equal(kiln_kube_apply(&out, c, &st, obj, "kiln", true, &err), 0);
    json_decref(out);

    assert_int_equal(f->nreqs, 5);
    assert_string_equal(f->reqs[0].method, "POST");
    assert_string_equal(f->reqs[0].path,
                        "/apis/example.com/v1/namespaces/ns/widgets?fieldManager=kiln&dryRun=All");
    assert_string_equal(f->reqs[0].content_type, "application/json");
    json_t *sent = parse(f->reqs[0].body);
    assert_true(kiln_json_equal(sent, obj));
    json_decref(sent);
    assert_string_equal(f->reqs[1].method, "PUT");
    assert_string_equal(f->reqs[1].path, "/apis/example.com/v1/namespaces/ns/widgets/a");
    assert_string_equal(f->reqs[2].method, "PATCH");
    assert_string_equal(f->reqs[2].content_type, "application/merge-patch+json");
    assert_string_equal(f->reqs[2].body, "{\"metadata\":{\"labels\":{\"x\":null}}}");
    assert_string_equal(f->reqs[3].content_type, "application/json-patch+json");
    assert_string_equal(f->reqs[4].content_type, "application/apply-patch+yaml");
    assert_string_equal(f->reqs[4].path, "/apis/example.com/v1/namespaces/ns/widgets/a/status"
                                         "?fieldManager=kiln&force=true");
    json_decref(obj);
    json_decref(mp);
    json_decref(jp);
    kiln_kube_client_free(c);
}

static void test_client__write_mistakes_fail_before_sending(void **state)
{
    fake *f;
    kiln_kube_client_opts o = no_limit();
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    json_t *obj = parse("{\"metadata\":{\"name\":\"a\"}}");
    json_t *arr = parse("[]");
    json_t *out = NULL;
    kiln_err err = {0};
    kiln_kube_ref ref = {"apps", "v1", "deployments", "ns", "a", NULL};
    assert_int_equal(kiln_kube_apply(&out, c, &ref, obj, NULL, false, &err), KILN_EINVAL);
    assert_string_equal(err.msg, "fieldManager is required for apply");
    kiln_kube_write_opts w = {.field_manager = "kiln", .force = true};
    assert_int_equal(kiln_kube_patch(&out, c, &ref, KILN_KUBE_PATCH_MERGE, obj, &w, &err),
                     KILN_EINVAL);
    assert_string_equal(err.msg, "force is only allowed with server-side apply");
    assert_int_equal(kiln_kube_patch(&out, c, &ref, KILN_KUBE_PATCH_JSON, obj, NULL, &err),
                     KILN_EINVAL);
    assert_string_equal(err.msg, "a JSON patch is a list of operations, got object");
    assert_int_equal(kiln_kube_patch(&out, c, &ref, KILN_KUBE_PATCH_MERGE, arr, NULL, &err),
                     KILN_EINVAL);
    assert_string_equal(err.msg, "a merge patch is an object, got array");
    assert_int_equal(f->nreqs, 0);
    json_decref(obj);
    json_decref(arr);
    kiln_kube_client_free(c);
}

static void test_client__delete_sends_options_in_body(void **state)
{
    fake *f;
    kiln_kube_client_opts o = no_limit();
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    fake_push(f, 200, "{\"kind\":\"Status\",\"status\":\"Success\",\"details\":{\"uid\":\"u1\"}}");
    json_t *out = NULL;
    kiln_err err = {0};
    kiln_kube_ref ref = {"apps", "v1", "deployments", "ns", "web", NULL};
    kiln_kube_delete_opts d = {.propagation_policy = "Foreground",
                               .precondition_uid = "u1",
                               .precondition_resource_version = "42",
                               .set_grace_period = true,
                               .grace_period_s = 0};
    assert_int_equal(kiln_kube_delete(&out, c, &ref, &d, &err), 0);
    assert_string_equal(kiln_json_get_string(out, "details.uid"), "u1");
    assert_string_equal(f->reqs[0].method, "DELETE");
    assert_string_equal(f->reqs[0].path, "/apis/apps/v1/namespaces/ns/deployments/web");
    assert_string_equal(f->reqs[0].content_type, "application/json");
    json_t *body = parse(f->reqs[0].body);
    assert_json_eq(body, "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"propagationPolicy\":"
                         "\"Foreground\",\"gracePeriodSeconds\":0,\"preconditions\":{\"uid\":"
                         "\"u1\",\"resourceVersion\":\"42\"}}");
    json_decref(body);
    json_decref(out);
    kiln_kube_client_free(c);
}

typedef struct mapping {
    long http;
    const char *body;
    int code;
    const char *msg;
    const char *reason;
} mapping;

static void test_client__status_errors_map_to_codes_with_messages(void **state)
{
    static const mapping cases[] = {
        {404,
         "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
         "\"widgets.example.com \\\"a\\\" not found\",\"reason\":\"NotFound\",\"details\":{"
         "\"name\":\"a\",\"group\":\"example.com\",\"kind\":\"widgets\"},\"code\":404}",
         KILN_ENOTFOUND, "widgets.example.com \"a\" not found", "NotFound"},
        {409,
         "{\"kind\":\"Status\",\"message\":\"widgets.example.com \\\"a\\\" already exists\","
         "\"reason\":\"AlreadyExists\",\"code\":409}",
         KILN_ECONFLICT, "widgets.example.com \"a\" already exists", "AlreadyExists"},
        {409,
         "{\"kind\":\"Status\",\"message\":\"Operation cannot be fulfilled on widgets.example.com "
         "\\\"a\\\": the object has been modified\",\"reason\":\"Conflict\",\"code\":409}",
         KILN_ECONFLICT,
         "Operation cannot be fulfilled on widgets.example.com \"a\": the object has been "
         "modified",
         "Conflict"},
        {422,
         "{\"kind\":\"Status\",\"message\":\"Widget.example.com \\\"a\\\" is invalid\",\"reason\":"
         "\"Invalid\",\"details\":{\"causes\":[{\"reason\":\"FieldValueInvalid\",\"message\":"
         "\"Invalid value: -1: must be greater than or equal to 0\",\"field\":\"spec.replicas\"},"
         "{\"reason\":\"FieldValueRequired\",\"message\":\"Required value\",\"field\":"
         "\"spec.image\"}]},\"code\":422}",
         KILN_EINVAL,
         "Widget.example.com \"a\" is invalid; spec.replicas: Invalid value: -1: must be greater "
         "than or equal to 0; spec.image: Required value",
         "Invalid"},
        {403,
         "{\"kind\":\"Status\",\"message\":\"pods is forbidden: User \\\"x\\\" cannot list "
         "resource \\\"pods\\\"\",\"reason\":\"Forbidden\",\"code\":403}",
         KILN_EIO, "pods is forbidden: User \"x\" cannot list resource \"pods\"", "Forbidden"},
        {410,
         "{\"kind\":\"Status\",\"message\":\"too old resource version: 1 (9000)\","
         "\"reason\":\"Expired\",\"code\":410}",
         KILN_ECONFLICT, "too old resource version: 1 (9000)", "Expired"},
        {500,
         "{\"kind\":\"Status\",\"message\":\"etcdserver: leader changed\",\"reason\":"
         "\"InternalError\",\"code\":500}",
         KILN_EIO, "etcdserver: leader changed", "InternalError"},
        {504,
         "{\"kind\":\"Status\",\"message\":\"Too large resource version\",\"reason\":"
         "\"Timeout\",\"code\":504}",
         KILN_ETIMEOUT, "Too large resource version", "Timeout"},
        {502, "<html>bad gateway</html>", KILN_EIO, "GET /api/v1/namespaces/ns/pods/p: HTTP 502",
         ""},
        {413, "", KILN_ELIMIT, "GET /api/v1/namespaces/ns/pods/p: HTTP 413", ""},
        {400, "{\"kind\":\"Status\",\"reason\":\"BadRequest\",\"code\":400}", KILN_EINVAL,
         "BadRequest", "BadRequest"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake *f;
        kiln_kube_client_opts o = no_limit();
        kiln_kube_client *c = fake_client(&f, NULL, &o);
        fake_push(f, cases[i].http, cases[i].body);
        json_t *out = NULL;
        kiln_err err = {0};
        kiln_kube_ref ref = {"", "v1", "pods", "ns", "p", NULL};
        assert_int_equal(kiln_kube_get(&out, c, &ref, &err), cases[i].code);
        assert_string_equal(err.msg, cases[i].msg);
        assert_int_equal(kiln_kube_last_status()->http, cases[i].http);
        assert_string_equal(kiln_kube_last_status()->reason, cases[i].reason);
        assert_int_equal(kiln_kube_last_expired(), cases[i].http == 410);
        assert_null(out);
        kiln_kube_client_free(c);
    }
}

static void test_client__retry_after_is_honoured_then_bounded(void **state)
{
    fake_clock clk = {0};
    fake *f;
    kiln_kube_client_opts o = no_limit();
    o.clock = fake_clock_ops(&clk);
    o.max_retries = 3;
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    const char *busy = "{\"kind\":\"Status\",\"message\":\"Too many requests, please try again "
                       "later.\",\"reason\":\"TooManyRequests\",\"code\":429}";
    fake_push_reply(f, (fake_reply){429, busy, 2, {NULL}, 0, NULL});
    fake_push_reply(f, (fake_reply){503, "{}", 1, {NULL}, 0, NULL});
    fake_push(f, 200, "{\"kind\":\"Pod\"}");
    json_t *out = NULL;
    kiln_err err = {0};
    kiln_kube_ref ref = {"", "v1", "pods", "ns", "p", NULL};
    assert_int_equal(kiln_kube_get(&out, c, &ref, &err), 0);
    json_decref(out);
    assert_int_equal(f->nreqs, 3);
    assert_int_equal(clk.nsleeps, 2);
    assert_int_equal(clk.sleeps[0], 2000);
    assert_int_equal(clk.sleeps[1], 1000);

    /* A 429 without Retry-After is not retried (client-go with_retry.go). */
    fake_push(f, 429, busy);
    assert_int_equal(kiln_kube_get(&out, c, &ref, &err), KILN_EIO);
    assert_string_equal(err.msg, "Too many requests, please try again later.");
    assert_int_equal(f->nreqs, 4);

    /* At most max_retries retries, and Retry-After is capped. */
    for (int i = 0; i < 4; i++)
        fake_push_reply(f, (fake_reply){429, busy, 3600, {NULL}, 0, NULL});
    clk.nsleeps = 0;
    assert_int_equal(kiln_kube_get(&out, c, &ref, &err), KILN_EIO);
    assert_int_equal(f->nreqs, 8);
    assert_int_equal(clk.nsleeps, 3);
    assert_int_equal(clk.sleeps[0], 60000);
    assert_int_equal(kiln_kube_last_status()->http, 429);
    assert_int_equal(kiln_kube_last_status()->retry_after_s, 3600);

    kiln_kube_metric m[8];
    size_t n = kiln_kube_client_metrics(c, m, 8);
    assert_int_equal(n, 3);
    assert_string_equal(m[0].method, "GET");
    assert_string_equal(m[0].code, "200");
    assert_int_equal(m[0].count, 1);
    assert_string_equal(m[1].code, "429");
    assert_int_equal(m[1].count, 6);
    assert_string_equal(m[2].code, "503");
    assert_int_equal(m[2].count, 1);
    kiln_kube_client_free(c);
}

static void test_client__ratelimit_token_bucket(void **state)
{
    kiln_kube_ratelimit rl;
    kiln_kube_ratelimit_init(&rl, 5, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(kiln_kube_ratelimit_reserve(&rl, 1000), 0);
    /* The 11th within the same instant owes one token at 5 qps: 200 ms; the
     * 12th queues behind it. */
    assert_int_equal(kiln_kube_ratelimit_reserve(&rl, 1000), 200);
    assert_int_equal(kiln_kube_ratelimit_reserve(&rl, 1000), 400);
    /* After 2 s the debt (2 tokens) is repaid and 8 more accrued. */
    for (int i = 0; i < 8; i++)
        assert_int_equal(kiln_kube_ratelimit_reserve(&rl, 3000), 0);
    assert_int_equal(kiln_kube_ratelimit_reserve(&rl, 3000), 200);
    /* Never more than burst banked. */
    kiln_kube_ratelimit_init(&rl, 100, 2);
    assert_int_equal(kiln_kube_ratelimit_reserve(&rl, 0), 0);
    assert_int_equal(kiln_kube_ratelimit_reserve(&rl, 1000000), 0);
    assert_int_equal(kiln_kube_ratelimit_reserve(&rl, 1000000), 0);
    assert_int_equal(kiln_kube_ratelimit_reserve(&rl, 1000000), 10);
    /* Negative qps disables limiting. */
    kiln_kube_ratelimit_init(&rl, -1, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(kiln_kube_ratelimit_reserve(&rl, 0), 0);
}

static void test_client__default_rate_limit_is_5_qps_burst_10(void **state)
{
    fake_clock clk = {.now_ms = 5000};
    fake *f;
    kiln_kube_client_opts o = {0};
    o.clock = fake_clock_ops(&clk);
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    for (int i = 0; i < 12; i++)
        fake_push(f, 200, "{}");
    kiln_kube_ref ref = {"", "v1", "pods", "ns", "p", NULL};
    for (int i = 0; i < 12; i++) {
        json_t *out = NULL;
        kiln_err err = {0};
        assert_int_equal(kiln_kube_get(&out, c, &ref, &err), 0);
        json_decref(out);
    }
    /* Ten go at once; the 11th and 12th wait 200 ms each (sleeping advances
     * the fake clock, which refills the bucket). */
    assert_int_equal(clk.nsleeps, 2);
    assert_int_equal(clk.sleeps[0], 200);
    assert_int_equal(clk.sleeps[1], 200);
    kiln_kube_client_free(c);
}

static void test_client__transport_failure_counts_as_error(void **state)
{
    fake *f;
    kiln_kube_client_opts o = no_limit();
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    fake_push_reply(f, (fake_reply){0, NULL, -1, {NULL}, KILN_EIO, NULL});
    json_t *out = NULL;
    kiln_err err = {0};
    kiln_kube_ref ref = {"", "v1", "pods", "ns", "p", NULL};
    assert_int_equal(kiln_kube_get(&out, c, &ref, &err), KILN_EIO);
    assert_string_equal(err.msg, "fake: connection refused");
    assert_int_equal(kiln_kube_last_status()->http, 0);
    kiln_kube_metric m[2];
    assert_int_equal(kiln_kube_client_metrics(c, m, 2), 1);
    assert_string_equal(m[0].code, "<error>");
    kiln_kube_client_free(c);
}

static void test_client__body_over_limit_is_elimit(void **state)
{
    fake *f;
    kiln_kube_client_opts o = no_limit();
    o.max_body = 16;
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    fake_push(f, 200, "{\"kind\":\"ConfigMap\",\"data\":{\"a\":\"bbbbbbbbbbbbbbbb\"}}");
    json_t *out = NULL;
    kiln_err err = {0};
    kiln_kube_ref ref = {"", "v1", "configmaps", "ns", "a", NULL};
    assert_int_equal(kiln_kube_get(&out, c, &ref, &err), KILN_ELIMIT);
    assert_string_equal(err.msg, "buffer limit of 16 bytes exceeded");
    kiln_kube_client_free(c);
}

/* ------------------------------------------------------------------------ */
/* libcurl against a loopback server                                          */

static kiln_kube_client *curl_client(int port, const char *token)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    kiln_kube_config *cfg = kiln_kube_config_new(url);
    cfg->token = token ? kiln_xstrdup(token) : NULL;
    kiln_kube_client_opts o = no_limit();
    o.timeout_ms = 5000;
    kiln_kube_client *c = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_client_new_curl(&c, cfg, &o, &err), 0);
    return c;
}

static void test_client__curl_reuses_connection_and_maps_status(void **state)
{
    loop_server s = {0};
    const char *json = "Content-Type: application/json\r\n";
    loop_add(&s, "200 OK", json, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"}}");
    loop_add(&s, "404 Not Found", json,
             "{\"kind\":\"Status\",\"message\":\"pods \\\"q\\\" not found\",\"reason\":"
             "\"NotFound\"}");
    loop_add(&s, "201 Created", json, "{}");
    loop_start(&s);
    kiln_kube_client *c = curl_client(s.port, "tok-123");
    json_t *out = NULL;
    kiln_err err = {0};
    kiln_kube_ref ref = {"", "v1", "pods", "ns", "p", NULL};
    assert_int_equal(kiln_kube_get(&out, c, &ref, &err), 0);
    assert_string_equal(kiln_json_get_string(out, "metadata.name"), "p");
    json_decref(out);
    ref.name = "q";
    assert_int_equal(kiln_kube_get(&out, c, &ref, &err), KILN_ENOTFOUND);
    assert_string_equal(err.msg, "pods \"q\" not found");
    json_t *obj = parse("{\"metadata\":{\"name\":\"r\"}}");
    assert_int_equal(kiln_kube_apply(&out, c, &ref, obj, "kiln", false, &err), 0);
    json_decref(out);
    json_decref(obj);
    kiln_kube_client_free(c);
    loop_stop(&s);
    assert_int_equal(s.nrequests, 3);
    assert_int_equal(s.connections, 1);
    assert_non_null(strstr(s.requests[0], "GET /api/v1/namespaces/ns/pods/p HTTP/1.1\r\n"));
    assert_non_null(strstr(s.requests[0], "\r\nAuthorization: Bearer tok-123\r\n"));
    assert_non_null(strstr(s.requests[0], "\r\nAccept: application/json\r\n"));
    assert_non_null(strstr(s.requests[0], "\r\nUser-Agent: kiln/"));
    assert_non_null(
        strstr(s.requests[2], "PATCH /api/v1/namespaces/ns/pods/q?fieldManager=kiln HTTP/1.1"));
    assert_non_null(strstr(s.requests[2], "\r\nContent-Type: application/apply-patch+yaml\r\n"));
    assert_non_null(strstr(s.requests[2], "\r\n\r\n{\"metadata\":{\"name\":\"r\"}}"));
}

static void test_client__curl_retry_after_header(void **state)
{
    loop_server s = {0};
    loop_add(&s, "429 Too Many Requests", "Retry-After: 0\r\n", "{}");
    loop_add(&s, "200 OK", NULL, "{\"kind\":\"Pod\"}");
    loop_start(&s);
    kiln_kube_client *c = curl_client(s.port, NULL);
    json_t *out = NULL;
    kiln_err err = {0};
    kiln_kube_ref ref = {"", "v1", "pods", "ns", "p", NULL};
    assert_int_equal(kiln_kube_get(&out, c, &ref, &err), 0);
    assert_string_equal(kiln_json_get_string(out, "kind"), "Pod");
    json_decref(out);
    kiln_kube_metric m[4];
    assert_int_equal(kiln_kube_client_metrics(c, m, 4), 2);
    assert_string_equal(m[1].code, "429");
    kiln_kube_client_free(c);
    loop_stop(&s);
    assert_int_equal(s.nrequests, 2);
    assert_null(strstr(s.requests[0], "Authorization:"));
    assert_null(strstr(s.requests[0], "Impersonate-"));
}

static void test_client__curl_sends_impersonation_headers(void **state)
{
    loop_server s = {0};
    loop_add(&s, "200 OK", NULL, "{}");
    loop_start(&s);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
    kiln_kube_config *cfg = kiln_kube_config_new(url);
    cfg->impersonate = kiln_xcalloc(3, sizeof(char *));
    cfg->impersonate[0] = kiln_xstrdup("Impersonate-User: jane");
    cfg->impersonate[1] = kiln_xstrdup("Impersonate-Group: devs");
    kiln_kube_client_opts o = no_limit();
    kiln_kube_client *c = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_client_new_curl(&c, cfg, &o, &err), 0);
    json_t *out = NULL;
    kiln_kube_ref ref = {"", "v1", "pods", "ns", "p", NULL};
    assert_int_equal(kiln_kube_get(&out, c, &ref, &err), 0);
    json_decref(out);
    kiln_kube_client_free(c);
    loop_stop(&s);
    assert_non_null(strstr(s.requests[0], "\r\nImpersonate-User: jane\r\n"));
    assert_non_null(strstr(s.requests[0], "\r\nImpersonate-Group: devs\r\n"));
}

static void test_client__curl_connection_refused_is_eio(void **state)
{
    /* Bind then close to get a port nobody listens on. */
    loop_server s = {0};
    s.nresponses = 0;
    loop_start(&s);
    int port = s.port;
    loop_stop(&s);
    kiln_kube_client *c = curl_client(port, NULL);
    json_t *out = NULL;
    kiln_err err = {0};
    kiln_kube_ref ref = {"", "v1", "pods", "ns", "p", NULL};
    assert_int_equal(kiln_kube_get(&out, c, &ref, &err), KILN_EIO);
    char prefix[96];
    snprintf(prefix, sizeof(prefix), "GET http://127.0.0.1:%d/api/v1/namespaces/ns/pods/p: ", port);
    assert_memory_equal(err.msg, prefix, strlen(prefix));
    kiln_kube_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client__paths_for_core_and_groups),
        cmocka_unit_test(test_client__get_sends_accept_and_bearer),
        cmocka_unit_test(test_client__list_follows_continue_without_resource_version),
        cmocka_unit_test(test_client__list_expired_continue_is_conflict_and_expired),
        cmocka_unit_test(test_client__list_item_bound_is_elimit),
        cmocka_unit_test(test_client__writes_use_exact_content_types_and_queries),
        cmocka_unit_test(test_client__write_mistakes_fail_before_sending),
        cmocka_unit_test(test_client__delete_sends_options_in_body),
        cmocka_unit_test(test_client__status_errors_map_to_codes_with_messages),
        cmocka_unit_test(test_client__retry_after_is_honoured_then_bounded),
        cmocka_unit_test(test_client__ratelimit_token_bucket),
        cmocka_unit_test(test_client__default_rate_limit_is_5_qps_burst_10),
        cmocka_unit_test(test_client__transport_failure_counts_as_error),
        cmocka_unit_test(test_client__body_over_limit_is_elimit),
        cmocka_unit_test(test_client__curl_reuses_connection_and_maps_status),
        cmocka_unit_test(test_client__curl_retry_after_header),
        cmocka_unit_test(test_client__curl_connection_refused_is_eio),
        cmocka_unit_test(test_client__curl_sends_impersonation_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
