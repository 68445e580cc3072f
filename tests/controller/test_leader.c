/* tests/controller/test_leader.c: the Lease decision, metrics text and
 * Event documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controller/events.h"
#include "controller/leader.h"
#include "controller/metrics.h"
#include "core/json.h"

static void test_leader__acquire_rules(void **state)
{
    (void)state;
    json_t *spec = json_pack("{s:s, s:i}", "holderIdentity", "other", "leaseDurationSeconds", 15);
    /* Seen changing at t=1000: valid until 16000 on our clock. */
    assert_false(kiln_leader_can_acquire(spec, "me", 1000, 15999));
    assert_true(kiln_leader_can_acquire(spec, "me", 1000, 16000));
    assert_true(kiln_leader_can_acquire(spec, "other", 1000, 1001)); /* renew our own */
    json_object_set_new(spec, "holderIdentity", json_string(""));
    assert_true(kiln_leader_can_acquire(spec, "me", 1000, 1001)); /* released */
    assert_true(kiln_leader_can_acquire(NULL, "me", 0, 0));
    json_decref(spec);
}

static void test_metrics__counters_are_preset_and_counted(void **state)
{
    (void)state;
    kiln_metrics *x = kiln_metrics_new(NULL);
    kiln_metrics_reconcile(x, "instance", "success", 0.004);
    kiln_metrics_reconcile(x, "instance", "error", 2.0);
    kiln_buf b;
    kiln_buf_init(&b, 1 << 20);
    assert_int_equal(kiln_metrics_render(&b, x, NULL), 0);
    assert_non_null(strstr(
        b.data, "controller_runtime_reconcile_total{controller=\"rgd\",result=\"success\"} 0\n"));
    assert_non_null(strstr(
        b.data,
        "controller_runtime_reconcile_total{controller=\"instance\",result=\"success\"} 1\n"));
    assert_non_null(
        strstr(b.data,
               "controller_runtime_reconcile_total{controller=\"instance\",result=\"error\"} 1\n"));
    assert_non_null(strstr(b.data, "controller_runtime_reconcile_time_seconds_bucket{controller="
                                   "\"instance\",le=\"0.005\"} 1\n"));
    assert_non_null(strstr(b.data, "controller_runtime_reconcile_time_seconds_count{controller="
                                   "\"instance\"} 2\n"));
    assert_non_null(strstr(b.data, "leader_election_master_status{name=\"kiln-controller\"} 0\n"));
    kiln_buf_free(&b);
    kiln_metrics_free(x);
}

static void test_events__document_shape(void **state)
{
    (void)state;
    json_t *obj =
        json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}", "apiVersion", "kiln.dev/v1alpha1", "kind",
                  "WebApp", "metadata", "name", "shop", "namespace", "team-a", "uid", "u-1");
    json_t *ev = kiln_events_build(obj, "Normal", "Ready", "IN_PROGRESS -> ACTIVE", "kiln", 0x10LL);
    assert_string_equal(kiln_json_get_string(ev, "metadata.name"), "shop.10");
    assert_string_equal(kiln_json_get_string(ev, "metadata.namespace"), "team-a");
    assert_string_equal(kiln_json_get_string(ev, "involvedObject.uid"), "u-1");
    assert_string_equal(kiln_json_get_string(ev, "involvedObject.kind"), "WebApp");
    assert_string_equal(kiln_json_get_string(ev, "reason"), "Ready");
    assert_string_equal(kiln_json_get_string(ev, "type"), "Normal");
    json_decref(ev);
    /* Cluster-scoped objects' events go to "default". */
    json_object_del(json_object_get(obj, "metadata"), "namespace");
    ev = kiln_events_build(obj, "Warning", "Stalled", "x", "kiln", 1);
    assert_string_equal(kiln_json_get_string(ev, "metadata.namespace"), "default");
    json_decref(ev);
    json_decref(obj);
}

static void test_metrics__bind_address_is_checked(void **state)
{
    (void)state;
    kiln_metrics_server *srv = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_metrics_serve(&srv, NULL, ":99999", true, &err), KILN_EINVAL);
    assert_non_null(strstr(err.msg, "want [host]:port"));
    assert_int_equal(kiln_metrics_serve(&srv, NULL, "example.com:8080", true, &err), KILN_EINVAL);
    assert_non_null(strstr(err.msg, "not an IPv4 address"));
    assert_int_equal(kiln_metrics_serve(&srv, NULL, "", true, &err), KILN_EINVAL);
    assert_null(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leader__acquire_rules),
        cmocka_unit_test(test_metrics__counters_are_preset_and_counted),
        cmocka_unit_test(test_events__document_shape),
        cmocka_unit_test(test_metrics__bind_address_is_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
