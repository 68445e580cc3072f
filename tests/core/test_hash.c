#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/hash.h"
#include "core/json.h"

static void test_hash__sha256_known_vectors(void **state)
{
    char hex[KILN_SHA256_HEX_LEN + 1];
    kiln_sha256_hex(hex, "abc", 3);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    kiln_sha256_hex(hex, "", 0);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    kiln_sha256_hex(hex, two, strlen(two));
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    unsigned char raw[32];
    kiln_sha256(raw, "abc", 3);
    assert_int_equal(raw[0], 0xba);
    assert_int_equal(raw[31], 0xad);
}

static void test_hash__json_hash_ignores_key_order(void **state)
{
    json_t *a = json_loads("{\"b\":1,\"a\":2}", 0, NULL);
    json_t *b = json_loads("{\"a\":2,\"b\":1}", 0, NULL);
    char ha[KILN_SHA256_HEX_LEN + 1], hb[KILN_SHA256_HEX_LEN + 1], ht[KILN_SHA256_HEX_LEN + 1];
    kiln_hash_json(ha, a);
    kiln_hash_json(hb, b);
    kiln_sha256_hex(ht, "{\"a\":2,\"b\":1}", strlen("{\"a\":2,\"b\":1}"));
    assert_string_equal(ha, hb);
    assert_string_equal(ha, ht);

    /* 1 and 1.0 are different documents, so they hash differently. */
    json_t *c = json_loads("{\"a\":2.0,\"b\":1}", 0, NULL);
    char hc[KILN_SHA256_HEX_LEN + 1];
    kiln_hash_json(hc, c);
    assert_string_not_equal(ha, hc);
    json_decref(a);
    json_decref(b);
    json_decref(c);

    kiln_hash_json(ht, NULL);
    assert_string_equal(ht, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_hash__fnv1a64_known_vectors(void **state)
{
    assert_true(kiln_fnv1a64("", 0) == 0xcbf29ce484222325ULL);
    assert_true(kiln_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(kiln_fnv1a64("foobar", 6) == 0x85944171f73967e8ULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash__sha256_known_vectors),
        cmocka_unit_test(test_hash__json_hash_ignores_key_order),
        cmocka_unit_test(test_hash__fnv1a64_known_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
