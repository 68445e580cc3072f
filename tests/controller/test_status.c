/* tests/controller/test_status.c: kstatus-shaped instance status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controller/status.h"
#include "core/json.h"

#define T1 "2026-01-01T00:00:00Z"
#define T2 "2026-01-01T00:05:00Z"

static const char *cond(const json_t *st, const char *type, const char *field)
{
    return json_string_value(json_object_get(kiln_status_condition(st, type), field));
}

static kiln_status_input ready_input(void)
{
    kiln_status_input in = {.generation = 3, .nodes = 3, .ready = 3};
    return in;
}

static void test_status__ready_instance_is_active(void **state)
{
    (void)state;
    kiln_status_input in = ready_input();
    json_t *st = kiln_status_instance(NULL, &in, T1);
    assert_string_equal(kiln_json_get_string(st, "state"), "ACTIVE");
    assert_int_equal(json_integer_value(json_object_get(st, "observedGeneration")), 3);
    const char *types[] = {"Ready",         "Reconciling",    "Stalled",
                           "GraphResolved", "ResourcesReady", "Validated"};
    const char *want[] = {"True", "False", "False", "True", "True", "True"};
    json_t *conds = json_object_get(st, "conditions");
    assert_int_equal(json_array_size(conds), 6);
    for (size_t i = 0; i < 6; i++) {
        json_t *c = json_array_get(conds, i);
        assert_string_equal(json_string_value(json_object_get(c, "type")), types[i]);
        assert_string_equal(json_string_value(json_object_get(c, "status")), want[i]);
        assert_int_equal(json_integer_value(json_object_get(c, "observedGeneration")), 3);
        assert_string_equal(json_string_value(json_object_get(c, "lastTransitionTime")), T1);
    }
    assert_string_equal(cond(st, "Ready", "message"), "3/3 resources ready");
    json_decref(st);
}

static void test_status__unchanged_status_keeps_transition_times(void **state)
{
    (void)state;
    kiln_status_input in = ready_input();
    json_t *a = kiln_status_instance(NULL, &in, T1);
    json_t *b = kiln_status_instance(a, &in, T2);
    assert_true(kiln_status_equal(a, b));
    assert_string_equal(cond(b, "Ready", "lastTransitionTime"), T1);
    json_decref(a);
    json_decref(b);
}

static void test_status__flip_moves_only_flipped_conditions(void **state)
{
    (void)state;
    kiln_status_input in = ready_input();
    in.ready = 1;
    in.not_ready = "deployment: waiting for readiness";
    json_t *a = kiln_status_instance(NULL, &in, T1);
    assert_string_equal(kiln_json_get_string(a, "state"), "IN_PROGRESS");
    assert_string_equal(cond(a, "Ready", "status"), "False");
    assert_string_equal(cond(a, "Ready", "reason"), "Progressing");
    assert_string_equal(cond(a, "Reconciling", "status"), "True");
    assert_string_equal(cond(a, "Stalled", "status"), "False");
    assert_string_equal(cond(a, "ResourcesReady", "message"), "deployment: waiting for readiness");
    in.ready = 3;
    json_t *b = kiln_status_instance(a, &in, T2);
    assert_false(kiln_status_equal(a, b));
    assert_string_equal(cond(b, "Ready", "lastTransitionTime"), T2);
    assert_string_equal(cond(b, "Reconciling", "lastTransitionTime"), T2);
    assert_string_equal(cond(b, "Stalled", "lastTransitionTime"), T1);
    assert_string_equal(cond(b, "GraphResolved", "lastTransitionTime"), T1);
    json_decref(a);
    json_decref(b);
}

static void test_status__stalled_is_error_not_reconciling(void **state)
{
    (void)state;
    kiln_status_input in = ready_input();
    in.ready = 2;
    in.stalled = "config: spec.resources[0]: bad";
    json_t *st = kiln_status_instance(NULL, &in, T1);
    assert_string_equal(kiln_json_get_string(st, "state"), "ERROR");
    assert_string_equal(cond(st, "Stalled", "status"), "True");
    assert_string_equal(cond(st, "Stalled", "message"), "config: spec.resources[0]: bad");
    assert_string_equal(cond(st, "Reconciling", "status"), "False");
    assert_string_equal(cond(st, "Ready", "status"), "False");
    json_decref(st);
}

static void test_status__graph_error_and_suspend_and_delete(void **state)
{
    (void)state;
    kiln_status_input in = ready_input();
    in.graph_error = "ResourceGraphDefinition x has no accepted graph";
    json_t *st = kiln_status_instance(NULL, &in, T1);
    assert_string_equal(cond(st, "GraphResolved", "status"), "False");
    assert_string_equal(cond(st, "GraphResolved", "reason"), "ResolutionFailed");
    assert_string_equal(cond(st, "Ready", "status"), "False");
    json_decref(st);

    in = ready_input();
    in.suspended = true;
    st = kiln_status_instance(NULL, &in, T1);
    assert_string_equal(cond(st, "ResourcesReady", "reason"), "ReconciliationSuspended");
    assert_string_equal(cond(st, "Ready", "reason"), "Suspended");
    assert_string_equal(cond(st, "Reconciling", "status"), "False");
    json_decref(st);

    in = ready_input();
    in.deleting = true;
    st = kiln_status_instance(NULL, &in, T1);
    assert_string_equal(kiln_json_get_string(st, "state"), "DELETING");
    assert_string_equal(cond(st, "Ready", "reason"), "Deleting");
    json_decref(st);
}

static void test_status__projected_fields_lose_to_kiln_fields(void **state)
{
    (void)state;
    kiln_status_input in = ready_input();
    json_t *proj = json_pack("{s:s, s:s}", "endpoint", "10.0.0.1", "state", "mine");
    in.projected = proj;
    json_t *st = kiln_status_instance(NULL, &in, T1);
    assert_string_equal(kiln_json_get_string(st, "endpoint"), "10.0.0.1");
    assert_string_equal(kiln_json_get_string(st, "state"), "ACTIVE");
    json_decref(st);
    json_decref(proj);
}

static void test_status__validation_gates_ready(void **state)
{
    (void)state;
    kiln_status_input in = ready_input();
    in.validations = 1;
    json_t *st = kiln_status_instance(NULL, &in, T1);
    assert_string_equal(cond(st, "Validated", "status"), "False");
    assert_string_equal(cond(st, "Ready", "status"), "False");
    json_decref(st);
    in.validations_ready = 1;
    st = kiln_status_instance(NULL, &in, T1);
    assert_string_equal(cond(st, "Validated", "reason"), "Passed");
    assert_string_equal(cond(st, "Ready", "status"), "True");
    json_decref(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status__ready_instance_is_active),
        cmocka_unit_test(test_status__unchanged_status_keeps_transition_times),
        cmocka_unit_test(test_status__flip_moves_only_flipped_conditions),
        cmocka_unit_test(test_status__stalled_is_error_not_reconciling),
        cmocka_unit_test(test_status__graph_error_and_suspend_and_delete),
        cmocka_unit_test(test_status__projected_fields_lose_to_kiln_fields),
        cmocka_unit_test(test_status__validation_gates_ready),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
