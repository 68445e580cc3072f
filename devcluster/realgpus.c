/* devcluster/realgpus.c: --real-gpus, the machine's own GPUs as the node
 * kiln-dev.
 *
 * At start the dev cluster runs the local kiln-gpucheck (the binary its
 * validation Jobs run) with `--checks device --compact` and reads the "gpus"
 * and "host" of the document it prints (docs/gpu-validation.md section 3).
 * controllers.c then labels kiln-dev as GPU feature discovery would and gives
 * it nvidia.com/gpu, so validation Jobs pinned there run kiln-gpucheck on the
 * real cards. The probe is bounded: it is killed (its whole process group)
 * when it has not finished after its timeout, and its output is capped.
 * Nothing here touches the server's state; the caller owns the result.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/mem.h"
#include "devcluster/internal.h"

extern char **environ;

/* A device-check document is a few KiB even for 8 GPUs. */
#define MAX_OUTPUT ((size_t)1 << 20)

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* GFD's label form of a name: spaces become '-' ("NVIDIA H100 80GB HBM3" ->
 * "NVIDIA-H100-80GB-HBM3"); leading and trailing blanks go. */
static void label_form(char *out, size_t n, const char *in)
{
    while (*in == ' ' || *in == '\t' || *in == '\n')
        in++;
    snprintf(out, n, "%s", in);
    size_t len = strlen(out);
    while (len > 0 && (out[len - 1] == ' ' || out[len - 1] == '\t' || out[len - 1] == '\n'))
        out[--len] = '\0';
    for (char *p = out; *p; p++)
        if (*p == ' ' || *p == '\t')
            *p = '-';
}

/* "580.65.06" into up to n parts of at most 15 characters; "" for the rest. */
static void split_version(char (*parts)[16], size_t n, const char *v)
{
    for (size_t i = 0; i < n; i++)
        parts[i][0] = '\0';
    for (size_t i = 0; v && *v && i < n; i++) {
        size_t len = strcspn(v, ".");
        snprintf(parts[i], sizeof parts[i], "%.*s", (int)(len < 15 ? len : 15), v);
        v += len;
        if (*v == '.')
            v++;
    }
}

/* GFD's nvidia.com/gpu.machine: the DMI product name, when readable. */
static void read_machine(char *out, size_t n)
{
    out[0] = '\0';
    FILE *f = fopen("/sys/class/dmi/id/product_name", "re");
    if (!f)
        return;
    char line[128];
    if (fgets(line, sizeof line, f))
        label_form(out, n, line);
    fclose(f);
}

/* "8 x NVIDIA H100 80GB HBM3", or "1 x A, 2 x B" for mixed cards (in index order). */
static void summarize(char *out, size_t n, const json_t *gpus)
{
    size_t len = 0;
    out[0] = '\0';
    size_t i = 0, total = json_array_size(gpus);
    while (i < total && len < n) {
        const char *name = json_string_value(json_object_get(json_array_get(gpus, i), "name"));
        name = name ? name : "(unnamed GPU)";
        size_t j = i + 1;
        while (j < total) {
            const char *next = json_string_value(json_object_get(json_array_get(gpus, j), "name"));
            if (!next || strcmp(next, name))
                break;
            j++;
        }
        int w = snprintf(out + len, n - len, "%s%zu x %s", len ? ", " : "", j - i, name);
        if (w < 0)
            break;
        len += (size_t)w;
        i = j;
    }
}

/* Reads the document's GPUs into *out; KILN_ENOTFOUND with the probe's reason
 * when there are none. */
static int read_gpus(kiln_dc_gpu_info *out, const json_t *doc, int exit_code, kiln_err *err)
{
    const json_t *gpus = json_object_get(doc, "gpus");
    if (!json_is_array(gpus) || json_array_size(gpus) == 0) {
        const char *why = json_string_value(json_object_get(doc, "error"));
        if (!why)
            why = json_string_value(json_object_get(doc, "reason"));
        return kiln_err_set(err, KILN_ENOTFOUND, "kiln-gpucheck found no GPU (exit %d): %s",
                            exit_code, why ? why : "its document lists no gpus");
    }
    const json_t *g0 = json_array_get(gpus, 0);
    const char *name = json_string_value(json_object_get(g0, "name"));
    if (!json_is_object(g0) || !name || !*name)
        return kiln_err_set(err, KILN_EIO, "kiln-gpucheck: gpus[0].name: expected a string");
    /* Several kinds of card in one machine: the labels describe GPU 0, as
     * GFD's do; the count is all of them. */
    out->count = (int)json_array_size(gpus);
    label_form(out->product, sizeof out->product, name);
    json_t *mem = json_object_get(g0, "memoryBytes");
    out->memory_mib = json_is_integer(mem) && json_integer_value(mem) > 0
                          ? (long long)(json_integer_value(mem) / (1024 * 1024))
                          : 0;
    out->cc_major = out->cc_minor = -1;
    const char *cc = json_string_value(json_object_get(g0, "computeCapability"));
    int maj, min;
    char tail;
    if (cc && sscanf(cc, "%d.%d%c", &maj, &min, &tail) == 2 && maj >= 0 && maj < 100 && min >= 0 &&
        min < 100) {
        out->cc_major = maj;
        out->cc_minor = min;
    }
    const json_t *host = json_object_get(doc, "host");
    split_version(out->driver, 3, json_string_value(json_object_get(host, "driverVersion")));
    split_version(out->runtime, 2, json_string_value(json_object_get(host, "cudaDriverVersion")));
    read_machine(out->machine, sizeof out->machine);
    summarize(out->summary, sizeof out->summary, gpus);
    return 0;
}

/* Kills the probe and its children (its own process group) and reaps it. */
static void kill_probe(pid_t pid)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int kiln_dc_real_gpus_probe(kiln_dc_gpu_info *out, const char *gpucheck_opt, int timeout_s,
                            kiln_err *err)
{
    char why[600], tmo[16];
    char *binary = NULL;
    kiln_buf output;
    kiln_buf_init(&output, MAX_OUTPUT);
    json_t *doc = NULL;
    int fds[2] = {-1, -1};
    pid_t pid = 0;
    int rc = 0, status = 0;
    memset(out, 0, sizeof *out);
    if (timeout_s <= 0)
        timeout_s = 10;
    binary = kiln_dc_gpucheck_find(gpucheck_opt, why, sizeof why);
    if (!binary) {
        rc = kiln_err_set(err, KILN_ENOTFOUND, "%s (pass --gpucheck PATH)", why);
        goto done;
    }
    if (pipe2(fds, O_CLOEXEC) != 0) {
        rc = kiln_err_set(err, KILN_EIO, "pipe: %s", strerror(errno));
        goto done;
    }
    /* kiln-gpucheck takes --timeout 1..120. */
    snprintf(tmo, sizeof tmo, "%d", timeout_s < 120 ? timeout_s : 120);
    char *argv[] = {binary, "--checks", "device",   "--compact", "--timeout",
                    tmo,    "--node",   "kiln-dev", NULL};
    int e = kiln_dc_spawn(&pid, argv, environ, NULL, fds[1]);
    close(fds[1]);
    fds[1] = -1;
    if (e != 0) {
        pid = 0;
        rc = kiln_err_set(err, KILN_EIO, "cannot run %s: %s", binary, strerror(e));
        goto done;
    }
    int64_t deadline = mono_ms() + (int64_t)timeout_s * 1000;
    bool eof = false;
    /* Until the process has exited and its output is read, or the time is up.
     * A child of a stand-in may keep the pipe open after the process ended,
     * so the exit decides, and then the pipe is only drained. */
    while (pid > 0 || !eof) {
        int64_t left = deadline - mono_ms();
        if (pid > 0 && left <= 0) {
            kill_probe(pid);
            pid = 0;
            rc = kiln_err_set(err, KILN_ETIMEOUT,
                              "%s --checks device did not finish within %d s; killed it", binary,
                              timeout_s);
            goto done;
        }
        if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid) {
            pid = 0;
            fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
        }
        if (eof) {
            struct timespec nap = {0, 10 * 1000000};
            nanosleep(&nap, NULL);
            continue;
        }
        struct pollfd p = {fds[0], POLLIN, 0};
        if (pid > 0 && poll(&p, 1, left < 50 ? (int)left : 50) <= 0)
            continue;
        char chunk[4096];
        ssize_t n = read(fds[0], chunk, sizeof chunk);
        if (n > 0) {
            if ((rc = kiln_buf_append(&output, chunk, (size_t)n, err)) < 0) {
                kiln_err_set(err, rc, "%s --checks device printed more than %zu bytes", binary,
                             MAX_OUTPUT);
                goto done;
            }
        } else if (n == 0 || errno != EINTR) {
            /* The end, or (exited, non-blocking) nothing more to read. */
            eof = n == 0 || pid == 0;
        }
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    json_error_t je;
    doc = json_loadb(output.data ? output.data : "", output.len, 0, &je);
    if (!json_is_object(doc)) {
        rc = kiln_err_set(err, KILN_EIO,
                          "%s --checks device (exit %d) printed no JSON document%s%.120s", binary,
                          code, output.len ? ": " : "", output.len ? output.data : "");
        goto done;
    }
    rc = read_gpus(out, doc, code, err);
done:
    if (pid > 0)
        kill_probe(pid);
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    json_decref(doc);
    kiln_buf_free(&output);
    kiln_xfree(binary);
    return rc;
}
