/* kiln-devcluster-bench: load generator for a running dev cluster.
 *
 *   kiln-devcluster-bench --port P [--pid PID] [--creates N] [--writers W] [--watchers K]
 *
 * W writer threads create N small ConfigMaps (keep-alive HTTP/1.1) while K
 * watchers stream the same collection. Each object carries the monotonic time
 * of its send; watcher 0 turns every event into a write->event latency.
 * Prints one JSON line: creates/s, latency percentiles, and with --pid the
 * server's RSS growth per object beyond its JSON size.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port;
static long creates = 20000;
static int writers = 4;
static int watchers = 10;
static long next_id;
static long long json_bytes;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long long *lat_ns;
static long nlat;
static long events_seen[64];

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("connect");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            perror("write");
            exit(1);
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Reads one HTTP/1.1 response with Content-Length; returns the status. */
static int read_response(int fd, long *body_len)
{
    static __thread char buf[65536];
    size_t have = 0;
    char *hdr_end = NULL;
    while (!hdr_end) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r <= 0)
            return -1;
        have += (size_t)r;
        buf[have] = '\0';
        hdr_end = strstr(buf, "\r\n\r\n");
    }
    int status = atoi(buf + 9);
    char *cl = strcasestr(buf, "Content-Length:");
    long len = cl ? atol(cl + 15) : 0;
    size_t body_have = have - (size_t)(hdr_end + 4 - buf);
    while ((long)body_have < len) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0)
            return -1;
        body_have += (size_t)r;
    }
    *body_len = len;
    return status;
}

static int request(int fd, const char *method, const char *path, const char *body, long *len)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, body ? strlen(body) : 0);
    send_all(fd, head, (size_t)n);
    if (body)
        send_all(fd, body, strlen(body));
    return read_response(fd, len);
}

static void *writer(void *arg)
{
    (void)arg;
    int fd = dial();
    char body[256];
    for (;;) {
        pthread_mutex_lock(&mu);
        long id = next_id < creates ? next_id++ : -1;
        pthread_mutex_unlock(&mu);
        if (id < 0)
            break;
        snprintf(body, sizeof body, "{\"metadata\":{\"name\":\"b%ld\"},\"data\":{\"t\":\"%lld\"}}",
                 id, now_ns());
        long len = 0;
        int st = request(fd, "POST", "/api/v1/namespaces/bench/configmaps", body, &len);
        if (st != 201) {
            fprintf(stderr, "create b%ld: status %d\n", id, st);
            exit(1);
        }
        __atomic_add_fetch(&json_bytes, len, __ATOMIC_RELAXED);
    }
    close(fd);
    return NULL;
}

static void *watcher(void *arg)
{
    long idx = (long)arg;
    int fd = dial();
    /* HTTP/1.0: the stream is close-delimited, one event per line. */
    const char *req = "GET /api/v1/namespaces/bench/configmaps?watch=true&resourceVersion=0 "
                      "HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    send_all(fd, req, strlen(req));
    static __thread char buf[1 << 16];
    size_t have = 0;
    bool in_body = false;
    while (events_seen[idx] < creates) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r <= 0)
            break;
        long long t_recv = now_ns();
        have += (size_t)r;
        buf[have] = '\0';
        char *p = buf;
        if (!in_body) {
            char *e = strstr(buf, "\r\n\r\n");
            if (!e)
                continue;
            p = e + 4;
            in_body = true;
        }
        char *nl;
        while ((nl = strchr(p, '\n'))) {
            *nl = '\0';
            char *t = strstr(p, "\"t\":\"");
            if (t) {
                events_seen[idx]++;
                if (idx == 0) {
                    long long sent = atoll(t + 5);
                    pthread_mutex_lock(&mu);
                    if (nlat < creates)
                        lat_ns[nlat++] = t_recv - sent;
                    pthread_mutex_unlock(&mu);
                }
            }
            p = nl + 1;
        }
        have = strlen(p);
        memmove(buf, p, have);
    }
    close(fd);
    return NULL;
}

static long rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int pid = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port"))
            port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--pid"))
            pid = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--creates"))
            creates = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--writers"))
            writers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--watchers"))
            watchers = atoi(argv[i + 1]);
    }
    if (!port || creates <= 0 || writers < 1 || watchers < 0 || watchers > 64) {
        fprintf(stderr,
                "usage: %s --port P [--pid PID] [--creates N] [--writers W] "
                "[--watchers K<=64]\n",
                argv[0]);
        return 2;
    }
    lat_ns = calloc((size_t)creates, sizeof *lat_ns);
    int fd = dial();
    long len;
    request(fd, "POST", "/api/v1/namespaces", "{\"metadata\":{\"name\":\"bench\"}}", &len);
    close(fd);
    long rss0 = pid ? rss_kb(pid) : -1;
    pthread_t wt[64], ct[256];
    for (long i = 0; i < watchers; i++)
        pthread_create(&wt[i], NULL, watcher, (void *)i);
    usleep(200000);
    long long t0 = now_ns();
    for (int i = 0; i < writers && i < 256; i++)
        pthread_create(&ct[i], NULL, writer, NULL);
    for (int i = 0; i < writers && i < 256; i++)
        pthread_join(ct[i], NULL);
    long long t1 = now_ns();
    for (long i = 0; i < watchers; i++)
        pthread_join(wt[i], NULL);
    long rss1 = pid ? rss_kb(pid) : -1;
    qsort(lat_ns, (size_t)nlat, sizeof *lat_ns, cmp_ll);
    double secs = (double)(t1 - t0) / 1e9;
    double p50 = nlat ? (double)lat_ns[nlat / 2] / 1e6 : -1;
    double p99 = nlat ? (double)lat_ns[(nlat * 99) / 100] / 1e6 : -1;
    double pmax = nlat ? (double)lat_ns[nlat - 1] / 1e6 : -1;
    printf("{\"creates\":%ld,\"writers\":%d,\"watchers\":%d,\"seconds\":%.3f,"
           "\"creates_per_sec\":%.0f,\"events_watcher0\":%ld,\"latency_ms_p50\":%.3f,"
           "\"latency_ms_p99\":%.3f,\"latency_ms_max\":%.3f",
           creates, writers, watchers, secs, (double)creates / secs, events_seen[0], p50, p99,
           pmax);
    if (pid)
        printf(",\"rss_kb_before\":%ld,\"rss_kb_after\":%ld,\"json_bytes\":%lld,"
               "\"overhead_bytes_per_object\":%.0f",
               rss0, rss1, json_bytes,
               ((double)(rss1 - rss0) * 1024.0 - (double)json_bytes) / (double)creates);
    printf("}\n");
    free(lat_ns);
    return 0;
}
