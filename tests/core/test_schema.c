#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/schema.h"
#include "tests/support/json_assert.h"

/* One expected error: field, reason, message. */
typedef struct want_error {
    const char *field;
    const char *reason;
    const char *message;
} want_error;

typedef struct validate_case {
    const char *schema;
    const char *value;
    const char *root;
    want_error errors[4];
} validate_case;

#define SPEC(props) "{\"type\":\"object\",\"properties\":{\"spec\":" props "}}"

static const validate_case validate_cases[] = {
    {SPEC("{\"type\":\"object\",\"properties\":{\"replicas\":{\"type\":\"integer\"}}}"),
     "{\"spec\":{\"replicas\":\"string\"}}",
     NULL,
     {{"spec.replicas", KILN_SCHEMA_TYPE_INVALID,
       "Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""}}},
    {SPEC("{\"type\":\"object\",\"properties\":{\"replicas\":{\"type\":\"integer\"}}}"),
     "{\"spec\":{\"replicas\":2.5}}",
     NULL,
     {{"spec.replicas", KILN_SCHEMA_TYPE_INVALID,
       "Invalid value: \"number\": spec.replicas in body must be of type integer: \"number\""}}},
    {SPEC("{\"type\":\"object\",\"properties\":{\"replicas\":{\"type\":\"integer\"},"
          "\"ratio\":{\"type\":\"number\"}}}"),
     "{\"spec\":{\"replicas\":2.0,\"ratio\":3}}",
     NULL,
     {{NULL}}},
    {SPEC("{\"type\":\"object\",\"required\":[\"name\",\"image\"],\"properties\":{\"name\":{"
          "\"type\":\"string\"},\"image\":{\"type\":\"string\"}}}"),
     "{\"spec\":{\"image\":\"nginx\"}}",
     NULL,
     {{"spec.name", KILN_SCHEMA_REQUIRED, "Required value"}}},
    {SPEC("{\"type\":\"object\",\"properties\":{\"mode\":{\"type\":\"string\",\"enum\":[\"a\","
          "\"b\"]}}}"),
     "{\"spec\":{\"mode\":\"x\"}}",
     NULL,
     {{"spec.mode", KILN_SCHEMA_NOT_SUPPORTED,
       "Unsupported value: \"x\": supported values: \"a\", \"b\""}}},
    {SPEC("{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\",\"enum\":[1,2]}}}"),
     "{\"spec\":{\"n\":3}}",
     NULL,
     {{"spec.n", KILN_SCHEMA_NOT_SUPPORTED,
       "Unsupported value: 3: supported values: \"1\", "
       "\"2\""}}},
    {SPEC("{\"type\":\"object\",\"properties\":{\"replicas\":{\"type\":\"integer\",\"minimum\":0,"
          "\"maximum\":10}}}"),
     "{\"spec\":{\"replicas\":-1}}",
     NULL,
     {{"spec.replicas", KILN_SCHEMA_INVALID,
       "Invalid value: -1: spec.replicas in body should be greater than or equal to 0"}}},
    {SPEC("{\"type\":\"object\",\"properties\":{\"r\":{\"type\":\"number\",\"maximum\":1.5}}}"),
     "{\"spec\":{\"r\":2.25}}",
     NULL,
     {{"spec.r", KILN_SCHEMA_INVALID,
       "Invalid value: 2.25: spec.r in body should be less than or equal to 1.5"}}},
    {SPEC("{\"type\":\"object\",\"properties\":{\"r\":{\"type\":\"integer\",\"minimum\":0,"
          "\"exclusiveMinimum\":true,\"maximum\":5,\"exclusiveMaximum\":true}}}"),
     "{\"spec\":{\"r\":0}}",
     NULL,
     {{"spec.r", KILN_SCHEMA_INVALID,
       "Invalid value: 0: spec.r in body should be greater than "
       "0"}}},
    {SPEC("{\"type\":\"object\",\"properties\":{\"r\":{\"type\":\"integer\",\"maximum\":5,"
          "\"exclusiveMaximum\":true,\"multipleOf\":2}}}"),
     "{\"spec\":{\"r\":5}}",
     NULL,
     {{"spec.r", KILN_SCHEMA_INVALID, "Invalid value: 5: spec.r in body should be less than 5"},
      {"spec.r", KILN_SCHEMA_INVALID,
       "Invalid value: 5: spec.r in body should be a multiple of "
       "2"}}},
    {SPEC("{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"pattern\":\"^[a-"
          "z]+$\"}}}"),
     "{\"spec\":{\"name\":\"Bad\"}}",
     NULL,
     {{"spec.name", KILN_SCHEMA_INVALID,
       "Invalid value: \"Bad\": spec.name in body should match '^[a-z]+$'"}}},
    /* Lengths count runes: "héé" is 3 long, not 5. */
    {SPEC("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"maxLength\":3},\"b\":"
          "{\"type\":\"string\",\"maxLength\":2},\"c\":{\"type\":\"string\",\"minLength\":4}}}"),
     "{\"spec\":{\"a\":\"h\\u00e9\\u00e9\",\"b\":\"h\\u00e9\\u00e9\",\"c\":\"h\\u00e9\\u00e9\"}}",
     NULL,
     {{"spec.b", KILN_SCHEMA_TOO_LONG, "Too long: may not be longer than 2"},
      {"spec.c", KILN_SCHEMA_INVALID,
       "Invalid value: \"h\xc3\xa9\xc3\xa9\": spec.c in body should be at least 4 chars long"}}},
    {SPEC("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\",\"minItems\":2},\"b\":{"
          "\"type\":\"array\",\"maxItems\":2}}}"),
     "{\"spec\":{\"a\":[1],\"b\":[1,2,3]}}",
     NULL,
     {{"spec.a", KILN_SCHEMA_INVALID,
       "Invalid value: 1: spec.a in body should have at least 2 "
       "items"},
      {"spec.b", KILN_SCHEMA_TOO_MANY, "Too many: 3: must have at most 2 items"}}},
    {SPEC("{\"type\":\"object\",\"properties\":{\"tags\":{\"type\":\"array\",\"items\":{\"type\":"
          "\"string\"},\"x-kubernetes-list-type\":\"set\"}}}"),
     "{\"spec\":{\"tags\":[\"a\",\"b\",\"a\",\"b\"]}}",
     NULL,
     {{"spec.tags[2]", KILN_SCHEMA_DUPLICATE, "Duplicate value: \"a\""},
      {"spec.tags[3]", KILN_SCHEMA_DUPLICATE, "Duplicate value: \"b\""}}},
    {SPEC("{\"type\":\"object\",\"properties\":{\"ports\":{\"type\":\"array\","
          "\"x-kubernetes-list-type\":\"map\",\"x-kubernetes-list-map-keys\":[\"name\"],\"items\":"
          "{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{\"name\":{\"type\":"
          "\"string\"},\"port\":{\"type\":\"integer\"}}}}}}"),
     "{\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":80},{\"name\":\"http\",\"port\":81},{"
     "\"port\":\"x\"}]}}",
     NULL,
     {{"spec.ports[1]", KILN_SCHEMA_DUPLICATE,
       "Duplicate value: map[string]interface {}{\"name\":\"http\"}"},
      {"spec.ports[2].name", KILN_SCHEMA_REQUIRED, "Required value"},
      {"spec.ports[2].port", KILN_SCHEMA_TYPE_INVALID,
       "Invalid value: \"string\": spec.ports[2].port in body must be of type integer: "
       "\"string\""}}},
    {SPEC("{\"type\":\"object\",\"properties\":{\"tags\":{\"type\":\"array\",\"uniqueItems\":true}"
          "}}"),
     "{\"spec\":{\"tags\":[1,1]}}",
     NULL,
     {{"spec.tags", KILN_SCHEMA_INVALID,
       "Invalid value: \"\": spec.tags in body shouldn't contain duplicates"}}},
    {SPEC("{\"type\":\"object\",\"properties\":{\"labels\":{\"type\":\"object\","
          "\"additionalProperties\":{\"type\":\"string\"}}}}"),
     "{\"spec\":{\"labels\":{\"a\":1,\"b\":\"ok\"}}}",
     NULL,
     {{"spec.labels.a", KILN_SCHEMA_TYPE_INVALID,
       "Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\""}}},
    {SPEC("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"nullable\":true},"
          "\"b\":{\"type\":\"string\"}}}"),
     "{\"spec\":{\"a\":null,\"b\":null}}",
     NULL,
     {{"spec.b", KILN_SCHEMA_TYPE_INVALID,
       "Invalid value: \"null\": spec.b in body must be of type string: \"null\""}}},
    {SPEC("{\"type\":\"object\",\"properties\":{\"p\":{\"x-kubernetes-int-or-string\":true},"
          "\"q\":{\"x-kubernetes-int-or-string\":true},\"r\":{\"x-kubernetes-int-or-string\":true}"
          "}}"),
     "{\"spec\":{\"p\":80,\"q\":\"http\",\"r\":true}}",
     NULL,
     {{"spec.r", KILN_SCHEMA_TYPE_INVALID,
       "Invalid value: \"boolean\": spec.r in body must be of type integer,string: "
       "\"boolean\""}}},
    {SPEC("{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true,\"properties\":{"
          "\"n\":{\"type\":\"integer\"}}}"),
     "{\"spec\":{\"unknown\":{\"x\":1},\"n\":\"1\"}}",
     NULL,
     {{"spec.n", KILN_SCHEMA_TYPE_INVALID,
       "Invalid value: \"string\": spec.n in body must be of type integer: \"string\""}}},
    {SPEC("{\"type\":\"object\",\"properties\":{\"template\":{\"type\":\"object\","
          "\"x-kubernetes-embedded-resource\":true,\"x-kubernetes-preserve-unknown-fields\":true}"
          "}}"),
     "{\"spec\":{\"template\":{\"apiVersion\":\"v1\"}}}",
     NULL,
     {{"spec.template.kind", KILN_SCHEMA_REQUIRED, "Required value: must not be empty"}}},
    /* Order: required first, then properties by key, arrays by index. */
    {"{\"type\":\"object\",\"required\":[\"z\"],\"properties\":{\"z\":{\"type\":\"string\"},"
     "\"containers\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"name\"],"
     "\"properties\":{\"name\":{\"type\":\"string\"}}}},\"b\":{\"type\":\"boolean\"}}}",
     "{\"b\":\"no\",\"containers\":[{\"name\":\"a\"},{}]}",
     "spec",
     {{"spec.z", KILN_SCHEMA_REQUIRED, "Required value"},
      {"spec.b", KILN_SCHEMA_TYPE_INVALID,
       "Invalid value: \"string\": spec.b in body must be of type boolean: \"string\""},
      {"spec.containers[1].name", KILN_SCHEMA_REQUIRED, "Required value"}}},
    {"{\"type\":\"object\",\"minProperties\":2,\"maxProperties\":3}",
     "{\"a\":1}",
     "spec.m",
     {{"spec.m", KILN_SCHEMA_INVALID,
       "Invalid value: 1: spec.m in body should have at least 2 "
       "properties"}}},
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},"
     "\"additionalProperties\":false}",
     "{\"a\":1,\"b\":2}",
     "spec",
     {{"spec", KILN_SCHEMA_INVALID,
       "Invalid value: \"\": spec.b in body is a forbidden property"}}},
};

static void test_schema__validate_reports_api_server_messages(void **state)
{
    for (size_t i = 0; i < sizeof(validate_cases) / sizeof(*validate_cases); i++) {
        const validate_case *tc = &validate_cases[i];
        json_t *schema = ja_parse(tc->schema);
        json_t *value = ja_parse(tc->value);
        kiln_schema_errors errs = {0};
        size_t want = 0;
        while (want < 4 && tc->errors[want].field)
            want++;
        int rc = kiln_schema_validate(value, schema, tc->root, &errs);
        if (errs.len != want) {
            print_error("case %zu: %zu errors, want %zu\n", i, errs.len, want);
            for (size_t j = 0; j < errs.len; j++)
                print_error("  %s: %s (%s)\n", errs.items[j].field, errs.items[j].message,
                            errs.items[j].reason);
        }
        assert_int_equal(errs.len, want);
        assert_int_equal(rc, want ? KILN_EINVAL : 0);
        for (size_t j = 0; j < want; j++) {
            assert_string_equal(errs.items[j].field, tc->errors[j].field);
            assert_string_equal(errs.items[j].reason, tc->errors[j].reason);
            assert_string_equal(errs.items[j].message, tc->errors[j].message);
        }
        /* Without a list it still answers. */
        assert_int_equal(kiln_schema_validate(value, schema, tc->root, NULL), rc);
        kiln_schema_errors_free(&errs);
        json_decref(schema);
        json_decref(value);
    }
}

static void test_schema__errors_format_as_a_422_message(void **state)
{
    json_t *schema = ja_parse(SPEC("{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{"
                                   "\"name\":{\"type\":\"string\"},\"replicas\":{\"type\":"
                                   "\"integer\"}}}"));
    json_t *one = ja_parse("{\"spec\":{\"name\":\"a\",\"replicas\":\"x\"}}");
    json_t *two = ja_parse("{\"spec\":{\"replicas\":\"x\"}}");
    kiln_schema_errors errs = {0};
    assert_int_equal(kiln_schema_validate(one, schema, NULL, &errs), KILN_EINVAL);
    char *s = kiln_schema_error_string(&errs.items[0]);
    assert_string_equal(s, "spec.replicas: Invalid value: \"string\": spec.replicas in body must "
                           "be of type integer: \"string\"");
    free(s);
    s = kiln_schema_errors_format(&errs, "WebApp.kiln.dev", "demo");
    assert_string_equal(s, "WebApp.kiln.dev \"demo\" is invalid: spec.replicas: Invalid value: "
                           "\"string\": spec.replicas in body must be of type integer: "
                           "\"string\"");
    free(s);
    kiln_schema_errors_free(&errs);
    assert_int_equal(errs.len, 0);

    assert_int_equal(kiln_schema_validate(two, schema, NULL, &errs), KILN_EINVAL);
    /* The same error twice prints once, as field.ErrorList.ToAggregate does. */
    assert_int_equal(kiln_schema_validate(two, schema, NULL, &errs), KILN_EINVAL);
    assert_int_equal(errs.len, 4);
    s = kiln_schema_errors_format(&errs, "WebApp.kiln.dev", "demo");
    assert_string_equal(s, "WebApp.kiln.dev \"demo\" is invalid: [spec.name: Required value, "
                           "spec.replicas: Invalid value: \"string\": spec.replicas in body must "
                           "be of type integer: \"string\"]");
    free(s);
    kiln_schema_errors_free(&errs);
    json_decref(schema);
    json_decref(one);
    json_decref(two);
}

static const char *default_schema =
    "{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\",\"default\":{},"
    "\"properties\":{"
    "\"replicas\":{\"type\":\"integer\",\"default\":1},"
    "\"image\":{\"type\":\"string\",\"default\":\"nginx\"},"
    "\"maybe\":{\"type\":\"string\",\"nullable\":true,\"default\":\"d\"},"
    "\"gone\":{\"type\":\"string\"},"
    "\"ingress\":{\"type\":\"object\",\"default\":{},\"properties\":{\"enabled\":{\"type\":"
    "\"boolean\",\"default\":false},\"tls\":{\"type\":\"object\",\"default\":{},\"properties\":{"
    "\"port\":{\"type\":\"integer\",\"default\":443}}}}},"
    "\"ports\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"protocol\":{"
    "\"type\":\"string\",\"default\":\"TCP\"}}}},"
    "\"limits\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"object\","
    "\"properties\":{\"unit\":{\"type\":\"string\",\"default\":\"Gi\"}}}}}}}}";

static void test_schema__default_fills_missing_fields_recursively(void **state)
{
    json_t *schema = ja_parse(default_schema);
    json_t *v = ja_parse("{\"apiVersion\":\"kiln.dev/v1alpha1\"}");
    kiln_schema_default(v, schema);
    ja_assert_json(v, "{\"apiVersion\":\"kiln.dev/v1alpha1\",\"spec\":{\"replicas\":1,\"image\":"
                      "\"nginx\",\"maybe\":\"d\",\"ingress\":{\"enabled\":false,\"tls\":{\"port\":"
                      "443}}}}");
    json_decref(v);

    v = ja_parse(
        "{\"spec\":{\"replicas\":3,\"image\":null,\"maybe\":null,\"gone\":null,"
        "\"ingress\":{\"enabled\":true},\"ports\":[{\"name\":\"a\"},{\"protocol\":\"UDP\"}],"
        "\"limits\":{\"mem\":{\"size\":4}}}}");
    kiln_schema_default(v, schema);
    /* A null where the schema is not nullable takes the default or goes;
     * nullable keeps its null. */
    ja_assert_json(v, "{\"spec\":{\"replicas\":3,\"image\":\"nginx\",\"maybe\":null,"
                      "\"ingress\":{\"enabled\":true,\"tls\":{\"port\":443}},"
                      "\"ports\":[{\"name\":\"a\",\"protocol\":\"TCP\"},{\"protocol\":\"UDP\"}],"
                      "\"limits\":{\"mem\":{\"size\":4,\"unit\":\"Gi\"}}}}");
    json_decref(v);
    json_decref(schema);
}

static void test_schema__default_copies_the_default(void **state)
{
    json_t *schema = ja_parse("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\","
                              "\"default\":[\"x\"]}}}");
    json_t *v1 = json_object(), *v2 = json_object();
    kiln_schema_default(v1, schema);
    json_array_append_new(json_object_get(v1, "a"), json_string("y"));
    kiln_schema_default(v2, schema);
    ja_assert_json(v2, "{\"a\":[\"x\"]}");
    ja_assert_json(json_object_get(json_object_get(schema, "properties"), "a"),
                   "{\"type\":\"array\",\"default\":[\"x\"]}");
    json_decref(v1);
    json_decref(v2);
    json_decref(schema);
}

static void test_schema__prune_drops_unknown_fields(void **state)
{
    json_t *schema = ja_parse(
        "{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\",\"properties\":{"
        "\"name\":{\"type\":\"string\"},"
        "\"extra\":{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true,"
        "\"properties\":{\"inner\":{\"type\":\"object\",\"properties\":{\"k\":{\"type\":"
        "\"string\"}}}}},"
        "\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"id\":{"
        "\"type\":\"string\"}}}},"
        "\"labels\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"object\","
        "\"properties\":{\"v\":{\"type\":\"string\"}}}},"
        "\"free\":{\"type\":\"object\",\"additionalProperties\":true},"
        "\"template\":{\"type\":\"object\",\"x-kubernetes-embedded-resource\":true,"
        "\"properties\":{\"spec\":{\"type\":\"object\"}}}}}}}");
    json_t *v = ja_parse(
        "{\"apiVersion\":\"kiln.dev/v1alpha1\",\"kind\":\"WebApp\",\"metadata\":{\"name\":\"a\","
        "\"labels\":{\"x\":\"y\"}},\"junk\":1,"
        "\"spec\":{\"name\":\"n\",\"typo\":true,"
        "\"extra\":{\"anything\":{\"deep\":1},\"inner\":{\"k\":\"v\",\"drop\":1}},"
        "\"items\":[{\"id\":\"a\",\"x\":1},{\"y\":2}],"
        "\"labels\":{\"a\":{\"v\":\"1\",\"w\":\"2\"}},"
        "\"free\":{\"a\":{\"b\":1}},"
        "\"template\":{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},"
        "\"spec\":{},\"status\":{}}},"
        "\"status\":{\"x\":1}}");
    kiln_schema_prune(v, schema, true);
    ja_assert_json(v, "{\"apiVersion\":\"kiln.dev/v1alpha1\",\"kind\":\"WebApp\",\"metadata\":{"
                      "\"name\":\"a\",\"labels\":{\"x\":\"y\"}},"
                      "\"spec\":{\"name\":\"n\","
                      "\"extra\":{\"anything\":{\"deep\":1},\"inner\":{\"k\":\"v\"}},"
                      "\"items\":[{\"id\":\"a\"},{}],"
                      "\"labels\":{\"a\":{\"v\":\"1\"}},"
                      "\"free\":{\"a\":{\"b\":1}},"
                      "\"template\":{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
                      "\"p\"},\"spec\":{}}}}");
    json_decref(v);

    /* Not a resource root: apiVersion is just another unknown field. */
    v = ja_parse("{\"apiVersion\":\"v1\",\"name\":\"n\"}");
    kiln_schema_prune(v, json_object_get(json_object_get(schema, "properties"), "spec"), false);
    ja_assert_json(v, "{\"name\":\"n\"}");
    json_decref(v);
    json_decref(schema);
}

static bool matches(const char *pattern, const char *s)
{
    regex_t re;
    char why[128];
    if (kiln_schema_regcomp(&re, pattern, why, sizeof(why)) != 0)
        fail_msg("pattern %s does not compile: %s", pattern, why);
    bool ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static void test_schema__patterns_translate_common_re2_forms(void **state)
{
    assert_true(matches("^\\d+$", "123"));
    assert_false(matches("^\\d+$", "12a"));
    assert_false(matches("^\\d+$", "d"));
    assert_true(matches("^\\D\\S\\W$", "a-."));
    assert_true(matches("^[\\w.-]+$", "my_host.name-1"));
    assert_false(matches("^[\\w.-]+$", "a b"));
    assert_true(matches("^a\\sb$", "a b"));
    assert_true(matches("^[^\\s]+$", "abc"));
    assert_false(matches("^[^\\s]+$", "a c"));
    assert_true(matches("(?i)^abc$", "AbC"));
    assert_true(matches("^(?:ab|cd)+\\.x$", "abcd.x"));
    assert_false(matches("^(?:ab|cd)+\\.x$", "abcdqx"));
    assert_true(matches("^[]a]+$", "]a"));
    assert_true(matches("^[[:digit:]\\-]+$", "1-2"));
    assert_true(matches("^[a\\]]$", "]"));
    assert_false(matches("^[a\\]]$", "a]"));
    assert_true(matches("^[a\\-z]+$", "-az"));
    assert_false(matches("^[a\\-z]+$", "b"));
    assert_true(matches("^[\\^a]+$", "^a"));
    assert_false(matches("^[\\^a]+$", "b"));

    assert_true(matches("^a\\<b\\.c\\/d$", "a<b.c/d"));
    assert_false(matches("^a\\.c$", "abc"));
    assert_true(matches("^\\x41\\x2e$", "A."));
    assert_false(matches("^\\x41\\x2e$", "Ab"));
    assert_true(matches("^a\\tb$", "a\tb"));
    assert_true(matches("\\bword\\b", "a word here"));

    regex_t re;
    char why[128] = "";
    assert_int_equal(kiln_schema_regcomp(&re, "\\Aabc\\z", why, sizeof(why)), KILN_EINVAL);
    assert_string_equal(why, "unsupported escape \\A");
    assert_int_equal(kiln_schema_regcomp(&re, "^\\pL+$", why, sizeof(why)), KILN_EINVAL);
    assert_string_equal(why, "unsupported escape \\p");
    assert_int_equal(kiln_schema_regcomp(&re, "^[\\D]$", why, sizeof(why)), KILN_EINVAL);
    assert_string_equal(why, "unsupported escape \\D");
    assert_int_equal(kiln_schema_regcomp(&re, "a(b", why, sizeof(why)), KILN_EINVAL);
    assert_true(why[0] != '\0');
    assert_int_equal(kiln_schema_regcomp(&re, "\\p{L}+(", NULL, 0), KILN_EINVAL);
}

/* regcomp takes exponential time on stacked operators and huge counted
 * repetitions; RE2 (the real server's engine) refuses both, and so do we,
 * before regcomp sees them. */
static void test_schema__pathological_patterns_are_refused_before_regcomp(void **state)
{
    static const struct {
        const char *pattern, *why;
    } bad[] = {
        {"^[a-z1-]**********************************************$",
         "invalid nested repetition operator"},
        {"a+*", "invalid nested repetition operator"},
        {"a{2}{3}", "invalid nested repetition operator"},
        {"a{1001}", "repeat count over 1000"},
        {"a{1,2000}", "repeat count over 1000"},
        {"((a{1000}){1000})", "pattern too large once its repetitions are expanded"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        regex_t re;
        char why[128] = "";
        assert_int_equal(kiln_schema_regcomp(&re, bad[i].pattern, why, sizeof(why)), KILN_EINVAL);
        assert_string_equal(why, bad[i].why);
    }
    /* Lazy forms read as greedy ones (the same match set). */
    assert_true(matches("^a*?b$", "aab"));
    assert_true(matches("^(ab){2,3}$", "ababab"));
    assert_false(matches("^(ab){2,3}$", "ab"));
}

static void test_schema__uncompilable_pattern_is_not_enforced(void **state)
{
    json_t *schema = ja_parse("{\"type\":\"string\",\"pattern\":\"(?<name>x)\"}");
    json_t *v = json_string("anything");
    assert_int_equal(kiln_schema_validate(v, schema, "s", NULL), 0);
    json_decref(v);
    json_decref(schema);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema__validate_reports_api_server_messages),
        cmocka_unit_test(test_schema__errors_format_as_a_422_message),
        cmocka_unit_test(test_schema__default_fills_missing_fields_recursively),
        cmocka_unit_test(test_schema__default_copies_the_default),
        cmocka_unit_test(test_schema__prune_drops_unknown_fields),
        cmocka_unit_test(test_schema__patterns_translate_common_re2_forms),
        cmocka_unit_test(test_schema__pathological_patterns_are_refused_before_regcomp),
        cmocka_unit_test(test_schema__uncompilable_pattern_is_not_enforced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
