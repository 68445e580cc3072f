/* tests/controller/test_queue.c: work queue semantics, on a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controller/queue.h"

static int64_t fake_now;

static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static kiln_queue *new_queue(double qps)
{
    fake_now = 1000;
    kiln_queue_opts o = {.qps = qps, .now_ms = fake_clock};
    return kiln_queue_new(&o);
}

/* Gets a key without waiting; NULL when none is ready. */
static char *take(kiln_queue *q)
{
    return kiln_queue_get(q, 0);
}

static void expect_take(kiln_queue *q, const char *want)
{
    char *k = take(q);
    assert_non_null(k);
    assert_string_equal(k, want);
    kiln_queue_done(q, k);
    free(k);
}

static void test_queue__deduplicates_queued_keys(void **state)
{
    (void)state;
    kiln_queue *q = new_queue(-1);
    kiln_queue_add(q, "a");
    kiln_queue_add(q, "a");
    kiln_queue_add(q, "b");
    kiln_queue_stats st;
    kiln_queue_get_stats(q, &st);
    assert_int_equal(st.depth, 2);
    assert_int_equal(st.adds, 3);
    expect_take(q, "a");
    expect_take(q, "b");
    assert_null(take(q));
    kiln_queue_free(q);
}

static void test_queue__dirty_while_processing_requeues_after_done(void **state)
{
    (void)state;
    kiln_queue *q = new_queue(-1);
    kiln_queue_add(q, "a");
    char *k = take(q);
    assert_string_equal(k, "a");
    kiln_queue_add(q, "a");
    kiln_queue_add(q, "a");
    /* Never handed to a second worker while the first holds it. */
    assert_null(take(q));
    kiln_queue_done(q, k);
    free(k);
    expect_take(q, "a");
    assert_null(take(q));
    kiln_queue_free(q);
}

static void test_queue__backoff_doubles_to_cap(void **state)
{
    (void)state;
    assert_int_equal(kiln_queue_backoff_ms(5, 1000000, 0), 5);
    assert_int_equal(kiln_queue_backoff_ms(5, 1000000, 1), 10);
    assert_int_equal(kiln_queue_backoff_ms(5, 1000000, 10), 5120);
    assert_int_equal(kiln_queue_backoff_ms(5, 1000000, 17), 655360);
    assert_int_equal(kiln_queue_backoff_ms(5, 1000000, 18), 1000000);
    assert_int_equal(kiln_queue_backoff_ms(5, 1000000, 200), 1000000);
}

static void test_queue__rate_limited_waits_and_forget_resets(void **state)
{
    (void)state;
    kiln_queue *q = new_queue(-1);
    kiln_queue_add_rate_limited(q, "a"); /* 5 ms */
    assert_int_equal(kiln_queue_requeues(q, "a"), 1);
    assert_null(take(q));
    fake_now += 4;
    assert_null(take(q));
    fake_now += 1;
    expect_take(q, "a");
    kiln_queue_add_rate_limited(q, "a"); /* 10 ms */
    fake_now += 9;
    assert_null(take(q));
    fake_now += 1;
    expect_take(q, "a");
    assert_int_equal(kiln_queue_requeues(q, "a"), 2);
    kiln_queue_forget(q, "a");
    assert_int_equal(kiln_queue_requeues(q, "a"), 0);
    kiln_queue_add_rate_limited(q, "a"); /* back to 5 ms */
    fake_now += 5;
    expect_take(q, "a");
    kiln_queue_stats st;
    kiln_queue_get_stats(q, &st);
    assert_int_equal(st.retries, 3);
    kiln_queue_free(q);
}

static void test_queue__bucket_limits_after_burst(void **state)
{
    (void)state;
    kiln_queue *q = new_queue(10); /* 10 qps, burst 100 */
    char key[16];
    for (int i = 0; i < 101; i++) {
        snprintf(key, sizeof(key), "k%03d", i);
        kiln_queue_add_rate_limited(q, key);
    }
    fake_now += 5;
    for (int i = 0; i < 100; i++) {
        char *k = take(q);
        assert_non_null(k);
        kiln_queue_done(q, k);
        free(k);
    }
    /* The 101st waits for a token: 1/10 s. */
    assert_null(take(q));
    fake_now += 94;
    assert_null(take(q));
    fake_now += 1;
    expect_take(q, "k100");
    kiln_queue_free(q);
}

static void test_queue__add_after_keeps_earliest(void **state)
{
    (void)state;
    kiln_queue *q = new_queue(-1);
    kiln_queue_add_after(q, "a", 100);
    kiln_queue_add_after(q, "a", 50);
    kiln_queue_add_after(q, "a", 500);
    fake_now += 49;
    assert_null(take(q));
    fake_now += 1;
    expect_take(q, "a");
    fake_now += 1000;
    assert_null(take(q)); /* one entry only */
    kiln_queue_free(q);
}

static void test_queue__shutdown_drains_then_ends(void **state)
{
    (void)state;
    kiln_queue *q = new_queue(-1);
    kiln_queue_add(q, "a");
    kiln_queue_add(q, "b");
    kiln_queue_add_after(q, "c", 10);
    kiln_queue_shutdown(q);
    kiln_queue_add(q, "d");
    assert_true(kiln_queue_shutting_down(q));
    char *k = kiln_queue_get(q, -1);
    assert_string_equal(k, "a");
    kiln_queue_done(q, k);
    free(k);
    k = kiln_queue_get(q, -1);
    assert_string_equal(k, "b");
    kiln_queue_done(q, k);
    free(k);
    fake_now += 100;
    assert_null(kiln_queue_get(q, -1));
    kiln_queue_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue__deduplicates_queued_keys),
        cmocka_unit_test(test_queue__dirty_while_processing_requeues_after_done),
        cmocka_unit_test(test_queue__backoff_doubles_to_cap),
        cmocka_unit_test(test_queue__rate_limited_waits_and_forget_resets),
        cmocka_unit_test(test_queue__bucket_limits_after_burst),
        cmocka_unit_test(test_queue__add_after_keeps_earliest),
        cmocka_unit_test(test_queue__shutdown_drains_then_ends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
