#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/utf8.h"

static void test_utf8__decode_accepts_each_length(void **state)
{
    uint32_t cp = 0;
    assert_int_equal(kiln_utf8_decode(&cp, "A", 1), 1);
    assert_int_equal(cp, 'A');
    assert_int_equal(kiln_utf8_decode(&cp, "\xc3\xa9", 2), 2);
    assert_int_equal(cp, 0xE9);
    assert_int_equal(kiln_utf8_decode(&cp, "\xe2\x82\xac!", 4), 3);
    assert_int_equal(cp, 0x20AC);
    assert_int_equal(kiln_utf8_decode(&cp, "\xf4\x8f\xbf\xbf", 4), 4);
    assert_int_equal(cp, 0x10FFFF);
}

static void test_utf8__decode_rejects_invalid_forms(void **state)
{
    uint32_t cp = 0;
    assert_int_equal(kiln_utf8_decode(&cp, "", 0), 0);
    assert_int_equal(kiln_utf8_decode(&cp, "\x80", 1), 0);             /* lone continuation */
    assert_int_equal(kiln_utf8_decode(&cp, "\xc0\xaf", 2), 0);         /* overlong '/' */
    assert_int_equal(kiln_utf8_decode(&cp, "\xe0\x80\xaf", 3), 0);     /* overlong, 3 bytes */
    assert_int_equal(kiln_utf8_decode(&cp, "\xed\xa0\x80", 3), 0);     /* surrogate D800 */
    assert_int_equal(kiln_utf8_decode(&cp, "\xf4\x90\x80\x80", 4), 0); /* past U+10FFFF */
    assert_int_equal(kiln_utf8_decode(&cp, "\xf8\x88\x80\x80", 4), 0); /* 5-byte lead */
    assert_int_equal(kiln_utf8_decode(&cp, "\xe2\x82\xac", 2), 0);     /* cut short */
    assert_int_equal(kiln_utf8_decode(&cp, "\xe2\x82x", 3), 0);        /* not continued */
}

static void test_utf8__clean_replaces_each_bad_byte(void **state)
{
    char s[] = "ok \xc3\xa9 \xff \xe2\x82 \xed\xa0\x80 \xf0\x9f\x98\x80 \xc3";
    kiln_utf8_clean(s);
    assert_string_equal(s, "ok \xc3\xa9 ? ?? ??? \xf0\x9f\x98\x80 ?");
    char empty[] = "";
    kiln_utf8_clean(empty);
    assert_string_equal(empty, "");
}

static void test_utf8__count_counts_characters_not_bytes(void **state)
{
    assert_int_equal(kiln_utf8_count(""), 0);
    assert_int_equal(kiln_utf8_count("abc"), 3);
    assert_int_equal(kiln_utf8_count("h\xc3\xa9llo \xe2\x82\xac"), 7);
    assert_true(kiln_utf8_is_continuation(0x80));
    assert_false(kiln_utf8_is_continuation(0xc3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8__decode_accepts_each_length),
        cmocka_unit_test(test_utf8__decode_rejects_invalid_forms),
        cmocka_unit_test(test_utf8__clean_replaces_each_bad_byte),
        cmocka_unit_test(test_utf8__count_counts_characters_not_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
