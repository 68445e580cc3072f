/* The libcurl transport against a real HTTP/2 server (nghttpd, with a
 * certificate made by openssl at test time): concurrent requests from many
 * threads share one connection, a slow watch consumer pauses its own stream
 * only, and a cancelled stream ends promptly. Skips (77) without nghttpd or
 * openssl (scripts/deps.sh installs them). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "core/json.h"
#include "kube/client.h"
#include "kube/transport_curl.h"
#include "tests/kube/fake.h"

#define THREADS 8
#define GETS_PER_THREAD 20
#define FILES 4
#define BIG_SIZE (16u << 20)

static char dir[64];
static int port;
static pid_t server = -1;
static char *ca_pem;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The big file's byte at offset i: position-dependent, so a lost, repeated
 * or reordered chunk shows. */
static char big_byte(size_t i)
{
    return (char)('a' + (i * 7 + i / 4093) % 26);
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static int free_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof(a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return -1;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static bool listening(int p)
{
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)p);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static int setup(void **state)
{
    char cmd[512], path[128];
    snprintf(dir, sizeof(dir), "/tmp/kiln-mux-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(cmd, sizeof(cmd),
             "cd %s && mkdir -p www/api && openssl req -x509 -newkey ec -pkeyopt "
             "ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem -days 1 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >openssl.log 2>&1",
             dir);
    if (system(cmd) != 0)
        return -1;
    for (int i = 0; i < FILES; i++) {
        char body[64];
        int n = snprintf(body, sizeof(body), "{\"kind\":\"F\",\"n\":%d}", i);
        snprintf(path, sizeof(path), "%s/www/api/f%d.json", dir, i);
        write_file(path, body, (size_t)n);
    }
    char *big = kiln_xmalloc(BIG_SIZE);
    for (size_t i = 0; i < BIG_SIZE; i++)
        big[i] = big_byte(i);
    snprintf(path, sizeof(path), "%s/www/big.txt", dir);
    write_file(path, big, BIG_SIZE);
    kiln_xfree(big);

    snprintf(path, sizeof(path), "%s/cert.pem", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    ca_pem = kiln_xstrdup(buf);

    port = free_port();
    server = fork();
    if (server == 0) {
        char htdocs[128], portstr[16], key[128], cert[128], log[128];
        snprintf(htdocs, sizeof(htdocs), "--htdocs=%s/www", dir);
        snprintf(portstr, sizeof(portstr), "%d", port);
        snprintf(key, sizeof(key), "%s/key.pem", dir);
        snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
        snprintf(log, sizeof(log), "%s/nghttpd.log", dir);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp("nghttpd", "nghttpd", "--address=127.0.0.1", htdocs, portstr, key, cert,
               (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100 && !listening(port); i++)
        sleep_ms(50);
    return listening(port) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    if (server > 0) {
        kill(server, SIGTERM);
        waitpid(server, NULL, 0);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (dir[0] && system(cmd) != 0)
        return -1;
    kiln_xfree(ca_pem);
    return 0;
}

/* A client with the given transport mode; *tr (borrowed, owned by the
 * client) for its counters. */
static kiln_kube_client *client_for(kiln_kube_curl_mode mode, kiln_kube_transport *tr)
{
    char url[64];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", port);
    kiln_kube_config *cfg = kiln_kube_config_new(url);
    cfg->ca_pem = kiln_xstrdup(ca_pem);
    cfg->ca_len = strlen(ca_pem);
    kiln_err err = {0};
    kiln_kube_curl_opts co = {.mode = mode};
    assert_int_equal(kiln_kube_transport_curl_new_opts(tr, cfg, &co, &err), 0);
    kiln_kube_client_opts o = {.qps = -1, .timeout_ms = 10000};
    kiln_kube_client *c = NULL;
    assert_int_equal(kiln_kube_client_new(&c, cfg, *tr, &o, &err), 0);
    return c;
}

static int get_file(kiln_kube_client *c, int i, kiln_err *err)
{
    char path[32];
    json_t *out = NULL;
    snprintf(path, sizeof(path), "/api/f%d.json", i);
    int rc = kiln_kube_do(&out, c, "GET", path, NULL, NULL, 0, err);
    if (!rc && (json_integer_value(json_object_get(out, "n")) != i ||
                strcmp(kiln_json_get_string(out, "kind"), "F") != 0))
        rc = kiln_err_set(err, KILN_EINVAL, "%s: wrong body", path);
    json_decref(out);
    return rc;
}

typedef struct worker {
    kiln_kube_client *c;
    pthread_barrier_t *start;
    int index;
    int ok;
    kiln_err err;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    pthread_barrier_wait(w->start);
    for (int i = 0; i < GETS_PER_THREAD; i++) {
        if (get_file(w->c, (w->index + i) % FILES, &w->err) != 0)
            break;
        w->ok++;
    }
    return NULL;
}

/* nthreads x 20 GETs at once; returns the connections the transport opened. */
static uint64_t run_workers(kiln_kube_curl_mode mode, int nthreads)
{
    kiln_kube_transport tr;
    kiln_kube_client *c = client_for(mode, &tr);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)nthreads);
    worker w[THREADS] = {0};
    pthread_t th[THREADS];
    for (int i = 0; i < nthreads; i++) {
        w[i].c = c;
        w[i].start = &start;
        w[i].index = i;
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        if (w[i].ok != GETS_PER_THREAD)
            fail_msg("worker %d: %d GETs, then: %s", i, w[i].ok, w[i].err.msg);
    }
    pthread_barrier_destroy(&start);
    kiln_kube_curl_stats st;
    assert_true(kiln_kube_transport_curl_stats(&tr, &st));
    assert_int_equal(st.requests, nthreads * GETS_PER_THREAD);
    kiln_kube_client_free(c);
    return st.connects;
}

static void test_mux__concurrent_requests_share_one_h2_connection(void **state)
{
    uint64_t n = run_workers(KILN_KUBE_CURL_MULTIPLEX, THREADS);
    print_message("multiplexed: %d requests over %llu connection(s)\n", THREADS * GETS_PER_THREAD,
                  (unsigned long long)n);
    assert_int_equal(n, 1);
}

/* The same load without multiplexing needs more than one connection: what
 * makes the test above able to fail. */
static void test_mux__without_multiplexing_threads_open_more(void **state)
{
    uint64_t per_thread = run_workers(KILN_KUBE_CURL_PER_THREAD, THREADS);
    uint64_t nothing = run_workers(KILN_KUBE_CURL_NO_MULTIPLEX, THREADS);
    uint64_t seq = run_workers(KILN_KUBE_CURL_PER_THREAD, 1);
    print_message("per-thread, one thread: %llu connections for %d GETs\n", (unsigned long long)seq,
                  GETS_PER_THREAD);
    print_message("per-thread: %llu connections, multi without multiplexing: %llu\n",
                  (unsigned long long)per_thread, (unsigned long long)nothing);
    assert_true(per_thread > 1);
    assert_true(nothing > 1);
}

typedef struct big_reader {
    kiln_kube_client *c;
    size_t got;
    int calls;
    bool bad;
    long sleep_ms;
    int nested_rc;
    atomic_int *cancel_after_first; /* or NULL */
    int64_t cancelled_at;
} big_reader;

static int read_big(void *ctx, const char *data, size_t len, kiln_err *err)
{
    big_reader *r = ctx;
    for (size_t i = 0; i < len && !r->bad; i++)
        r->bad = data[i] != big_byte(r->got + i);
    r->got += len;
    if (r->calls++ == 0) {
        /* Let the I/O thread fill the buffer so the stream pauses, then make
         * requests from this callback: the connection must still carry
         * them (and a callback on the I/O thread would deadlock here). */
        sleep_ms(300);
        kiln_err e = {0};
        for (int i = 0; i < 5 && !r->nested_rc; i++)
            r->nested_rc = get_file(r->c, i % FILES, &e);
        if (r->cancel_after_first) {
            r->cancelled_at = now_ms();
            atomic_store(r->cancel_after_first, 1);
        }
    }
    if (r->sleep_ms)
        sleep_ms(r->sleep_ms);
    return 0;
}

static void test_mux__slow_stream_pauses_only_itself(void **state)
{
    kiln_kube_transport tr;
    kiln_kube_client *c = client_for(KILN_KUBE_CURL_MULTIPLEX, &tr);
    big_reader r = {.c = c};
    kiln_err err = {0};
    assert_int_equal(kiln_kube_stream(c, "/big.txt", 30000, read_big, &r, NULL, &err), 0);
    assert_int_equal(r.nested_rc, 0);
    assert_false(r.bad);
    assert_int_equal(r.got, BIG_SIZE);
    kiln_kube_curl_stats st;
    assert_true(kiln_kube_transport_curl_stats(&tr, &st));
    assert_true(st.pauses >= 1);
    assert_int_equal(st.connects, 1);
    kiln_kube_client_free(c);
}

static void test_mux__cancel_ends_a_stream_promptly(void **state)
{
    kiln_kube_transport tr;
    kiln_kube_client *c = client_for(KILN_KUBE_CURL_MULTIPLEX, &tr);
    atomic_int cancel = 0;
    /* 16 MiB at 1 MiB per 100 ms call would take over a second more. */
    big_reader r = {.c = c, .sleep_ms = 100, .cancel_after_first = &cancel};
    kiln_err err = {0};
    assert_int_equal(kiln_kube_stream(c, "/big.txt", 30000, read_big, &r, &cancel, &err), 0);
    int64_t ms = now_ms() - r.cancelled_at;
    print_message("cancelled stream returned after %lld ms\n", (long long)ms);
    assert_true(ms < 1500);
    assert_true(r.got < BIG_SIZE);
    assert_false(r.bad);
    /* The stream was reset, not the connection: the next request reuses it. */
    assert_int_equal(get_file(c, 1, &err), 0);
    kiln_kube_curl_stats st;
    assert_true(kiln_kube_transport_curl_stats(&tr, &st));
    assert_int_equal(st.connects, 1);
    kiln_kube_client_free(c);
}

static int refuse(void *ctx, const char *data, size_t len, kiln_err *err)
{
    (*(int *)ctx)++;
    return kiln_err_set(err, KILN_ELIMIT, "consumer refused %zu bytes", len);
}

/* on_data's error ends the stream with that error; an error answer is
 * collected and mapped; neither costs the connection. */
static void test_mux__stream_errors_keep_the_connection(void **state)
{
    kiln_kube_transport tr;
    kiln_kube_client *c = client_for(KILN_KUBE_CURL_MULTIPLEX, &tr);
    kiln_err err = {0};
    int calls = 0;
    assert_int_equal(kiln_kube_stream(c, "/big.txt", 30000, refuse, &calls, NULL, &err),
                     KILN_ELIMIT);
    assert_int_equal(calls, 1);
    assert_non_null(strstr(err.msg, "consumer refused"));
    json_t *out = NULL;
    assert_int_equal(kiln_kube_do(&out, c, "GET", "/api/missing.json", NULL, NULL, 0, &err),
                     KILN_ENOTFOUND);
    assert_null(out);
    assert_int_equal(kiln_kube_last_status()->http, 404);
    assert_int_equal(get_file(c, 2, &err), 0);
    kiln_kube_curl_stats st;
    assert_true(kiln_kube_transport_curl_stats(&tr, &st));
    assert_int_equal(st.requests, 3);
    assert_int_equal(st.connects, 1);
    kiln_kube_client_free(c);
}

int main(void)
{
    if (system("command -v nghttpd >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1")) {
        printf("SKIP: nghttpd (Debian nghttp2-server) or openssl is not installed\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mux__concurrent_requests_share_one_h2_connection),
        cmocka_unit_test(test_mux__without_multiplexing_threads_open_more),
        cmocka_unit_test(test_mux__slow_stream_pauses_only_itself),
        cmocka_unit_test(test_mux__cancel_ends_a_stream_promptly),
        cmocka_unit_test(test_mux__stream_errors_keep_the_connection),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
