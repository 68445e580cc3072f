#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/json.h"
#include "kube/informer.h"
#include "kube/selector.h"
#include "kube/watch.h"
#include "tests/kube/fake.h"

/* Collected events as "TYPE name rv" lines. */
typedef struct seen {
    char log[4096];
    size_t n;
    int stop_after; /* stop with KILN_ECONFLICT after this many; 0: never */
} seen;

static int record(void *ctx, kiln_kube_event_type type, json_t *obj, kiln_err *err)
{
    seen *s = ctx;
    const char *name = kiln_json_get_string(obj, "metadata.name");
    const char *rv = kiln_json_get_string(obj, "metadata.resourceVersion");
    size_t len = strlen(s->log);
    snprintf(s->log + len, sizeof(s->log) - len, "%s %s %s\n", kiln_kube_event_name(type),
             name ? name : "-", rv ? rv : "-");
    s->n++;
    if (s->stop_after && (int)s->n == s->stop_after)
        return kiln_err_set(err, KILN_ECONFLICT, "stopped by handler");
    return 0;
}

static const char *events =
    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"}}}\n"
    "\n"
    "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"2\"}}}"
    "\r\n"
    "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"3\"}}}\n"
    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"resourceVersion\":\"9\"}}"
    "}\n";

static const char *events_log = "ADDED a 1\nMODIFIED a 2\nDELETED a 3\nBOOKMARK - 9\n";

static void test_watch__decoder_one_chunk(void **state)
{
    seen s = {0};
    kiln_kube_watch_decoder d;
    kiln_err err = {0};
    kiln_kube_watch_decoder_init(&d, 0, record, &s);
    assert_int_equal(kiln_kube_watch_decoder_feed(&d, events, strlen(events), &err), 0);
    assert_int_equal(kiln_kube_watch_decoder_finish(&d, &err), 0);
    assert_string_equal(s.log, events_log);
    assert_int_equal(d.events, 4);
    kiln_kube_watch_decoder_free(&d);
}

static void test_watch__decoder_split_at_every_byte(void **state)
{
    for (size_t step = 1; step <= 7; step++) {
        seen s = {0};
        kiln_kube_watch_decoder d;
        kiln_err err = {0};
        kiln_kube_watch_decoder_init(&d, 256, record, &s);
        size_t n = strlen(events);
        for (size_t i = 0; i < n; i += step) {
            size_t k = n - i < step ? n - i : step;
            assert_int_equal(kiln_kube_watch_decoder_feed(&d, events + i, k, &err), 0);
        }
        assert_int_equal(kiln_kube_watch_decoder_finish(&d, &err), 0);
        assert_string_equal(s.log, events_log);
        kiln_kube_watch_decoder_free(&d);
    }
}

static void test_watch__decoder_last_event_without_newline(void **state)
{
    seen s = {0};
    kiln_kube_watch_decoder d;
    kiln_err err = {0};
    const char *one = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"z\"}}}";
    kiln_kube_watch_decoder_init(&d, 0, record, &s);
    assert_int_equal(kiln_kube_watch_decoder_feed(&d, one, strlen(one), &err), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(kiln_kube_watch_decoder_finish(&d, &err), 0);
    assert_string_equal(s.log, "ADDED z -\n");
    kiln_kube_watch_decoder_free(&d);
}

static void test_watch__decoder_oversize_line_is_elimit(void **state)
{
    char big[200];
    memset(big, ' ', sizeof(big));
    memcpy(big, "{\"type\":\"ADDED\",\"object\":{}}", 28);
    big[sizeof(big) - 1] = '\n';
    /* Whole line in one chunk (no copy path) and split (buffered path). */
    for (int split = 0; split < 2; split++) {
        seen s = {0};
        kiln_kube_watch_decoder d;
        kiln_err err = {0};
        kiln_kube_watch_decoder_init(&d, 64, record, &s);
        int rc;
        if (split) {
            rc = kiln_kube_watch_decoder_feed(&d, big, 50, &err);
            assert_int_equal(rc, 0);
            rc = kiln_kube_watch_decoder_feed(&d, big + 50, sizeof(big) - 50, &err);
        } else {
            rc = kiln_kube_watch_decoder_feed(&d, big, sizeof(big), &err);
        }
        assert_int_equal(rc, KILN_ELIMIT);
        assert_string_equal(err.msg, "watch event 1 is larger than 64 bytes");
        assert_int_equal(s.n, 0);
        kiln_kube_watch_decoder_free(&d);
    }
}

static void test_watch__decoder_rejects_malformed_events(void **state)
{
    struct {
        const char *line;
        const char *msg;
    } cases[] = {
        {"{\"type\":\"RENAMED\",\"object\":{}}\n", "watch event 1: unknown type \"RENAMED\""},
        {"{\"type\":\"ADDED\"}\n", "watch event 1: ADDED without an object"},
        {"{\"type\":\"ADDED\",\"object\":{}}\n{\"type\":\"DELETED\",\"object\":[]}\n",
         "watch event 2: DELETED without an object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        seen s = {0};
        kiln_kube_watch_decoder d;
        kiln_err err = {0};
        kiln_kube_watch_decoder_init(&d, 0, record, &s);
        assert_int_equal(
            kiln_kube_watch_decoder_feed(&d, cases[i].line, strlen(cases[i].line), &err),
            KILN_EINVAL);
        assert_string_equal(err.msg, cases[i].msg);
        kiln_kube_watch_decoder_free(&d);
    }
    seen s = {0};
    kiln_kube_watch_decoder d;
    kiln_err err = {0};
    kiln_kube_watch_decoder_init(&d, 0, record, &s);
    assert_int_equal(kiln_kube_watch_decoder_feed(&d, "{not json}\n", 11, &err), KILN_EINVAL);
    assert_memory_equal(err.msg, "watch event 1: ", 15);
    kiln_kube_watch_decoder_free(&d);
}

static void test_watch__error_event_410_is_expired(void **state)
{
    fake *f;
    kiln_kube_client_opts o = {.qps = -1};
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    fake_reply r = {200, NULL, -1, {NULL}, 0, NULL};
    r.chunks[0] = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVer";
    r.chunks[1] =
        "sion\":\"7\"}}}\n{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion"
        "\":\"v1\",\"status\":\"Failure\",\"message\":\"too old resource version: 1 "
        "(9000)\",\"reason\":\"Expired\",\"code\":410}}\n";
    fake_push_reply(f, r);
    seen s = {0};
    kiln_err err = {0};
    kiln_kube_ref ref = {"kiln.dev", "v1alpha1", "webapps", "team a", NULL, NULL};
    kiln_kube_watch_opts wo = {.label_selector = "kiln.dev/rgd=web",
                               .resource_version = "1",
                               .allow_bookmarks = true,
                               .timeout_s = 300};
    assert_int_equal(kiln_kube_watch(c, &ref, &wo, record, &s, NULL, &err), KILN_ECONFLICT);
    assert_string_equal(err.msg, "too old resource version: 1 (9000)");
    assert_true(kiln_kube_last_expired());
    assert_int_equal(kiln_kube_last_status()->http, 410);
    assert_string_equal(s.log, "ADDED a 7\n");
    assert_string_equal(f->reqs[0].path,
                        "/apis/kiln.dev/v1alpha1/namespaces/team%20a/webapps?watch=true&"
                        "labelSelector=kiln.dev%2Frgd%3Dweb&resourceVersion=1&"
                        "allowWatchBookmarks=true&timeoutSeconds=300");
    assert_true(f->reqs[0].stream);

    /* A non-2xx answer to the watch request is mapped the same way. */
    fake_push(f, 410,
              "{\"kind\":\"Status\",\"message\":\"gone\",\"reason\":\"Gone\",\"code\":410}");
    assert_int_equal(kiln_kube_watch(c, &ref, &wo, record, &s, NULL, &err), KILN_ECONFLICT);
    assert_string_equal(err.msg, "gone");
    assert_true(kiln_kube_last_expired());

    /* A handler error stops the stream with its own code. */
    s = (seen){.stop_after = 1};
    fake_reply two = {200, events, -1, {NULL}, 0, NULL};
    fake_push_reply(f, two);
    assert_int_equal(kiln_kube_watch(c, &ref, &wo, record, &s, NULL, &err), KILN_ECONFLICT);
    assert_string_equal(err.msg, "stopped by handler");
    assert_int_equal(s.n, 1);
    kiln_kube_client_free(c);
}

static void test_watch__curl_chunked_stream(void **state)
{
    loop_server srv = {0};
    /* Chunk boundaries fall inside events, as they do on real servers. */
    const char *e1 =
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion"
        "\":\"1\"}}}\n{\"type\":\"MODI";
    const char *e2 = "FIED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"2\"}}}"
                     "\n";
    char *resp = kiln_xasprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n%zx\r\n%s\r\n0\r\n"
                                "\r\n",
                                strlen(e1), e1, strlen(e2), e2);
    srv.owned[0] = resp;
    srv.responses[0] = resp;
    srv.nresponses = 1;
    loop_start(&srv);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
    kiln_kube_config *cfg = kiln_kube_config_new(url);
    kiln_kube_client_opts o = {.qps = -1};
    kiln_kube_client *c = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_client_new_curl(&c, cfg, &o, &err), 0);
    seen s = {0};
    kiln_kube_ref ref = {"", "v1", "configmaps", NULL, NULL, NULL};
    kiln_kube_watch_opts wo = {.resource_version = "0", .timeout_s = 5};
    assert_int_equal(kiln_kube_watch(c, &ref, &wo, record, &s, NULL, &err), 0);
    assert_string_equal(s.log, "ADDED a 1\nMODIFIED a 2\n");
    kiln_kube_client_free(c);
    loop_stop(&srv);
    assert_non_null(strstr(
        srv.requests[0], "GET /api/v1/configmaps?watch=true&resourceVersion=0&timeoutSeconds=5 "));
}

/* ------------------------------------------------------------------------ */
/* Informer                                                                   */

typedef struct handler_log {
    pthread_mutex_t mu;
    char text[4096];
} handler_log;

static void hl_add(handler_log *h, const char *what, const json_t *obj)
{
    pthread_mutex_lock(&h->mu);
    size_t len = strlen(h->text);
    snprintf(h->text + len, sizeof(h->text) - len, "%s %s\n", what,
             kiln_json_get_string(obj, "metadata.name"));
    pthread_mutex_unlock(&h->mu);
}

static void on_add(void *ctx, json_t *obj)
{
    hl_add(ctx, "add", obj);
}

static void on_update(void *ctx, json_t *old_obj, json_t *obj)
{
    assert_string_equal(kiln_json_get_string(old_obj, "metadata.name"),
                        kiln_json_get_string(obj, "metadata.name"));
    hl_add(ctx, "update", obj);
}

static void on_delete(void *ctx, json_t *obj)
{
    hl_add(ctx, "delete", obj);
}

static void wait_for_requests(fake *f, size_t n)
{
    for (int i = 0; i < 5000 && fake_nreqs(f) < n; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_true(fake_nreqs(f) >= n);
}

static char *names_of(json_t *arr)
{
    char buf[512] = "";
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        size_t len = strlen(buf);
        const char *ns = kiln_json_get_string(o, "metadata.namespace");
        snprintf(buf + len, sizeof(buf) - len, "%s%s%s%s", i ? " " : "", ns ? ns : "",
                 ns ? "/" : "", kiln_json_get_string(o, "metadata.name"));
    }
    return kiln_xstrdup(buf);
}

#define OBJ(name, rv, labels)                                                                      \
    "{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"ns\",\"resourceVersion\":\"" rv          \
    "\",\"labels\":" labels "}}"

static void test_watch__informer_lists_watches_bookmarks_and_relists_on_410(void **state)
{
    fake *f;
    kiln_kube_client_opts o = {.qps = -1};
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    handler_log hl = {.mu = PTHREAD_MUTEX_INITIALIZER};
    fake_push(f, 200,
              "{\"kind\":\"DeploymentList\",\"apiVersion\":\"apps/v1\",\"metadata\":{"
              "\"resourceVersion\":\"10\"},\"items\":[" OBJ("a", "5", "{\"app\":\"web\"}") "," OBJ(
                  "b", "6", "{\"app\":\"web\"}") "]}");
    fake_reply w1 = {200, NULL, -1, {NULL}, 0, NULL};
    w1.chunks[0] = "{\"type\":\"ADDED\",\"object\":" OBJ("c", "11",
                                                         "{\"app\":\"web\",\"tier\":"
                                                         "\"db\"}") "}\n{\"type\":"
                                                                    "\"MODIFIED\","
                                                                    "\"object\":";
    w1.chunks[1] = OBJ(
        "a", "12", "{\"app\":\"web\",\"tier\":\"db\"}") "}\n{\"type\":\"DELETED\","
                                                        "\"object\":" OBJ("b", "13",
                                                                          "{\"app\":\"web\"}") "}"
                                                                                               "\n";
    w1.chunks[2] = "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Deployment\",\"apiVersion\":"
                   "\"apps/v1\",\"metadata\":{\"resourceVersion\":\"20\"}}}\n";
    fake_push_reply(f, w1);
    fake_reply w2 = {200, NULL, -1, {NULL}, 0, NULL};
    w2.chunks[0] = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"message\":\"too old "
                   "resource version: 20 (25)\",\"reason\":\"Expired\",\"code\":410}}\n";
    fake_push_reply(f, w2);
    fake_push(f, 200,
              "{\"kind\":\"DeploymentList\",\"apiVersion\":\"apps/v1\",\"metadata\":{"
              "\"resourceVersion\":\"30\"},\"items\":[" OBJ("a", "25", "{\"app\":\"web\"}") "," OBJ(
                  "d", "26", "{\"app\":\"web\",\"tier\":\"db\"}") "]}");

    kiln_kube_informer_opts io = {
        .ref = {"apps", "v1", "deployments", "ns", NULL, NULL},
        .label_selector = "app=web",
        .min_watch_timeout_s = 1,
        .backoff_initial_ms = 1,
        .backoff_max_ms = 2,
        .handlers = {on_add, on_update, on_delete, &hl},
    };
    kiln_kube_informer *inf = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_informer_new(&inf, c, &io, &err), 0);
    assert_false(kiln_kube_informer_synced(inf));
    assert_int_equal(kiln_kube_informer_start(inf, &err), 0);
    assert_true(kiln_kube_informer_wait_synced(inf, 5000));
    wait_for_requests(f, 5);
    /* The fifth request is the watch from the relist's resourceVersion; it
     * hangs (nothing scripted) until stop. */
    kiln_kube_informer_stop(inf);

    assert_string_equal(f->reqs[0].path, "/apis/apps/v1/namespaces/ns/deployments?labelSelector="
                                         "app%3Dweb&limit=500&resourceVersion=0");
    assert_string_equal(f->reqs[1].path, "/apis/apps/v1/namespaces/ns/deployments?watch=true&"
                                         "labelSelector=app%3Dweb&resourceVersion=10&"
                                         "allowWatchBookmarks=true&timeoutSeconds=1");
    assert_string_equal(f->reqs[2].path, "/apis/apps/v1/namespaces/ns/deployments?watch=true&"
                                         "labelSelector=app%3Dweb&resourceVersion=20&"
                                         "allowWatchBookmarks=true&timeoutSeconds=1");
    /* After 410 the relist is a consistent read: no resourceVersion. */
    assert_string_equal(f->reqs[3].path, "/apis/apps/v1/namespaces/ns/deployments?labelSelector="
                                         "app%3Dweb&limit=500");
    assert_string_equal(f->reqs[4].path, "/apis/apps/v1/namespaces/ns/deployments?watch=true&"
                                         "labelSelector=app%3Dweb&resourceVersion=30&"
                                         "allowWatchBookmarks=true&timeoutSeconds=1");
    assert_int_equal(fake_nreqs(f), 5);

    assert_string_equal(hl.text, "add a\nadd b\n"              /* first list */
                                 "add c\nupdate a\ndelete b\n" /* watch */
                                 "delete c\nupdate a\nadd d\n" /* relist after 410 */);
    json_t *all = NULL;
    assert_int_equal(kiln_kube_informer_list(&all, inf, NULL, &err), 0);
    char *names = names_of(all);
    assert_string_equal(names, "ns/a ns/d");
    kiln_xfree(names);
    /* Items of a typed list get the list's kind and apiVersion. */
    assert_string_equal(kiln_json_get_string(json_array_get(all, 0), "kind"), "Deployment");
    assert_string_equal(kiln_json_get_string(json_array_get(all, 0), "apiVersion"), "apps/v1");
    json_decref(all);
    assert_int_equal(kiln_kube_informer_list(&all, inf, "tier in (db,cache)", &err), 0);
    names = names_of(all);
    assert_string_equal(names, "ns/d");
    kiln_xfree(names);
    json_decref(all);
    json_t *a = kiln_kube_informer_get(inf, "ns", "a");
    assert_string_equal(kiln_json_get_string(a, "metadata.resourceVersion"), "25");
    json_decref(a);
    assert_null(kiln_kube_informer_get(inf, "ns", "c"));
    assert_null(kiln_kube_informer_get(inf, "other", "a"));
    char rv[32];
    kiln_kube_informer_resource_version(inf, rv, sizeof(rv));
    assert_string_equal(rv, "30");
    kiln_kube_informer_stats st;
    kiln_kube_informer_get_stats(inf, &st);
    assert_int_equal(st.lists, 2);
    assert_int_equal(st.watches, 3);
    assert_int_equal(st.relists_expired, 1);
    assert_int_equal(st.failures, 1);
    assert_int_equal(kiln_kube_informer_list(&all, inf, "tier in (", &err), KILN_EINVAL);
    assert_string_equal(err.msg, "label selector \"tier in (\": expected ',' or ')'");
    kiln_kube_informer_free(inf);
    kiln_kube_client_free(c);
}

static void test_watch__informer_backs_off_and_relists_from_last_rv(void **state)
{
    fake *f;
    kiln_kube_client_opts o = {.qps = -1};
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    handler_log hl = {.mu = PTHREAD_MUTEX_INITIALIZER};
    /* First list fails outright (server down), then succeeds. */
    fake_push_reply(f, (fake_reply){0, NULL, -1, {NULL}, KILN_EIO, NULL});
    fake_push(f, 200,
              "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":{"
              "\"resourceVersion\":\"5\"},\"items\":[{\"metadata\":{\"name\":\"x\","
              "\"resourceVersion\":\"4\"}}]}");
    /* The watch connection drops: relist from the last resourceVersion. */
    fake_push_reply(f, (fake_reply){0, NULL, -1, {NULL}, KILN_EIO, NULL});
    fake_push(f, 200,
              "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":{"
              "\"resourceVersion\":\"8\"},\"items\":[{\"metadata\":{\"name\":\"x\","
              "\"resourceVersion\":\"4\"}},"
              "{\"metadata\":{\"name\":\"y\",\"resourceVersion\":\"7\"}}]}");
    /* A watch that ends at once without events is a failure, not a loop. */
    fake_push(f, 200, "");
    fake_push(f, 200,
              "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":{"
              "\"resourceVersion\":\"8\"},\"items\":[{\"metadata\":{\"name\":\"x\","
              "\"resourceVersion\":\"4\"}},"
              "{\"metadata\":{\"name\":\"y\",\"resourceVersion\":\"7\"}}]}");
    kiln_kube_informer_opts io = {
        .ref = {"", "v1", "configmaps", NULL, NULL, NULL},
        .page_size = 2,
        .min_watch_timeout_s = 60,
        .backoff_initial_ms = 1,
        .backoff_max_ms = 4,
        .handlers = {on_add, on_update, on_delete, &hl},
    };
    kiln_kube_informer *inf = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_informer_new(&inf, c, &io, &err), 0);
    assert_int_equal(kiln_kube_informer_start(inf, &err), 0);
    wait_for_requests(f, 7);
    kiln_kube_informer_stop(inf);
    assert_string_equal(f->reqs[0].path, "/api/v1/configmaps?limit=2&resourceVersion=0");
    assert_string_equal(f->reqs[1].path, "/api/v1/configmaps?limit=2&resourceVersion=0");
    assert_memory_equal(f->reqs[2].path, "/api/v1/configmaps?watch=true&resourceVersion=5&", 48);
    assert_string_equal(f->reqs[3].path, "/api/v1/configmaps?limit=2&resourceVersion=5");
    assert_string_equal(f->reqs[5].path, "/api/v1/configmaps?limit=2&resourceVersion=8");
    assert_string_equal(hl.text, "add x\nadd y\n");
    assert_int_equal(kiln_kube_informer_len(inf), 2);
    json_t *x = kiln_kube_informer_get(inf, NULL, "x");
    assert_string_equal(kiln_json_get_string(x, "kind"), "ConfigMap");
    json_decref(x);
    kiln_kube_informer_stats st;
    kiln_kube_informer_get_stats(inf, &st);
    assert_int_equal(st.failures, 3);
    assert_int_equal(st.lists, 3);
    assert_int_equal(st.relists_expired, 0);
    kiln_kube_informer_free(inf);
    kiln_kube_client_free(c);
}

/* Handlers that record the whole object they are given, canonical. */
static void hl_add_json(handler_log *h, const char *what, const json_t *obj)
{
    char *text = kiln_json_canonical(obj);
    pthread_mutex_lock(&h->mu);
    size_t len = strlen(h->text);
    snprintf(h->text + len, sizeof(h->text) - len, "%s %s\n", what, text);
    pthread_mutex_unlock(&h->mu);
    kiln_xfree(text);
}

static void on_add_json(void *ctx, json_t *obj)
{
    hl_add_json(ctx, "add", obj);
}

static void on_update_json(void *ctx, json_t *old_obj, json_t *obj)
{
    hl_add_json(ctx, "update-old", old_obj);
    hl_add_json(ctx, "update", obj);
}

static void on_delete_json(void *ctx, json_t *obj)
{
    hl_add_json(ctx, "delete", obj);
}

#define MF                                                                                         \
    "\"managedFields\":[{\"manager\":\"kubectl\",\"operation\":\"Apply\","                         \
    "\"fieldsV1\":{\"f:data\":{\"f:k\":{}}}}]"

static void test_watch__informer_strips_managed_fields_before_cache_and_handlers(void **state)
{
    fake *f;
    kiln_kube_client_opts o = {.qps = -1};
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    handler_log hl = {.mu = PTHREAD_MUTEX_INITIALIZER};
    fake_push(f, 200,
              "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":{"
              "\"resourceVersion\":\"5\"},\"items\":["
              "{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\",\"resourceVersion\":\"3\","
              "\"annotations\":{\"x\":\"1\"}," MF "},\"data\":{\"k\":\"v\"}},"
              "{\"metadata\":{\"name\":\"b\",\"namespace\":\"ns\",\"resourceVersion\":\"4\"," MF
              "}}]}");
    fake_reply w = {200, NULL, -1, {NULL}, 0, NULL};
    w.chunks[0] = "{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"ConfigMap\",\"apiVersion\":"
                  "\"v1\",\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\",\"resourceVersion\":"
                  "\"6\"," MF "},\"data\":{\"k\":\"w\"}}}\n"
                  "{\"type\":\"DELETED\",\"object\":{\"kind\":\"ConfigMap\",\"apiVersion\":"
                  "\"v1\",\"metadata\":{\"name\":\"b\",\"namespace\":\"ns\",\"resourceVersion\":"
                  "\"7\"," MF "}}}\n"
                  "{\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\",\"apiVersion\":"
                  "\"v1\",\"metadata\":{\"name\":\"c\",\"namespace\":\"ns\",\"resourceVersion\":"
                  "\"8\"," MF "}}}\n";
    fake_push_reply(f, w);
    kiln_kube_informer_opts io = {
        .ref = {"", "v1", "configmaps", "ns", NULL, NULL},
        .min_watch_timeout_s = 1,
        .strip_managed_fields = true,
        .handlers = {on_add_json, on_update_json, on_delete_json, &hl},
    };
    kiln_kube_informer *inf = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_informer_new(&inf, c, &io, &err), 0);
    assert_int_equal(kiln_kube_informer_start(inf, &err), 0);
    /* The third request is the next watch, from resourceVersion 8: every
     * event has been handled by then. */
    wait_for_requests(f, 3);
    kiln_kube_informer_stop(inf);
    assert_string_equal(f->reqs[2].path, "/api/v1/namespaces/ns/configmaps?watch=true&"
                                         "resourceVersion=8&allowWatchBookmarks=true&"
                                         "timeoutSeconds=1");

    json_t *all = NULL;
    assert_int_equal(kiln_kube_informer_list(&all, inf, NULL, &err), 0);
    char *text = kiln_json_canonical(all);
    assert_string_equal(
        text, "[{\"apiVersion\":\"v1\",\"data\":{\"k\":\"w\"},\"kind\":\"ConfigMap\",\"metadata\":{"
              "\"name\":\"a\",\"namespace\":\"ns\",\"resourceVersion\":\"6\"}},"
              "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\","
              "\"namespace\":\"ns\",\"resourceVersion\":\"8\"}}]");
    kiln_xfree(text);
    json_decref(all);
    assert_string_equal(
        hl.text,
        "add {\"apiVersion\":\"v1\",\"data\":{\"k\":\"v\"},\"kind\":\"ConfigMap\",\"metadata\":{"
        "\"annotations\":{\"x\":\"1\"},\"name\":\"a\",\"namespace\":\"ns\",\"resourceVersion\":"
        "\"3\"}}\n"
        "add {\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"b\","
        "\"namespace\":\"ns\",\"resourceVersion\":\"4\"}}\n"
        "update-old {\"apiVersion\":\"v1\",\"data\":{\"k\":\"v\"},\"kind\":\"ConfigMap\","
        "\"metadata\":{\"annotations\":{\"x\":\"1\"},\"name\":\"a\",\"namespace\":\"ns\","
        "\"resourceVersion\":\"3\"}}\n"
        "update {\"apiVersion\":\"v1\",\"data\":{\"k\":\"w\"},\"kind\":\"ConfigMap\",\"metadata\":{"
        "\"name\":\"a\",\"namespace\":\"ns\",\"resourceVersion\":\"6\"}}\n"
        "delete {\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"b\","
        "\"namespace\":\"ns\",\"resourceVersion\":\"7\"}}\n"
        "add {\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\","
        "\"namespace\":\"ns\",\"resourceVersion\":\"8\"}}\n");
    kiln_kube_informer_free(inf);

    /* Off by default: the same list is cached as it came. */
    fake_push(f, 200,
              "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":{"
              "\"resourceVersion\":\"5\"},\"items\":["
              "{\"metadata\":{\"name\":\"b\",\"namespace\":\"ns\",\"resourceVersion\":\"4\"," MF
              "}}]}");
    io.strip_managed_fields = false;
    io.handlers = (kiln_kube_informer_handlers){0};
    assert_int_equal(kiln_kube_informer_new(&inf, c, &io, &err), 0);
    assert_int_equal(kiln_kube_informer_start(inf, &err), 0);
    assert_true(kiln_kube_informer_wait_synced(inf, 5000));
    kiln_kube_informer_stop(inf);
    json_t *b = kiln_kube_informer_get(inf, "ns", "b");
    text = kiln_json_canonical(kiln_json_get_path(b, "metadata.managedFields"));
    assert_string_equal(text, "[{\"fieldsV1\":{\"f:data\":{\"f:k\":{}}},\"manager\":\"kubectl\","
                              "\"operation\":\"Apply\"}]");
    kiln_xfree(text);
    json_decref(b);
    kiln_kube_informer_free(inf);
    kiln_kube_client_free(c);
}

static void test_watch__informer_stop_before_sync_and_bad_selector(void **state)
{
    fake *f;
    kiln_kube_client_opts o = {.qps = -1};
    kiln_kube_client *c = fake_client(&f, NULL, &o);
    kiln_kube_informer_opts io = {.ref = {"", "v1", "pods", NULL, NULL, NULL},
                                  .label_selector = "a in b"};
    kiln_kube_informer *inf = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_informer_new(&inf, c, &io, &err), KILN_EINVAL);
    assert_string_equal(err.msg, "label selector \"a in b\": expected '(' after in");
    io.label_selector = NULL;
    io.backoff_initial_ms = 60000; /* the stop must cut the backoff short */
    assert_int_equal(kiln_kube_informer_new(&inf, c, &io, &err), 0);
    assert_int_equal(kiln_kube_informer_start(inf, &err), 0);
    assert_false(kiln_kube_informer_wait_synced(inf, 50));
    kiln_kube_informer_free(inf);
    kiln_kube_client_free(c);
}

static void test_watch__selector_grammar(void **state)
{
    json_t *labels =
        json_loads("{\"app\":\"web\",\"tier\":\"db\",\"kiln.dev/rgd\":\"x\"}", 0, NULL);
    struct {
        const char *sel;
        bool match;
    } cases[] = {
        {"", true},
        {"app=web", true},
        {"app==web", true},
        {"app!=web", false},
        {"app=api", false},
        {"tier in (db, cache)", true},
        {"tier notin (db)", false},
        {"missing notin (db)", true},
        {"missing!=x", true},
        {"kiln.dev/rgd", true},
        {"!kiln.dev/rgd", false},
        {"!missing", true},
        {" app = web , tier in (db) ", true},
        {"app=web,missing", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kiln_kube_selector *sel = NULL;
        kiln_err err = {0};
        assert_int_equal(kiln_kube_selector_parse(&sel, cases[i].sel, &err), 0);
        assert_int_equal(kiln_kube_selector_matches(sel, labels), cases[i].match);
        kiln_kube_selector_free(sel);
    }
    kiln_kube_selector *sel = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_selector_parse(&sel, "app=web,", &err), KILN_EINVAL);
    assert_string_equal(err.msg, "label selector \"app=web,\": trailing ','");
    assert_int_equal(kiln_kube_selector_parse(&sel, "app>1", &err), KILN_EINVAL);
    assert_string_equal(err.msg, "label selector \"app>1\": unexpected \">\" at offset 3");
    json_decref(labels);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch__decoder_one_chunk),
        cmocka_unit_test(test_watch__decoder_split_at_every_byte),
        cmocka_unit_test(test_watch__decoder_last_event_without_newline),
        cmocka_unit_test(test_watch__decoder_oversize_line_is_elimit),
        cmocka_unit_test(test_watch__decoder_rejects_malformed_events),
        cmocka_unit_test(test_watch__error_event_410_is_expired),
        cmocka_unit_test(test_watch__curl_chunked_stream),
        cmocka_unit_test(test_watch__informer_lists_watches_bookmarks_and_relists_on_410),
        cmocka_unit_test(test_watch__informer_backs_off_and_relists_from_last_rv),
        cmocka_unit_test(test_watch__informer_strips_managed_fields_before_cache_and_handlers),
        cmocka_unit_test(test_watch__informer_stop_before_sync_and_bad_selector),
        cmocka_unit_test(test_watch__selector_grammar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
