/* tests/controller/test_inventory.c: the recorded inventory, deletion waves
 * and the prune set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controller/inventory.h"
#include "core/err.h"
#include "core/json.h"

static void test_inventory__format_is_sorted_and_round_trips(void **state)
{
    (void)state;
    kiln_inventory inv;
    kiln_inventory_init(&inv);
    kiln_inventory_add(&inv, 2, "service", "v1", "Service", "ns", "web");
    kiln_inventory_add(&inv, 0, "config", "v1", "ConfigMap", "ns", "web-cfg");
    kiln_inventory_add(&inv, 1, "deployment", "apps/v1", "Deployment", "ns", "web");
    kiln_inventory_add(&inv, 1, "deployment", "apps/v1beta1", "Deployment", "ns", "web");
    assert_int_equal(inv.len, 3); /* same group, kind, name: one object */
    char *text = kiln_inventory_format(&inv);
    assert_string_equal(text, "[[0,\"config\",\"v1\",\"ConfigMap\",\"ns\",\"web-cfg\"],"
                              "[1,\"deployment\",\"apps/v1\",\"Deployment\",\"ns\",\"web\"],"
                              "[2,\"service\",\"v1\",\"Service\",\"ns\",\"web\"]]");
    kiln_inventory back;
    assert_int_equal(kiln_inventory_parse(&back, text, NULL), 0);
    assert_int_equal(back.len, 3);
    assert_true(kiln_inventory_subset(&back, &inv));
    assert_true(kiln_inventory_subset(&inv, &back));
    free(text);
    kiln_inventory_free(&back);
    kiln_inventory_free(&inv);
}

static void test_inventory__parse_rejects_bad_entries(void **state)
{
    (void)state;
    kiln_inventory inv;
    kiln_err err = {0};
    assert_int_equal(kiln_inventory_parse(&inv, "[[0,\"a\",\"v1\",\"ConfigMap\",\"ns\"]]", &err),
                     KILN_EINVAL);
    assert_non_null(strstr(err.msg, "kiln.dev/inventory[0]"));
    assert_int_equal(kiln_inventory_parse(&inv, "{}", &err), KILN_EINVAL);
    assert_int_equal(kiln_inventory_parse(&inv, NULL, &err), 0);
    assert_int_equal(inv.len, 0);
    kiln_inventory_free(&inv);
}

static void test_inventory__deletion_waves_run_in_reverse(void **state)
{
    (void)state;
    kiln_inventory inv;
    kiln_inventory_init(&inv);
    kiln_inventory_add(&inv, 0, "config", "v1", "ConfigMap", "ns", "a");
    kiln_inventory_add(&inv, 1, "deployment", "apps/v1", "Deployment", "ns", "a");
    kiln_inventory_add(&inv, 2, "svc", "v1", "Service", "ns", "a");
    kiln_inventory_add(&inv, 2, "svc2", "v1", "Service", "ns", "b");
    bool exists[4] = {true, true, true, true}, now[4];
    assert_int_equal(kiln_inventory_next_wave(&inv, exists, now), 2);
    assert_false(now[0]);
    assert_false(now[1]);
    assert_true(now[2]);
    assert_true(now[3]);
    /* One object of the last wave is held by a finalizer: still that wave. */
    exists[2] = false;
    assert_int_equal(kiln_inventory_next_wave(&inv, exists, now), 1);
    assert_true(now[3]);
    exists[3] = false;
    assert_int_equal(kiln_inventory_next_wave(&inv, exists, now), 1);
    assert_true(now[1]);
    exists[1] = false;
    exists[0] = false;
    assert_int_equal(kiln_inventory_next_wave(&inv, exists, now), 0);
    kiln_inventory_free(&inv);
}

static void test_inventory__prune_set_is_what_keep_lacks(void **state)
{
    (void)state;
    json_t *children =
        json_pack("[{s:s, s:s, s:{s:s, s:s}}, {s:s, s:s, s:{s:s, s:s}}, {s:s, s:s, s:{s:s, s:s}}]",
                  "apiVersion", "v1", "kind", "ConfigMap", "metadata", "name", "a", "namespace",
                  "ns", "apiVersion", "networking.k8s.io/v1", "kind", "Ingress", "metadata", "name",
                  "a", "namespace", "ns", "apiVersion", "v1", "kind", "ConfigMap", "metadata",
                  "name", "a-2", "namespace", "ns");
    kiln_inventory keep;
    kiln_inventory_init(&keep);
    kiln_inventory_add(&keep, 0, "config", "v1", "ConfigMap", "ns", "a");
    json_t *gone = kiln_inventory_prune_set(children, &keep);
    assert_int_equal(json_array_size(gone), 2);
    assert_string_equal(kiln_json_get_string(json_array_get(gone, 0), "kind"), "Ingress");
    assert_string_equal(kiln_json_get_string(json_array_get(gone, 1), "metadata.name"), "a-2");
    json_decref(gone);
    json_decref(children);
    kiln_inventory_free(&keep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inventory__format_is_sorted_and_round_trips),
        cmocka_unit_test(test_inventory__parse_rejects_bad_entries),
        cmocka_unit_test(test_inventory__deletion_waves_run_in_reverse),
        cmocka_unit_test(test_inventory__prune_set_is_what_keep_lacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
