/* tests/devcluster/test_selector.c: label and field selector parsing and matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "devcluster/internal.h"

static bool labels_match(const char *selector, const char *obj_json)
{
    kiln_dc_selector s;
    kiln_err err = {0};
    assert_int_equal(kiln_dc_selector_parse(&s, selector, false, &err), 0);
    json_t *obj = json_loads(obj_json, 0, NULL);
    assert_non_null(obj);
    bool m = kiln_dc_labels_match(&s, obj);
    json_decref(obj);
    kiln_dc_selector_free(&s);
    return m;
}

static void test_selector__label_operators(void **state)
{
    (void)state;
    const char *o = "{\"metadata\":{\"labels\":{\"app\":\"web\",\"tier\":\"front\"}}}";
    assert_true(labels_match("app=web", o));
    assert_true(labels_match("app==web", o));
    assert_false(labels_match("app!=web", o));
    assert_true(labels_match("app!=db", o));
    assert_true(labels_match("tier in (front, back)", o));
    assert_false(labels_match("tier notin (front)", o));
    assert_true(labels_match("app", o));
    assert_false(labels_match("!app", o));
    assert_true(labels_match("!missing", o));
    assert_true(labels_match("app=web,tier in (front),!missing", o));
    assert_false(labels_match("app=web,tier=back", o));
    assert_true(labels_match("", o));
    /* != and notin match objects without the label, as in Kubernetes. */
    assert_true(labels_match("missing!=x", o));
    assert_true(labels_match("missing notin (x)", o));
}

static void test_selector__parse_errors(void **state)
{
    (void)state;
    kiln_dc_selector s;
    kiln_err err = {0};
    assert_int_equal(kiln_dc_selector_parse(&s, "a in (b", false, &err), KILN_EINVAL);
    assert_string_equal(err.msg, "a in (b: expected a list in parentheses");
    assert_int_equal(kiln_dc_selector_parse(&s, "a=b,,c", false, &err), KILN_EINVAL);
    assert_string_equal(err.msg, "empty requirement");
    assert_int_equal(kiln_dc_selector_parse(&s, "justakey", true, &err), KILN_EINVAL);
    assert_string_equal(err.msg, "invalid selector: 'justakey'; can't understand 'justakey'");
}

static void test_selector__fields_by_key_and_value(void **state)
{
    (void)state;
    kiln_dc_selector s;
    kiln_err err = {0};
    assert_int_equal(
        kiln_dc_selector_parse(&s, "metadata.name=a,metadata.namespace!=kube-system", true, &err),
        0);
    bool decided = false;
    assert_true(kiln_dc_fields_match_key(&s, "default", "a", &decided));
    assert_true(decided);
    assert_false(kiln_dc_fields_match_key(&s, "kube-system", "a", &decided));
    assert_false(kiln_dc_fields_match_key(&s, "default", "b", &decided));
    kiln_dc_selector_free(&s);

    assert_int_equal(kiln_dc_selector_parse(&s, "status.phase=Running", true, &err), 0);
    json_t *pod = json_loads("{\"status\":{\"phase\":\"Running\"}}", 0, NULL);
    assert_true(kiln_dc_fields_match(&s, pod));
    json_object_set_new(json_object_get(pod, "status"), "phase", json_string("Pending"));
    assert_false(kiln_dc_fields_match(&s, pod));
    json_decref(pod);
    assert_false(kiln_dc_fields_match_key(&s, "default", "a", &decided) && decided);
    kiln_dc_selector_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selector__label_operators),
        cmocka_unit_test(test_selector__parse_errors),
        cmocka_unit_test(test_selector__fields_by_key_and_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
