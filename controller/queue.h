/* controller/queue.h: the rate-limited work queue, with client-go's semantics.
 *
 * Items are string keys. A key is never handed to two workers at once: adding
 * a key that is already queued is a no-op (de-duplication), and adding a key
 * that a worker is processing marks it dirty, so it is queued again when that
 * worker calls kiln_queue_done. kiln_queue_add_rate_limited delays a key by the
 * larger of a per-key exponential backoff (5 ms doubling per failure, capped at
 * 1000 s) and an overall token bucket (10 qps, burst 100): client-go's default
 * controller rate limiter. kiln_queue_forget resets a key's failures.
 *
 * The queue copies keys; kiln_queue_get returns a new string the caller passes
 * to kiln_queue_done and then frees. The queue is thread-safe.
 */
#ifndef KILN_CONTROLLER_QUEUE_H
#define KILN_CONTROLLER_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kiln_queue kiln_queue;

typedef struct kiln_queue_opts {
    int64_t base_delay_ms; /* 0: 5 */
    int64_t max_delay_ms;  /* 0: 1,000,000 (1000 s) */
    double qps;            /* 0: 10; negative: no bucket */
    int burst;             /* 0: 100 */
    /* Monotonic clock in ms; NULL: the system's. Tests drive time with it. */
    int64_t (*now_ms)(void *ctx);
    void *clock_ctx;
} kiln_queue_opts;

typedef struct kiln_queue_stats {
    size_t depth;     /* keys ready to be handed out */
    size_t delayed;   /* keys waiting for their time */
    uint64_t adds;    /* workqueue_adds_total */
    uint64_t retries; /* workqueue_retries_total */
} kiln_queue_stats;

/* New queue (kiln_queue_free). opts may be NULL. */
kiln_queue *kiln_queue_new(const kiln_queue_opts *opts);
/* Frees the queue and every key in it; NULL allowed. */
void kiln_queue_free(kiln_queue *q);

/* key is borrowed (copied). Ignored after shutdown. */
void kiln_queue_add(kiln_queue *q, const char *key);
/* Adds key once delay_ms passed (<= 0: now). An earlier pending time wins. */
void kiln_queue_add_after(kiln_queue *q, const char *key, int64_t delay_ms);
/* Adds key after the rate limiter's delay, counting one more failure. */
void kiln_queue_add_rate_limited(kiln_queue *q, const char *key);
/* Resets key's failure count. */
void kiln_queue_forget(kiln_queue *q, const char *key);
/* How many times key was added rate-limited since the last forget. */
int kiln_queue_requeues(kiln_queue *q, const char *key);

/* The next key (new string), waiting up to timeout_ms (negative: forever).
 * NULL on timeout, or once the queue is shut down and drained. */
char *kiln_queue_get(kiln_queue *q, long timeout_ms);
/* Marks key (borrowed) processed; a key added meanwhile is queued again. */
void kiln_queue_done(kiln_queue *q, const char *key);

/* Stops accepting keys; kiln_queue_get hands out what is still queued (the
 * drain) and then returns NULL. Delayed keys are dropped. */
void kiln_queue_shutdown(kiln_queue *q);
bool kiln_queue_shutting_down(kiln_queue *q);

void kiln_queue_get_stats(kiln_queue *q, kiln_queue_stats *out);

/* The per-key exponential backoff alone: base * 2^failures, capped. */
int64_t kiln_queue_backoff_ms(int64_t base_ms, int64_t max_ms, int failures);

#endif
