/* tests/support/json_assert.h: JSON fixtures and comparisons for cmocka tests
 * of any module. Header-only so each test stays one executable. */
#ifndef KILN_TESTS_SUPPORT_JSON_ASSERT_H
#define KILN_TESTS_SUPPORT_JSON_ASSERT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>

/* The JSON value in text, any type (new reference); a fixture that does not
 * parse fails the test. */
static inline json_t *ja_parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!v)
        fail_msg("fixture does not parse: %s: %s", jerr.text, text);
    return v;
}

/* Asserts that got (borrowed) equals the JSON in want_text, printing both as
 * compact, key-sorted JSON when they differ. */
static inline void ja_assert_json(const json_t *got, const char *want_text)
{
    json_t *want = ja_parse(want_text);
    if (!json_equal((json_t *)got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        print_error("got:  %s\nwant: %s\n", g ? g : "(null)", w);
        free(g);
        free(w);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

#endif
