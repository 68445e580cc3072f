#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "graph/compat.h"
#include "tests/support/json_assert.h"

/* Wraps the properties of spec into a whole CRD schema. */
#define ROOT(spec_props)                                                                           \
    "{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\","                          \
    "\"properties\":" spec_props "}}}"
#define ROOT_REQ(req, spec_props)                                                                  \
    "{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\",\"required\":" req         \
    ",\"properties\":" spec_props "}}}"

typedef struct compat_case {
    const char *name;
    const char *old_schema;
    const char *new_schema;
    const char *want[6];
} compat_case;

static const compat_case cases[] = {
    {"identical",
     ROOT("{\"replicas\":{\"type\":\"integer\"}}"),
     ROOT("{\"replicas\":{\"type\":\"integer\"}}"),
     {NULL}},
    {"property removed",
     ROOT("{\"replicas\":{\"type\":\"integer\"},\"name\":{\"type\":\"string\"}}"),
     ROOT("{\"name\":{\"type\":\"string\"}}"),
     {"spec.replicas: property removed"}},
    {"type changed",
     ROOT("{\"replicas\":{\"type\":\"integer\",\"minimum\":0}}"),
     ROOT("{\"replicas\":{\"type\":\"string\",\"minLength\":1}}"),
     {"spec.replicas: type changed from integer to string"}},
    {"new required field and field becoming required",
     ROOT("{\"image\":{\"type\":\"string\"}}"),
     ROOT_REQ("[\"name\",\"image\"]", "{\"image\":{\"type\":\"string\"},\"name\":{\"type\":"
                                      "\"string\"}}"),
     {"spec.image: field became required", "spec.name: new required field"}},
    {"enum narrowed",
     ROOT("{\"mode\":{\"type\":\"string\",\"enum\":[\"a\",\"b\",\"c\"]}}"),
     ROOT("{\"mode\":{\"type\":\"string\",\"enum\":[\"a\"]}}"),
     {"spec.mode: enum value \"b\" removed", "spec.mode: enum value \"c\" removed"}},
    {"enum added to a free field",
     ROOT("{\"mode\":{\"type\":\"string\"}}"),
     ROOT("{\"mode\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}}"),
     {"spec.mode: enum added: [\"a\",\"b\"]"}},
    {"bounds tightened",
     ROOT("{\"n\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":10},\"s\":{\"type\":\"string\"},"
          "\"l\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":1,\"maxItems\":"
          "5}}"),
     ROOT("{\"n\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":5},\"s\":{\"type\":\"string\","
          "\"maxLength\":8},\"l\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":"
          "2,\"maxItems\":4}}"),
     {"spec.l: minItems raised from 1 to 2", "spec.l: maxItems lowered from 5 to 4",
      "spec.n: minimum raised from 0 to 1", "spec.n: maximum lowered from 10 to 5",
      "spec.s: maxLength added: 8"}},
    {"exclusive bound set",
     ROOT("{\"n\":{\"type\":\"number\",\"minimum\":0}}"),
     ROOT("{\"n\":{\"type\":\"number\",\"minimum\":0,\"exclusiveMinimum\":true}}"),
     {"spec.n: exclusiveMinimum set"}},
    {"pattern added and changed",
     ROOT("{\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"string\",\"pattern\":\"^x\"}}"),
     ROOT("{\"a\":{\"type\":\"string\",\"pattern\":\"^[a-z]+$\"},\"b\":{\"type\":\"string\","
          "\"pattern\":\"^y\"}}"),
     {"spec.a: pattern added: \"^[a-z]+$\"", "spec.b: pattern changed from \"^x\" to \"^y\""}},
    {"preserve-unknown-fields removed",
     ROOT("{\"extra\":{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true}}"),
     ROOT("{\"extra\":{\"type\":\"object\"}}"),
     {"spec.extra: x-kubernetes-preserve-unknown-fields removed"}},
    {"items and map values change type",
     ROOT("{\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"labels\":{\"type\":"
          "\"object\",\"additionalProperties\":{\"type\":\"string\"}}}"),
     ROOT("{\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"}},\"labels\":{\"type\":"
          "\"object\",\"additionalProperties\":{\"type\":\"boolean\"}}}"),
     {"spec.labels[*]: type changed from string to boolean",
      "spec.tags[*]: type changed from string to integer"}},
    {"nested array of objects",
     ROOT("{\"ports\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
          "\"name\":{\"type\":\"string\"},\"port\":{\"type\":\"integer\"}}}}}"),
     ROOT("{\"ports\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"port\"],"
          "\"properties\":{\"port\":{\"type\":\"integer\"}}}}}"),
     {"spec.ports[*].port: field became required", "spec.ports[*].name: property removed"}},
    {"list becomes a set",
     ROOT("{\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}"),
     ROOT("{\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},"
          "\"x-kubernetes-list-type\":\"set\"}}"),
     {"spec.tags: x-kubernetes-list-type changed from atomic to set"}},
    {"int-or-string narrowed",
     ROOT("{\"port\":{\"x-kubernetes-int-or-string\":true}}"),
     ROOT("{\"port\":{\"type\":\"integer\"}}"),
     {"spec.port: x-kubernetes-int-or-string removed"}},
    {"map values removed",
     ROOT("{\"labels\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}}"),
     ROOT("{\"labels\":{\"type\":\"object\"}}"),
     {"spec.labels: additionalProperties removed"}},
    {"non-breaking changes",
     ROOT_REQ("[\"name\"]",
              "{\"name\":{\"type\":\"string\",\"description\":\"old\",\"maxLength\":5,"
              "\"pattern\":\"^a\"},\"mode\":{\"type\":\"string\",\"enum\":[\"a\"],\"default\":"
              "\"a\"},\"kind\":{\"type\":\"string\",\"enum\":[\"x\"]},\"n\":{\"type\":\"integer\","
              "\"minimum\":2,\"maximum\":3}}"),
     ROOT("{\"name\":{\"type\":\"string\",\"description\":\"new\",\"maxLength\":10},"
          "\"mode\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"],\"default\":\"b\"},\"kind\":{"
          "\"type\":\"string\"},\"n\":{\"type\":\"integer\",\"minimum\":1},\"extra\":{\"type\":"
          "\"string\"},\"more\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":"
          "\"integer\"}}}}"),
     {NULL}},
};

static void test_compat__reports_each_breaking_change_with_its_path(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        const compat_case *tc = &cases[i];
        json_t *o = ja_parse(tc->old_schema);
        json_t *n = ja_parse(tc->new_schema);
        kiln_errs errs = {0};
        size_t want = 0;
        while (want < 6 && tc->want[want])
            want++;
        int rc = kiln_crd_breaking_changes(&errs, o, n);
        if ((size_t)rc != want) {
            print_error("case \"%s\": %d changes, want %zu\n", tc->name, rc, want);
            for (size_t j = 0; j < errs.len; j++)
                print_error("  %s\n", errs.items[j].msg);
        }
        assert_int_equal(rc, (int)want);
        assert_int_equal(errs.len, want);
        for (size_t j = 0; j < want; j++) {
            assert_int_equal(errs.items[j].code, KILN_EINVAL);
            assert_string_equal(errs.items[j].msg, tc->want[j]);
        }
        /* Counting works without a list. */
        assert_int_equal(kiln_crd_breaking_changes(NULL, o, n), (int)want);
        kiln_errs_free(&errs);
        json_decref(o);
        json_decref(n);
    }
}

static void test_compat__root_changes_have_no_path_prefix(void **state)
{
    json_t *o = ja_parse("{\"type\":\"object\"}");
    json_t *n = ja_parse("{\"type\":\"array\"}");
    kiln_errs errs = {0};
    assert_int_equal(kiln_crd_breaking_changes(&errs, o, n), 1);
    assert_string_equal(errs.items[0].msg, "type changed from object to array");
    kiln_errs_free(&errs);
    json_decref(o);
    json_decref(n);
}

static void test_compat__rejects_non_objects(void **state)
{
    json_t *o = ja_parse("{\"type\":\"object\"}");
    json_t *n = ja_parse("[1]");
    kiln_errs errs = {0};
    assert_int_equal(kiln_crd_breaking_changes(&errs, o, n), KILN_EINVAL);
    assert_int_equal(errs.len, 1);
    assert_string_equal(errs.items[0].msg, "breaking-change check: both schemas must be objects");
    assert_int_equal(kiln_crd_breaking_changes(NULL, NULL, o), KILN_EINVAL);
    kiln_errs_free(&errs);
    json_decref(o);
    json_decref(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compat__reports_each_breaking_change_with_its_path),
        cmocka_unit_test(test_compat__root_changes_have_no_path_prefix),
        cmocka_unit_test(test_compat__rejects_non_objects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
