#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "graph/simpleschema.h"
#include "tests/support/json_assert.h"

typedef struct field_case {
    const char *decl;
    const char *types; /* JSON or NULL */
    const char *want;  /* JSON schema */
    bool required;
} field_case;

static const field_case field_cases[] = {
    {"string", NULL, "{\"type\":\"string\"}", false},
    {"integer", NULL, "{\"type\":\"integer\"}", false},
    {"boolean", NULL, "{\"type\":\"boolean\"}", false},
    {"float", NULL, "{\"type\":\"number\"}", false},
    {"  string  ", NULL, "{\"type\":\"string\"}", false},
    {"object", NULL, "{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true}", false},
    {"[]string", NULL, "{\"type\":\"array\",\"items\":{\"type\":\"string\"}}", false},
    {"map[string]integer", NULL,
     "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"}}", false},
    {"[][]integer", NULL,
     "{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}}", false},
    {"map[string][]string", NULL,
     "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"array\",\"items\":{\"type\":"
     "\"string\"}}}",
     false},
    {"[]map[string]float", NULL,
     "{\"type\":\"array\",\"items\":{\"type\":\"object\",\"additionalProperties\":{\"type\":"
     "\"number\"}}}",
     false},
    {"integer | default=1 minimum=0", NULL, "{\"type\":\"integer\",\"default\":1,\"minimum\":0}",
     false},
    {"string | default=nginx", NULL, "{\"type\":\"string\",\"default\":\"nginx\"}", false},
    {"string | default=\"1\"", NULL, "{\"type\":\"string\",\"default\":\"1\"}", false},
    {"string | default=1", NULL, "{\"type\":\"string\",\"default\":\"1\"}", false},
    {"string | default=\"nginx:1.27\"", NULL, "{\"type\":\"string\",\"default\":\"nginx:1.27\"}",
     false},
    {"string | default=\"say \\\"hi\\\"\"", NULL,
     "{\"type\":\"string\",\"default\":\"say \\\"hi\\\"\"}", false},
    {"float | default=0.5 minimum=0 maximum=1.5", NULL,
     "{\"type\":\"number\",\"default\":0.5,\"minimum\":0,\"maximum\":1.5}", false},
    {"float | default=2", NULL, "{\"type\":\"number\",\"default\":2}", false},
    {"boolean | default=true", NULL, "{\"type\":\"boolean\",\"default\":true}", false},
    {"[]string | default=[\"x\", \"y z\"]", NULL,
     "{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"default\":[\"x\",\"y z\"]}", false},
    {"object | default={\"a\": 1}", NULL,
     "{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true,\"default\":{\"a\":1}}",
     false},
    {"map[string]string | default={\"a\": \"b\"}", NULL,
     "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"},\"default\":{\"a\":"
     "\"b\"}}",
     false},
    {"string | description=\"a | b\"", NULL, "{\"type\":\"string\",\"description\":\"a | b\"}",
     false},
    {"string | description='single quoted'", NULL,
     "{\"type\":\"string\",\"description\":\"single quoted\"}", false},
    {"string | description=plain", NULL, "{\"type\":\"string\",\"description\":\"plain\"}", false},
    {"string | enum=a,b,c default=b", NULL,
     "{\"type\":\"string\",\"enum\":[\"a\",\"b\",\"c\"],\"default\":\"b\"}", false},
    {"string | enum=\"x, y\"", NULL, "{\"type\":\"string\",\"enum\":[\"x\",\"y\"]}", false},
    {"integer | enum=1,2,3", NULL, "{\"type\":\"integer\",\"enum\":[1,2,3]}", false},
    {"string | pattern=\"^[a-z]+$\"", NULL, "{\"type\":\"string\",\"pattern\":\"^[a-z]+$\"}",
     false},
    {"string | minLength=1 maxLength=63", NULL,
     "{\"type\":\"string\",\"minLength\":1,\"maxLength\":63}", false},
    {"[]string | minItems=1 maxItems=3", NULL,
     "{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":1,\"maxItems\":3}", false},
    {"[]string | uniqueItems=true", NULL,
     "{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"x-kubernetes-list-type\":\"set\"}",
     false},
    {"[]string | uniqueItems=false", NULL, "{\"type\":\"array\",\"items\":{\"type\":\"string\"}}",
     false},
    {"[]string | listType=atomic", NULL,
     "{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"x-kubernetes-list-type\":\"atomic\"}",
     false},
    {"[]string | listType=set uniqueItems=true", NULL,
     "{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"x-kubernetes-list-type\":\"set\"}",
     false},
    {"string | immutable=true", NULL,
     "{\"type\":\"string\",\"x-kubernetes-validations\":[{\"rule\":\"self == oldSelf\","
     "\"message\":\"field is immutable\"}]}",
     false},
    {"string | immutable=false", NULL, "{\"type\":\"string\"}", false},
    {"integer | validation=\"self > 0\" immutable=true", NULL,
     "{\"type\":\"integer\",\"x-kubernetes-validations\":[{\"rule\":\"self > 0\",\"message\":"
     "\"validation failed\"},{\"rule\":\"self == oldSelf\",\"message\":\"field is immutable\"}]}",
     false},
    {"string | required=true", NULL, "{\"type\":\"string\"}", true},
    {"string | required=false", NULL, "{\"type\":\"string\"}", false},
    {"string|required=true   default=x", NULL, "{\"type\":\"string\",\"default\":\"x\"}", true},
    {"[]Port | listType=map listMapKey=name listMapKey=proto",
     "{\"Port\":{\"name\":\"string | required=true\",\"proto\":\"string | default=TCP\","
     "\"port\":\"integer\"}}",
     "{\"type\":\"array\",\"x-kubernetes-list-type\":\"map\",\"x-kubernetes-list-map-keys\":["
     "\"name\",\"proto\"],\"items\":{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{"
     "\"name\":{\"type\":\"string\"},\"proto\":{\"type\":\"string\",\"default\":\"TCP\"},"
     "\"port\":{\"type\":\"integer\"}}}}",
     false},
    {"Name", "{\"Name\":\"string | minLength=1 required=true\"}",
     "{\"type\":\"string\",\"minLength\":1}", true},
    {"Name | required=false description=who", "{\"Name\":\"string | required=true\"}",
     "{\"type\":\"string\",\"description\":\"who\"}", false},
    {"[]Name", "{\"Name\":\"string | required=true\"}",
     "{\"type\":\"array\",\"items\":{\"type\":\"string\"}}", false},
    {"Alias", "{\"Alias\":\"Base | maxLength=5\",\"Base\":\"string | minLength=2\"}",
     "{\"type\":\"string\",\"minLength\":2,\"maxLength\":5}", false},
    {"Limits | default={\"cpu\": 2}", "{\"Limits\":{\"cpu\":\"integer\",\"gpu\":\"integer\"}}",
     "{\"type\":\"object\",\"properties\":{\"cpu\":{\"type\":\"integer\"},\"gpu\":{\"type\":"
     "\"integer\"}},\"default\":{\"cpu\":2}}",
     false},
};

static void test_simpleschema__every_type_and_marker(void **state)
{
    for (size_t i = 0; i < sizeof(field_cases) / sizeof(*field_cases); i++) {
        const field_case *tc = &field_cases[i];
        json_t *types = tc->types ? ja_parse(tc->types) : NULL;
        json_t *out = NULL;
        kiln_errs errs = {0};
        bool required = !tc->required;
        int rc = kiln_simpleschema_field(&out, &required, tc->decl, types, "f", &errs);
        if (rc != 0)
            print_error("case %zu (%s): %s\n", i, tc->decl, errs.len ? errs.items[0].msg : "?");
        assert_int_equal(rc, 0);
        assert_int_equal(errs.len, 0);
        ja_assert_json(out, tc->want);
        assert_int_equal(required, tc->required);
        json_decref(out);
        json_decref(types);
        kiln_errs_free(&errs);
    }
}

static void test_simpleschema__nested_maps_are_objects_with_sorted_required(void **state)
{
    json_t *spec =
        ja_parse("{\"zeta\":\"string | required=true\",\"alpha\":\"string | required=true\","
                 "\"image\":\"string | default=\\\"nginx:1.27\\\"\","
                 "\"ingress\":{\"enabled\":\"boolean | default=false\",\"host\":\"string\"}}");
    json_t *out = NULL;
    kiln_errs errs = {0};
    assert_int_equal(kiln_simpleschema_to_openapi(&out, spec, NULL, "spec.schema.spec", &errs), 0);
    ja_assert_json(out, "{\"type\":\"object\",\"required\":[\"alpha\",\"zeta\"],\"properties\":{"
                        "\"alpha\":{\"type\":\"string\"},\"zeta\":{\"type\":\"string\"},"
                        "\"image\":{\"type\":\"string\",\"default\":\"nginx:1.27\"},"
                        "\"ingress\":{\"type\":\"object\",\"default\":{},\"properties\":{"
                        "\"enabled\":{\"type\":\"boolean\",\"default\":false},"
                        "\"host\":{\"type\":\"string\"}}}}}");
    /* Key order of required is sorted, not the declaration order. */
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "required"), 0)),
                        "alpha");
    json_decref(out);
    json_decref(spec);
    kiln_errs_free(&errs);
}

static void test_simpleschema__default_propagates_through_objects(void **state)
{
    json_t *spec = ja_parse("{\"a\":{\"b\":{\"c\":\"integer | default=1\"}},"
                            "\"plain\":{\"x\":\"string\"},"
                            "\"strict\":{\"r\":\"string | required=true\",\"d\":{\"e\":\"integer | "
                            "default=2\"}}}");
    json_t *out = NULL;
    assert_int_equal(kiln_simpleschema_to_openapi(&out, spec, NULL, "spec", NULL), 0);
    ja_assert_json(out,
                   "{\"type\":\"object\",\"default\":{},\"properties\":{"
                   "\"a\":{\"type\":\"object\",\"default\":{},\"properties\":{\"b\":{\"type\":"
                   "\"object\",\"default\":{},\"properties\":{\"c\":{\"type\":\"integer\","
                   "\"default\":1}}}}},"
                   "\"plain\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"string\"}}},"
                   "\"strict\":{\"type\":\"object\",\"required\":[\"r\"],\"properties\":{"
                   "\"r\":{\"type\":\"string\"},\"d\":{\"type\":\"object\",\"default\":{},"
                   "\"properties\":{\"e\":{\"type\":\"integer\",\"default\":2}}}}}}}");
    json_decref(out);
    json_decref(spec);
}

static void test_simpleschema__custom_types_expand_inline_in_dependency_order(void **state)
{
    json_t *types = ja_parse("{\"Server\":{\"port\":\"Port\",\"name\":\"Name\"},"
                             "\"Port\":\"integer | default=80 minimum=1\","
                             "\"Name\":\"string | required=true\"}");
    json_t *spec = ja_parse("{\"server\":\"Server\",\"servers\":\"map[string]Server\"}");
    json_t *out = NULL;
    kiln_errs errs = {0};
    assert_int_equal(kiln_simpleschema_to_openapi(&out, spec, types, "spec.schema.spec", &errs), 0);
    const char *server = "{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{"
                         "\"name\":{\"type\":\"string\"},"
                         "\"port\":{\"type\":\"integer\",\"default\":80,\"minimum\":1}}}";
    char want[1024];
    snprintf(want, sizeof(want),
             "{\"type\":\"object\",\"properties\":{\"server\":%s,\"servers\":{\"type\":"
             "\"object\",\"additionalProperties\":%s}}}",
             server, server);
    ja_assert_json(out, want);
    json_decref(out);
    json_decref(spec);
    json_decref(types);
    kiln_errs_free(&errs);
}

typedef struct error_case {
    const char *spec;
    const char *types;
    int code;
    const char *msg;
} error_case;

static const error_case error_cases[] = {
    {"{\"replicas\":\"integer | minimun=0\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.replicas: unknown marker \"minimun\""},
    {"{\"x\":\"strng\"}", NULL, KILN_EINVAL, "spec.schema.spec.x: unknown type \"strng\""},
    {"{\"x\":\"[]Missing\"}", NULL, KILN_EINVAL, "spec.schema.spec.x: unknown type \"Missing\""},
    {"{\"x\":\"integer | default=abc\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"default\": \"abc\" is not a valid integer"},
    {"{\"x\":\"integer | default=\\\"1\\\"\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"default\": \"1\" is not of type integer"},
    {"{\"x\":\"integer | default=1.5\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"default\": 1.5 is not of type integer"},
    {"{\"x\":\"boolean | default=yes\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"default\": \"yes\" is not a valid boolean"},
    {"{\"x\":\"[]string | default=[1]\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"default\": default[0]: Invalid value: \"integer\": default[0] "
     "in body must be of type string: \"integer\""},
    {"{\"x\":\"integer | default=-1 minimum=0\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"default\": default: Invalid value: -1: default in body should "
     "be greater than or equal to 0"},
    {"{\"x\":\"string | enum=a,b default=c\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"default\": default: Unsupported value: \"c\": supported "
     "values: \"a\", \"b\""},
    {"{\"x\":\"boolean | enum=true,false\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"enum\" is only supported on string and integer fields, not "
     "boolean"},
    {"{\"x\":\"integer | enum=1,two\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"enum\": value \"two\" is not an integer"},
    {"{\"x\":\"string | enum=a,,b\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"enum\": empty value in \"a,,b\""},
    {"{\"x\":\"string | enum=a,b,a\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"enum\": duplicate value \"a\""},
    {"{\"x\":\"[]string | listMapKey=name\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"listMapKey\" requires listType=map"},
    {"{\"x\":\"[]string | listType=map listMapKey=name\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: listType=map requires list items of type object"},
    {"{\"x\":\"[]P | listType=map\"}", "{\"P\":{\"name\":\"string\"}}", KILN_EINVAL,
     "spec.schema.spec.x: listType=map requires at least one listMapKey"},
    {"{\"x\":\"[]P | listType=map listMapKey=id\"}", "{\"P\":{\"name\":\"string\"}}", KILN_EINVAL,
     "spec.schema.spec.x: listMapKey \"id\" is not a property of the list items"},
    {"{\"x\":\"[]P | listType=map listMapKey=name\"}", "{\"P\":{\"name\":\"string\"}}", KILN_EINVAL,
     "spec.schema.spec.x: listMapKey \"name\" must be required or have a default in the list "
     "items"},
    {"{\"x\":\"[]string | listType=list\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"listType\" must be atomic, set or map, got \"list\""},
    {"{\"x\":\"[]string | uniqueItems=true listType=atomic\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"uniqueItems=true\" conflicts with listType=atomic"},
    {"{\"x\":\"[]P | uniqueItems=true\"}", "{\"P\":{\"name\":\"string\"}}", KILN_EINVAL,
     "spec.schema.spec.x: listType=set requires list items of a scalar type"},
    {"{\"x\":\"[][]string | listType=set\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: listType=set requires list items of a scalar type"},
    {"{\"x\":\"string | minLength=2 minLength=3\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"minLength\" given more than once"},
    {"{\"x\":\"string | minLength=-1\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"minLength\" expects a non-negative integer, got \"-1\""},
    {"{\"x\":\"string | minimum=1\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"minimum\" is only supported on integer and float fields, not "
     "string"},
    {"{\"x\":\"integer | maxLength=1\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"maxLength\" is only supported on string fields, not integer"},
    {"{\"x\":\"string | maxItems=1\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"maxItems\" is only supported on array fields, not string"},
    {"{\"x\":\"integer | minimum=five\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"minimum\" expects a number, got \"five\""},
    {"{\"x\":\"integer | minimum=5 maximum=1\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: minimum 5 is greater than maximum 1"},
    {"{\"x\":\"string | required=yes\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"required\" expects true or false, got \"yes\""},
    {"{\"x\":\"string | pattern=\\\"a(b\\\"\"}", NULL, KILN_EINVAL, NULL},
    {"{\"x\":\"string | description=\\\"open\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"description\": unterminated quoted value"},
    {"{\"x\":\"string | description=\\\"a\\\"b\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"description\": unexpected text after quoted value"},
    {"{\"x\":\"object | default={\\\"a\\\": 1\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"default\": unbalanced brackets in value"},
    {"{\"x\":\"object | default=]\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"default\": unbalanced brackets in value"},
    {"{\"x\":\"string | default=\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: marker \"default\": missing value"},
    {"{\"x\":\"string | required\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: invalid marker \"required\": expected name=value"},
    {"{\"x\":\"string | =1\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: invalid marker: missing name before ="},
    {"{\"x\":\" | required=true\"}", NULL, KILN_EINVAL, "spec.schema.spec.x: missing type"},
    {"{\"x\":\"[]\"}", NULL, KILN_EINVAL, "spec.schema.spec.x: missing type"},
    {"{\"x\":\"map[int]string\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: map key type must be string, got \"int\""},
    {"{\"x\":\"map[string\"}", NULL, KILN_EINVAL,
     "spec.schema.spec.x: invalid map type \"map[string\": missing ]"},
    {"{\"replicas\":3}", NULL, KILN_EINVAL,
     "spec.schema.spec.replicas: expected a type declaration string or a map of fields, got "
     "integer"},
    {"{\"a\":{\"tags\":[\"x\"]}}", NULL, KILN_EINVAL,
     "spec.schema.spec.a.tags: expected a type declaration string or a map of fields, got list"},
    {"{\"a\":null}", NULL, KILN_EINVAL,
     "spec.schema.spec.a: expected a type declaration string or a map of fields, got null"},
    {"{\"\":\"string\"}", NULL, KILN_EINVAL, "spec.schema.spec.: empty field name"},
    {"{\"x\":\"[][][][][][][][][][][][][][][][][]string\"}", NULL, KILN_ELIMIT,
     "spec.schema.spec.x: type nesting exceeds maximum depth of 16"},
    {"{\"x\":\"map[string][][][][][][][][][][][][][][][][]string\"}", NULL, KILN_ELIMIT,
     "spec.schema.spec.x: type nesting exceeds maximum depth of 16"},
    {"{\"x\":\"A\"}", "{\"A\":{\"b\":\"B\"},\"B\":\"[]A\"}", KILN_EINVAL,
     "spec.schema.types.A: cyclic dependency in types: A -> B -> A"},
    {"{\"x\":\"string\"}", "{\"Self\":\"map[string]Self\"}", KILN_EINVAL,
     "spec.schema.types.Self: cyclic dependency in types: Self -> Self"},
    {"{\"x\":\"string\"}", "{\"T\":\"strin\"}", KILN_EINVAL,
     "spec.schema.types.T: unknown type \"strin\""},
    {"{\"x\":\"string\"}", "{\"T\":5}", KILN_EINVAL,
     "spec.schema.types.T: expected a type declaration string or a map of fields, got integer"},
    {"{\"x\":\"string\"}", "{\"string\":\"integer\"}", KILN_EINVAL,
     "spec.schema.types.string: invalid type name \"string\": use letters, digits and _, not a "
     "built-in type"},
    {"{\"x\":\"string\"}", "[\"T\"]", KILN_EINVAL,
     "spec.schema.types: expected a map of type names, got list"},
    {"[\"x\"]", NULL, KILN_EINVAL, "spec.schema.spec: expected a map of fields, got list"},
};

static void test_simpleschema__errors_name_the_field(void **state)
{
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(*error_cases); i++) {
        const error_case *tc = &error_cases[i];
        json_t *spec = ja_parse(tc->spec);
        json_t *types = tc->types ? ja_parse(tc->types) : NULL;
        json_t *out = (json_t *)1;
        kiln_errs errs = {0};
        int rc = kiln_simpleschema_to_openapi(&out, spec, types, "spec.schema.spec", &errs);
        if (rc != tc->code || errs.len != 1 || (tc->msg && strcmp(errs.items[0].msg, tc->msg)))
            print_error("case %zu: rc %d, %zu errors, first: %s\n", i, rc, errs.len,
                        errs.len ? errs.items[0].msg : "-");
        assert_int_equal(rc, tc->code);
        assert_null(out);
        assert_int_equal(errs.len, 1);
        assert_int_equal(errs.items[0].code, tc->code);
        if (tc->msg)
            assert_string_equal(errs.items[0].msg, tc->msg);
        json_decref(spec);
        json_decref(types);
        kiln_errs_free(&errs);
    }
}

static void test_simpleschema__invalid_pattern_names_the_regex(void **state)
{
    json_t *out = NULL;
    kiln_errs errs = {0};
    assert_int_equal(
        kiln_simpleschema_field(&out, NULL, "string | pattern=\"a(b\"", NULL, "spec.name", &errs),
        KILN_EINVAL);
    assert_int_equal(errs.len, 1);
    const char *want = "spec.name: marker \"pattern\": invalid regular expression \"a(b\": ";
    assert_memory_equal(errs.items[0].msg, want, strlen(want));
    assert_true(strlen(errs.items[0].msg) > strlen(want));
    kiln_errs_free(&errs);
}

static void test_simpleschema__reports_every_problem_in_key_order(void **state)
{
    json_t *spec = ja_parse("{\"b\":\"integer | minimun=0\",\"a\":\"strng\",\"c\":\"string\"}");
    json_t *out = NULL;
    kiln_errs errs = {0};
    assert_int_equal(kiln_simpleschema_to_openapi(&out, spec, NULL, "spec", &errs), KILN_EINVAL);
    assert_null(out);
    assert_int_equal(errs.len, 2);
    assert_string_equal(errs.items[0].msg, "spec.a: unknown type \"strng\"");
    assert_string_equal(errs.items[1].msg, "spec.b: unknown marker \"minimun\"");
    kiln_errs_free(&errs);
    json_decref(spec);
}

static void test_simpleschema__broken_type_is_reported_once(void **state)
{
    json_t *types = ja_parse("{\"Bad\":\"integer | default=x\"}");
    json_t *spec = ja_parse("{\"a\":\"Bad\",\"b\":\"[]Bad\"}");
    json_t *out = NULL;
    kiln_errs errs = {0};
    assert_int_equal(kiln_simpleschema_to_openapi(&out, spec, types, "spec.schema.spec", &errs),
                     KILN_EINVAL);
    assert_int_equal(errs.len, 1);
    assert_string_equal(errs.items[0].msg,
                        "spec.schema.types.Bad: marker \"default\": \"x\" is not a valid integer");
    kiln_errs_free(&errs);
    json_decref(spec);
    json_decref(types);
}

static void test_simpleschema__exponential_types_hit_the_node_bound(void **state)
{
    /* T0 uses T1 twice, T1 uses T2 twice, ...: 2^25 objects if expanded. */
    json_t *types = json_object();
    for (int i = 0; i < 25; i++) {
        char name[16], next[16];
        snprintf(name, sizeof(name), "T%d", i);
        snprintf(next, sizeof(next), "T%d", i + 1);
        json_object_set_new(types, name,
                            i == 24 ? json_string("string")
                                    : json_pack("{s:s, s:s}", "a", next, "b", next));
    }
    json_t *spec = ja_parse("{\"root\":\"T0\"}");
    json_t *out = NULL;
    kiln_errs errs = {0};
    assert_int_equal(kiln_simpleschema_to_openapi(&out, spec, types, "spec.schema.spec", &errs),
                     KILN_ELIMIT);
    assert_null(out);
    assert_true(errs.len >= 1);
    assert_non_null(strstr(errs.items[0].msg, "schema would exceed 100000 nodes"));
    kiln_errs_free(&errs);
    json_decref(spec);
    json_decref(types);
}

static json_t *nested_maps(int maps)
{
    json_t *v = json_string("string");
    for (int i = 0; i < maps; i++)
        v = json_pack("{s:o}", "a", v);
    return v;
}

static void test_simpleschema__schema_depth_is_bounded(void **state)
{
    json_t *out = NULL;
    kiln_errs errs = {0};
    json_t *ok = nested_maps(63); /* 63 objects around a string: 64 levels */
    assert_int_equal(kiln_simpleschema_to_openapi(&out, ok, NULL, "spec", &errs), 0);
    json_decref(out);
    json_decref(ok);

    json_t *deep = nested_maps(64);
    assert_int_equal(kiln_simpleschema_to_openapi(&out, deep, NULL, "spec", &errs), KILN_ELIMIT);
    assert_null(out);
    assert_int_equal(errs.len, 1);
    assert_string_equal(errs.items[0].msg, "spec: schema nesting exceeds maximum depth of 64");
    kiln_errs_free(&errs);
    json_decref(deep);

    /* Arrays count as levels too, also when they come from a custom type:
     * 47 objects around L (17 levels) make 64. */
    json_t *types = json_pack("{s:s}", "L", "[][][][][][][][][][][][][][][][]string");
    json_t *spec = json_object();
    json_t *inner = spec;
    for (int i = 0; i < 46; i++) {
        json_t *next = json_object();
        json_object_set_new(inner, "a", next);
        inner = next;
    }
    json_object_set_new(inner, "l", json_string("L"));
    assert_int_equal(kiln_simpleschema_to_openapi(&out, spec, types, "spec", &errs), 0);
    json_decref(out);
    json_object_set_new(inner, "l", json_string("[]L"));
    assert_int_equal(kiln_simpleschema_to_openapi(&out, spec, types, "spec", &errs), KILN_ELIMIT);
    assert_int_equal(errs.len, 1);
    assert_non_null(strstr(errs.items[0].msg, "schema nesting exceeds maximum depth of 64"));
    kiln_errs_free(&errs);
    json_decref(spec);
    json_decref(types);
}

static void test_simpleschema__type_chains_are_bounded(void **state)
{
    json_t *types = json_object();
    for (int i = 0; i < 40; i++) {
        char name[16], next[16];
        snprintf(name, sizeof(name), "T%02d", i);
        snprintf(next, sizeof(next), "T%02d", i + 1);
        json_object_set_new(types, name, json_string(i == 39 ? "string" : next));
    }
    json_t *spec = json_pack("{s:s}", "x", "T00");
    json_t *out = NULL;
    kiln_errs errs = {0};
    assert_int_equal(kiln_simpleschema_to_openapi(&out, spec, types, "spec.schema.spec", &errs),
                     KILN_ELIMIT);
    assert_null(out);
    assert_int_equal(errs.len, 1);
    assert_string_equal(
        errs.items[0].msg,
        "spec.schema.types.T32: custom types refer to each other more than 32 deep");
    kiln_errs_free(&errs);
    json_decref(spec);
    json_decref(types);
}

static void test_simpleschema__messages_stay_valid_utf8(void **state)
{
    /* 63 ASCII bytes then "é": the 64-byte clip of the marker name splits it. */
    char decl[128];
    snprintf(decl, sizeof(decl), "string | %s\xc3\xa9=1",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    json_t *out = NULL;
    kiln_errs errs = {0};
    assert_int_equal(kiln_simpleschema_field(&out, NULL, decl, NULL, "x", &errs), KILN_EINVAL);
    assert_int_equal(errs.len, 1);
    json_t *msg = json_string(errs.items[0].msg);
    assert_non_null(msg); /* jansson accepts only valid UTF-8 */
    assert_non_null(strstr(errs.items[0].msg, "aaa?\""));
    json_decref(msg);
    kiln_errs_free(&errs);

    /* Raw bytes that are not UTF-8 at all (an overlong "/"). */
    assert_int_equal(kiln_simpleschema_field(&out, NULL, "\xc0\xaf", NULL, "x", &errs),
                     KILN_EINVAL);
    assert_string_equal(errs.items[0].msg, "x: unknown type \"??\"");
    kiln_errs_free(&errs);

    /* A path longer than a message: cut between sequences, at the last
     * byte that fits (an odd count: "x" then 2-byte characters). */
    char path[KILN_ERR_MSG_MAX + 200] = "x";
    for (int i = 0; i < KILN_ERR_MSG_MAX / 2 + 50; i++)
        strcat(path, "\xc3\xa9");
    assert_int_equal(kiln_simpleschema_field(&out, NULL, "strng", NULL, path, &errs), KILN_EINVAL);
    assert_int_equal(strlen(errs.items[0].msg), KILN_ERR_MSG_MAX - 1);
    msg = json_string(errs.items[0].msg);
    assert_non_null(msg);
    json_decref(msg);
    kiln_errs_free(&errs);
}

static void test_simpleschema__null_spec_is_an_empty_object(void **state)
{
    json_t *out = NULL;
    assert_int_equal(kiln_simpleschema_to_openapi(&out, NULL, NULL, "spec", NULL), 0);
    ja_assert_json(out, "{\"type\":\"object\"}");
    json_decref(out);
}

static void test_simpleschema__status_type_prefix(void **state)
{
    json_t *out = NULL;
    bool required = true;
    assert_int_equal(kiln_simpleschema_field(&out, &required, "integer ", NULL,
                                             "spec.schema.status.available", NULL),
                     0);
    assert_false(required);
    ja_assert_json(out, "{\"type\":\"integer\"}");
    json_decref(out);
}

static void test_simpleschema__field_reports_types_under_types_path(void **state)
{
    json_t *types = ja_parse("{\"Loop\":\"[]Loop\"}");
    json_t *out = NULL;
    kiln_errs errs = {0};
    assert_int_equal(
        kiln_simpleschema_field(&out, NULL, "Loop", types, "spec.schema.status.x", &errs),
        KILN_EINVAL);
    assert_int_equal(errs.len, 1);
    assert_string_equal(errs.items[0].msg,
                        "spec.schema.types.Loop: cyclic dependency in types: Loop -> Loop");
    kiln_errs_free(&errs);
    assert_int_equal(kiln_simpleschema_field(&out, NULL, "strng", types, "x", &errs), KILN_EINVAL);
    assert_string_equal(errs.items[0].msg, "x: unknown type \"strng\"");
    kiln_errs_free(&errs);
    json_decref(types);

    /* A broken types map is to_openapi's to report, not every field's. */
    types = ja_parse("{\"string\":\"integer\",\"Ok\":\"integer\"}");
    assert_int_equal(kiln_simpleschema_field(&out, NULL, "Ok", types, "x", &errs), 0);
    assert_int_equal(errs.len, 0);
    ja_assert_json(out, "{\"type\":\"integer\"}");
    json_decref(out);
    json_decref(types);
    types = ja_parse("[1]");
    assert_int_equal(kiln_simpleschema_field(&out, NULL, "string", types, "x", &errs), 0);
    assert_int_equal(errs.len, 0);
    json_decref(out);
    json_decref(types);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simpleschema__every_type_and_marker),
        cmocka_unit_test(test_simpleschema__nested_maps_are_objects_with_sorted_required),
        cmocka_unit_test(test_simpleschema__default_propagates_through_objects),
        cmocka_unit_test(test_simpleschema__custom_types_expand_inline_in_dependency_order),
        cmocka_unit_test(test_simpleschema__errors_name_the_field),
        cmocka_unit_test(test_simpleschema__invalid_pattern_names_the_regex),
        cmocka_unit_test(test_simpleschema__reports_every_problem_in_key_order),
        cmocka_unit_test(test_simpleschema__broken_type_is_reported_once),
        cmocka_unit_test(test_simpleschema__exponential_types_hit_the_node_bound),
        cmocka_unit_test(test_simpleschema__schema_depth_is_bounded),
        cmocka_unit_test(test_simpleschema__type_chains_are_bounded),
        cmocka_unit_test(test_simpleschema__messages_stay_valid_utf8),
        cmocka_unit_test(test_simpleschema__null_spec_is_an_empty_object),
        cmocka_unit_test(test_simpleschema__status_type_prefix),
        cmocka_unit_test(test_simpleschema__field_reports_types_under_types_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
