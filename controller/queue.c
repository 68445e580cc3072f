/* controller/queue.c: client-go's workqueue (de-duplication, dirty while
 * processing, delaying, rate limiting) in one mutex-guarded structure. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "controller/queue.h"
#include "controller/strmap.h"
#include "core/mem.h"
#include "kube/client.h"

typedef struct delayed {
    int64_t at;
    char *key; /* owned */
} delayed;

struct kiln_queue {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    kiln_queue_opts opts;
    /* FIFO of keys ready to hand out; each is also in `dirty`. */
    char **fifo;
    size_t head, len, cap;
    kiln_strmap dirty;      /* queued or to be queued after done; value unused */
    kiln_strmap processing; /* handed out, not done yet */
    kiln_strmap failures;   /* key -> (intptr_t) failures */
    kiln_strmap waiting;    /* key -> delayed * (the earliest pending time) */
    delayed **heap;         /* min-heap on at */
    size_t nheap, capheap;
    kiln_kube_ratelimit bucket;
    bool shutdown;
    uint64_t adds, retries;
};

static int64_t sys_now_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(kiln_queue *q)
{
    return q->opts.now_ms(q->opts.clock_ctx);
}

kiln_queue *kiln_queue_new(const kiln_queue_opts *opts)
{
    kiln_queue *q = kiln_xcalloc(1, sizeof(*q));
    if (opts)
        q->opts = *opts;
    if (q->opts.base_delay_ms <= 0)
        q->opts.base_delay_ms = 5;
    if (q->opts.max_delay_ms <= 0)
        q->opts.max_delay_ms = 1000 * 1000;
    if (q->opts.qps == 0)
        q->opts.qps = 10;
    if (q->opts.burst <= 0)
        q->opts.burst = 100;
    if (!q->opts.now_ms)
        q->opts.now_ms = sys_now_ms;
    kiln_kube_ratelimit_init(&q->bucket, q->opts.qps, q->opts.burst);
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &ca);
    pthread_condattr_destroy(&ca);
    kiln_strmap_init(&q->dirty);
    kiln_strmap_init(&q->processing);
    kiln_strmap_init(&q->failures);
    kiln_strmap_init(&q->waiting);
    return q;
}

void kiln_queue_free(kiln_queue *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->len; i++)
        kiln_xfree(q->fifo[(q->head + i) % q->cap]);
    kiln_xfree(q->fifo);
    for (size_t i = 0; i < q->nheap; i++) {
        kiln_xfree(q->heap[i]->key);
        kiln_xfree(q->heap[i]);
    }
    kiln_xfree(q->heap);
    kiln_strmap_clear(&q->dirty);
    kiln_strmap_clear(&q->processing);
    kiln_strmap_clear(&q->failures);
    kiln_strmap_clear(&q->waiting);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
    kiln_xfree(q);
}

static void fifo_push(kiln_queue *q, const char *key)
{
    if (q->len == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 64;
        char **n = kiln_xmalloc(ncap * sizeof(*n));
        for (size_t i = 0; i < q->len; i++)
            n[i] = q->fifo[(q->head + i) % q->cap];
        kiln_xfree(q->fifo);
        q->fifo = n;
        q->cap = ncap;
        q->head = 0;
    }
    q->fifo[(q->head + q->len) % q->cap] = kiln_xstrdup(key);
    q->len++;
}

/* Caller holds the lock. */
static void add_locked(kiln_queue *q, const char *key)
{
    if (q->shutdown)
        return;
    q->adds++;
    if (kiln_strmap_has(&q->dirty, key))
        return;
    kiln_strmap_put(&q->dirty, key, NULL);
    /* Being processed: queued again by done, never handed out twice. */
    if (kiln_strmap_has(&q->processing, key))
        return;
    fifo_push(q, key);
    pthread_cond_signal(&q->cond);
}

void kiln_queue_add(kiln_queue *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    add_locked(q, key);
    pthread_mutex_unlock(&q->lock);
}

static void heap_swap(kiln_queue *q, size_t a, size_t b)
{
    delayed *t = q->heap[a];
    q->heap[a] = q->heap[b];
    q->heap[b] = t;
}

static void heap_up(kiln_queue *q, size_t i)
{
    while (i > 0 && q->heap[(i - 1) / 2]->at > q->heap[i]->at) {
        heap_swap(q, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(kiln_queue *q, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < q->nheap && q->heap[l]->at < q->heap[m]->at)
            m = l;
        if (r < q->nheap && q->heap[r]->at < q->heap[m]->at)
            m = r;
        if (m == i)
            return;
        heap_swap(q, i, m);
        i = m;
    }
}

static size_t heap_index(kiln_queue *q, const delayed *d)
{
    for (size_t i = 0; i < q->nheap; i++)
        if (q->heap[i] == d)
            return i;
    return q->nheap;
}

static void add_after_locked(kiln_queue *q, const char *key, int64_t delay)
{
    if (q->shutdown)
        return;
    if (delay <= 0) {
        add_locked(q, key);
        return;
    }
    int64_t at = now_ms(q) + delay;
    delayed *d = kiln_strmap_get(&q->waiting, key);
    if (d) {
        /* client-go keeps the earliest time for a key already waiting. */
        if (at < d->at) {
            d->at = at;
            heap_up(q, heap_index(q, d));
        }
        return;
    }
    d = kiln_xmalloc(sizeof(*d));
    d->at = at;
    d->key = kiln_xstrdup(key);
    if (q->nheap == q->capheap) {
        q->capheap = q->capheap ? q->capheap * 2 : 64;
        q->heap = kiln_xrealloc(q->heap, q->capheap * sizeof(*q->heap));
    }
    q->heap[q->nheap++] = d;
    heap_up(q, q->nheap - 1);
    kiln_strmap_put(&q->waiting, key, d);
    pthread_cond_signal(&q->cond);
}

void kiln_queue_add_after(kiln_queue *q, const char *key, int64_t delay_ms)
{
    pthread_mutex_lock(&q->lock);
    add_after_locked(q, key, delay_ms);
    pthread_mutex_unlock(&q->lock);
}

int64_t kiln_queue_backoff_ms(int64_t base_ms, int64_t max_ms, int failures)
{
    int64_t d = base_ms;
    for (int i = 0; i < failures; i++) {
        if (d >= max_ms / 2) {
            d = max_ms;
            break;
        }
        d *= 2;
    }
    return d > max_ms ? max_ms : d;
}

void kiln_queue_add_rate_limited(kiln_queue *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    int failures = (int)(intptr_t)kiln_strmap_get(&q->failures, key);
    int64_t backoff = kiln_queue_backoff_ms(q->opts.base_delay_ms, q->opts.max_delay_ms, failures);
    kiln_strmap_put(&q->failures, key, (void *)(intptr_t)(failures + 1));
    int64_t bucket = 0;
    if (q->opts.qps > 0)
        bucket = kiln_kube_ratelimit_reserve(&q->bucket, now_ms(q));
    q->retries++;
    add_after_locked(q, key, backoff > bucket ? backoff : bucket);
    pthread_mutex_unlock(&q->lock);
}

void kiln_queue_forget(kiln_queue *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    kiln_strmap_del(&q->failures, key);
    pthread_mutex_unlock(&q->lock);
}

int kiln_queue_requeues(kiln_queue *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    int n = (int)(intptr_t)kiln_strmap_get(&q->failures, key);
    pthread_mutex_unlock(&q->lock);
    return n;
}

/* Moves delayed keys whose time came into the FIFO; returns ms until the next
 * one (-1 when none waits). */
static int64_t promote_locked(kiln_queue *q)
{
    int64_t now = now_ms(q);
    while (q->nheap > 0 && q->heap[0]->at <= now) {
        delayed *d = q->heap[0];
        q->heap[0] = q->heap[--q->nheap];
        heap_down(q, 0);
        kiln_strmap_del(&q->waiting, d->key);
        add_locked(q, d->key);
        kiln_xfree(d->key);
        kiln_xfree(d);
    }
    return q->nheap > 0 ? q->heap[0]->at - now : -1;
}

char *kiln_queue_get(kiln_queue *q, long timeout_ms)
{
    char *key = NULL;
    pthread_mutex_lock(&q->lock);
    int64_t deadline = timeout_ms >= 0 ? sys_now_ms(NULL) + timeout_ms : -1;
    for (;;) {
        int64_t next = q->shutdown ? -1 : promote_locked(q);
        if (q->len > 0)
            break;
        if (q->shutdown)
            goto out;
        int64_t wait = next;
        if (deadline >= 0) {
            int64_t left = deadline - sys_now_ms(NULL);
            if (left <= 0)
                goto out;
            if (wait < 0 || left < wait)
                wait = left;
        }
        if (wait < 0) {
            pthread_cond_wait(&q->cond, &q->lock);
        } else {
            /* A fake clock in tests does not move with real time: poll. */
            if (q->opts.now_ms != sys_now_ms && wait > 10)
                wait = 10;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&q->cond, &q->lock, &ts);
        }
    }
    key = q->fifo[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    kiln_strmap_del(&q->dirty, key);
    kiln_strmap_put(&q->processing, key, NULL);
out:
    pthread_mutex_unlock(&q->lock);
    return key;
}

void kiln_queue_done(kiln_queue *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    kiln_strmap_del(&q->processing, key);
    if (kiln_strmap_has(&q->dirty, key)) {
        fifo_push(q, key);
        pthread_cond_signal(&q->cond);
    }
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

void kiln_queue_shutdown(kiln_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->shutdown = true;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

bool kiln_queue_shutting_down(kiln_queue *q)
{
    pthread_mutex_lock(&q->lock);
    bool s = q->shutdown;
    pthread_mutex_unlock(&q->lock);
    return s;
}

void kiln_queue_get_stats(kiln_queue *q, kiln_queue_stats *out)
{
    pthread_mutex_lock(&q->lock);
    out->depth = q->len;
    out->delayed = q->nheap;
    out->adds = q->adds;
    out->retries = q->retries;
    pthread_mutex_unlock(&q->lock);
}
