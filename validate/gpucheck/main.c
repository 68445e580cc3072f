/* kiln-gpucheck: GPU smoke tests for one node.
 *
 * Runs the selected checks on every visible GPU (or simulates them from the
 * thresholds data), judges the results with the validate library, prints the
 * full JSON document on stdout and leaves a compact summary of at most 4,096
 * bytes in the termination log, where the controller reads it. Exit status:
 * 0 every check passed, 1 a check failed, 2 nothing could be judged (no GPU,
 * no CUDA in this build, unknown accelerator, bad flags). Interface and
 * formats: docs/gpu-validation.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/mem.h"
#include "validate/evaluate.h"
#include "validate/gpucheck/backend.h"
#include "validate/measured.h"
#include "validate/simulate.h"
#include "validate/summary.h"
#include "validate/thresholds.h"

#define DEFAULT_TERMINATION_LOG "/dev/termination-log"
#define MAX_LIST 16

typedef struct options {
    const char *accelerator;
    const char *checks[MAX_LIST + 1];
    const char *fail_checks[MAX_LIST + 1];
    int expect_gpus;
    int gpus;
    double memory_fraction;
    double timeout_s;
    const char *node;
    const char *thresholds;
    const char *termination_log;
    bool termination_log_explicit;
    const char *simulate;
    const char *simulate_hang;
    double watchdog_s;
    bool plant_memory_error;
    bool list;
    bool compact;
    char *lists_storage[2]; /* strdup'd flag values the lists point into */
} options;

static const char usage[] =
    "usage: kiln-gpucheck [options]\n"
    "  --accelerator NAME      thresholds to judge against (h100, h200, a100, l40s, b200, ...);\n"
    "                          default: guessed from the device name (with --simulate: HW)\n"
    "  --checks LIST           comma-separated: device,memory,hbm-bandwidth,gemm,pcie,p2p\n"
    "                          (default: all)\n"
    "  --expect-gpus N         the node must show exactly N GPUs (default: at least one)\n"
    "  --memory-fraction F     share of each GPU's memory the memory check covers (0.5)\n"
    "  --timeout SECONDS       time bound of each check (10)\n"
    "  --node NAME             node name for reports (default: $NODE_NAME, else hostname)\n"
    "  --thresholds PATH       thresholds file or directory (default: compiled in)\n"
    "  --termination-log PATH  where the summary goes (default: /dev/termination-log when\n"
    "                          writable)\n"
    "  --simulate HW           do not touch a GPU: report what healthy HW cards would show\n"
    "                          (figures from HW's thresholds data), judged by --accelerator\n"
    "  --simulate-fail LIST    with --simulate: make these checks fail on the last GPU\n"
    "  --gpus N                with --simulate: number of GPUs (default: --expect-gpus, else 1)\n"
    "  --simulate-hang CHECK   with --simulate: hang in CHECK until the watchdog fires\n"
    "  --watchdog SECONDS      end a check that has not returned after this long\n"
    "                          (default: 3 x --timeout + 10)\n"
    "  --plant-memory-error    corrupt one word before verifying (proves the memory check)\n"
    "  --list-accelerators     print the known accelerators and aliases as JSON\n"
    "  --compact               one-line JSON on stdout\n"
    "exit status: 0 passed, 1 a check failed, 2 could not run\n";

/* Set before each check; the SIGALRM handler may only write these out. */
static char *watchdog_stdout;
static char *watchdog_summary;
static const char *watchdog_log_path;
static int watchdog_log_flags;
static volatile sig_atomic_t watchdog_exit = 1;

static void on_alarm(int sig)
{
    (void)sig;
    if (watchdog_stdout) {
        ssize_t r = write(STDOUT_FILENO, watchdog_stdout, strlen(watchdog_stdout));
        (void)r;
    }
    if (watchdog_summary && watchdog_log_path) {
        int fd = open(watchdog_log_path, watchdog_log_flags, 0644);
        if (fd >= 0) {
            ssize_t r = write(fd, watchdog_summary, strlen(watchdog_summary));
            (void)r;
            close(fd);
        }
    }
    _exit(watchdog_exit);
}

static int split_list(const char **out, char **storage, const char *value, const char *flag,
                      kiln_err *err)
{
    kiln_xfree(*storage);
    *storage = kiln_xstrdup(value);
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(*storage, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (!*tok)
            continue;
        if (strcmp(tok, "all") == 0) {
            for (size_t k = 0; k < KILN_VALIDATE_N_CHECKS && n < MAX_LIST; k++)
                out[n++] = kiln_validate_checks[k];
            continue;
        }
        if (!kiln_validate_is_check(tok))
            return kiln_err_set(err, KILN_EINVAL,
                                "%s: unknown check \"%s\" (expected device, memory, "
                                "hbm-bandwidth, gemm, pcie, p2p or all)",
                                flag, tok);
        if (n == MAX_LIST)
            return kiln_err_set(err, KILN_EINVAL, "%s: too many checks", flag);
        out[n++] = tok;
    }
    out[n] = NULL;
    if (n == 0)
        return kiln_err_set(err, KILN_EINVAL, "%s: empty list", flag);
    return 0;
}

static int parse_number(double *out, const char *value, const char *flag, double lo, double hi,
                        kiln_err *err)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || !(v >= lo && v <= hi))
        return kiln_err_set(err, KILN_EINVAL, "%s: \"%s\" is not a number in [%g, %g]", flag, value,
                            lo, hi);
    *out = v;
    return 0;
}

static int parse_args(options *o, int argc, char **argv, kiln_err *err)
{
    int rc = 0, first = 0;
    kiln_err one = {0};
    o->memory_fraction = 0.5;
    o->timeout_s = 10;
    o->termination_log = DEFAULT_TERMINATION_LOG;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        double d;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            exit(0);
        } else if (strcmp(a, "--version") == 0) {
            printf("kiln-gpucheck %s (%s)\n", KILN_VERSION, kiln_gpucheck_backend_get()->name);
            exit(0);
        } else if (strcmp(a, "--plant-memory-error") == 0) {
            o->plant_memory_error = true;
            takes = false;
        } else if (strcmp(a, "--list-accelerators") == 0) {
            o->list = true;
            takes = false;
        } else if (strcmp(a, "--compact") == 0) {
            o->compact = true;
            takes = false;
        } else if (!v) {
            if (strncmp(a, "--", 2) == 0 && a[2])
                rc = kiln_err_set(&one, KILN_EINVAL, "%s: needs a value (see --help)", a);
            else
                rc = kiln_err_set(&one, KILN_EINVAL, "unexpected argument \"%s\" (see --help)", a);
            takes = false;
        } else if (strcmp(a, "--accelerator") == 0) {
            o->accelerator = v;
        } else if (strcmp(a, "--checks") == 0) {
            rc = split_list(o->checks, &o->lists_storage[0], v, a, &one);
        } else if (strcmp(a, "--simulate-fail") == 0) {
            rc = split_list(o->fail_checks, &o->lists_storage[1], v, a, &one);
        } else if (strcmp(a, "--expect-gpus") == 0) {
            if (!(rc = parse_number(&d, v, a, 1, 64, &one)))
                o->expect_gpus = (int)d;
        } else if (strcmp(a, "--gpus") == 0) {
            if (!(rc = parse_number(&d, v, a, 1, 64, &one)))
                o->gpus = (int)d;
        } else if (strcmp(a, "--memory-fraction") == 0) {
            rc = parse_number(&o->memory_fraction, v, a, 0.01, 0.9, &one);
        } else if (strcmp(a, "--timeout") == 0) {
            rc = parse_number(&o->timeout_s, v, a, 1, 120, &one);
        } else if (strcmp(a, "--node") == 0) {
            o->node = v;
        } else if (strcmp(a, "--thresholds") == 0) {
            o->thresholds = v;
        } else if (strcmp(a, "--termination-log") == 0) {
            o->termination_log = v;
            o->termination_log_explicit = true;
        } else if (strcmp(a, "--simulate-hang") == 0) {
            o->simulate_hang = v;
            if (!kiln_validate_is_check(v))
                rc = kiln_err_set(&one, KILN_EINVAL, "%s: unknown check \"%s\"", a, v);
        } else if (strcmp(a, "--watchdog") == 0) {
            rc = parse_number(&o->watchdog_s, v, a, 1, 3600, &one);
        } else if (strcmp(a, "--simulate") == 0) {
            o->simulate = v;
        } else {
            rc = kiln_err_set(&one, KILN_EINVAL, "unknown option \"%s\" (see --help)", a);
            takes = strncmp(a, "--", 2) == 0 && strncmp(v, "--", 2) != 0;
        }
        /* Keep going after a bad flag, so --node and --termination-log
         * later on the line still say where the error report goes. */
        if (rc && !first) {
            first = rc;
            kiln_err_set(err, rc, "%s", one.msg);
        }
        rc = 0;
        if (takes)
            i++;
    }
    if (first)
        return first;
    if (o->fail_checks[0] && !o->simulate)
        return kiln_err_set(err, KILN_EINVAL, "--simulate-fail needs --simulate");
    if (o->simulate_hang && !o->simulate)
        return kiln_err_set(err, KILN_EINVAL, "--simulate-hang needs --simulate");
    if (o->gpus && !o->simulate)
        return kiln_err_set(err, KILN_EINVAL,
                            "--gpus needs --simulate (a real run uses every visible GPU)");
    if (o->fail_checks[0] && o->checks[0]) {
        for (const char **f = o->fail_checks; *f; f++) {
            bool found = false;
            for (const char **c = o->checks; *c; c++)
                found = found || strcmp(*c, *f) == 0;
            if (!found)
                return kiln_err_set(err, KILN_EINVAL,
                                    "--simulate-fail %s: that check is not in --checks", *f);
        }
    }
    return 0;
}

static const char *node_name(const options *o, char *buf, size_t n)
{
    if (o->node && *o->node)
        return o->node;
    const char *env = getenv("NODE_NAME");
    if (env && *env)
        return env;
    if (gethostname(buf, n) == 0) {
        buf[n - 1] = '\0';
        return buf;
    }
    return "(unknown)";
}

/* Writes the summary where Kubernetes looks for it. The default path exists
 * only inside a pod, so failing to open it elsewhere is normal and silent;
 * an explicit --termination-log that cannot be written is worth a warning. */
static void write_termination_log(const options *o, const char *text)
{
    int flags = O_WRONLY | O_TRUNC | O_CLOEXEC | (o->termination_log_explicit ? O_CREAT : 0);
    int fd = open(o->termination_log, flags, 0644);
    if (fd < 0) {
        if (o->termination_log_explicit)
            fprintf(stderr, "kiln-gpucheck: cannot write %s: %s\n", o->termination_log,
                    strerror(errno));
        return;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fprintf(stderr, "kiln-gpucheck: writing %s: %s\n", o->termination_log, strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    close(fd);
}

static char *dump(const json_t *doc, bool compact)
{
    size_t flags = JSON_REAL_PRECISION(10) | (compact ? JSON_COMPACT : JSON_INDENT(2));
    char *s = json_dumps(doc, flags);
    if (!s)
        abort(); /* only on out-of-memory: every string went through jstr */
    return s;
}

/* Attaches the report to the document and sets its outcome fields. Both
 * borrowed; doc gains a reference to report. */
static void finish_doc(json_t *doc, json_t *report)
{
    json_object_set(doc, "evaluation", report);
    json_object_set(doc, "result", json_object_get(report, "result"));
    json_object_set(doc, "exitCode", json_object_get(report, "exitCode"));
    json_object_set(doc, "reason", json_object_get(report, "reason"));
}

/* Prints doc, writes the summary of report and returns the exit status. */
static int emit(const options *o, json_t *doc, json_t *report)
{
    kiln_err err = {0};
    char *summary = NULL;
    finish_doc(doc, report);
    char *text = dump(doc, o->compact);
    puts(text);
    fflush(stdout);
    free(text);
    if (kiln_validate_summary_build(&summary, report, &err) == 0) {
        write_termination_log(o, summary);
        free(summary);
    } else {
        fprintf(stderr, "kiln-gpucheck: %s\n", err.msg);
    }
    return kiln_validate_report_exit_code(report);
}

static int fail_to_run(const options *o, json_t *doc, const char *node, const char *accel,
                       const char *reason)
{
    json_t *report = kiln_validate_report_error(node, accel, o->simulate != NULL, reason);
    if (!doc)
        doc = kiln_validate_measured_new(node, accel, o->simulate ? o->simulate : o->accelerator,
                                         o->simulate != NULL);
    else
        json_incref(doc);
    json_object_set_new(doc, "error",
                        json_string(json_string_value(json_object_get(report, "reason"))));
    int code = emit(o, doc, report);
    json_decref(report);
    json_decref(doc);
    return code;
}

/* Prepares what the watchdog prints if check hangs: the run so far, with
 * this check failed for not finishing (exit 1). Without thresholds yet (the
 * probe, before the accelerator is known) nothing can be judged: exit 2. */
static void arm_watchdog(const options *o, const json_t *doc, const kiln_threshold_accel *acc,
                         const kiln_validate_eval_opts *eopts, const char *check, unsigned seconds)
{
    json_t *copy = json_deep_copy(doc);
    json_t *report = NULL;
    char *summary = NULL;
    char why[128];
    snprintf(why, sizeof(why), "%s did not finish within %u s (watchdog); the GPU may be hung",
             acc ? "the check" : "finding the GPUs", seconds);
    if (acc) {
        json_t *c = kiln_validate_measured_add_check(copy, check);
        kiln_validate_measured_set_status(c, "error", why);
        if (kiln_validate_evaluate(&report, copy, acc, eopts, NULL) != 0)
            report = NULL;
    }
    if (!report) {
        report = kiln_validate_report_error(eopts->node, NULL, false, why);
        json_object_set_new(copy, "error", json_string(why));
    }
    finish_doc(copy, report);
    kiln_validate_summary_build(&summary, report, NULL);
    char *out = dump(copy, true);
    char *old_out = watchdog_stdout, *old_sum = watchdog_summary;
    sigset_t set, prev;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    sigprocmask(SIG_BLOCK, &set, &prev);
    watchdog_stdout = kiln_xasprintf("%s\n", out);
    watchdog_summary = summary;
    watchdog_log_path = o->termination_log;
    watchdog_log_flags =
        O_WRONLY | O_TRUNC | O_CLOEXEC | (o->termination_log_explicit ? O_CREAT : 0);
    watchdog_exit = kiln_validate_report_exit_code(report);
    sigprocmask(SIG_SETMASK, &prev, NULL);
    free(old_out);
    free(old_sum);
    free(out);
    json_decref(report);
    json_decref(copy);
    alarm(seconds);
}

static unsigned watchdog_seconds(const options *o)
{
    return o->watchdog_s > 0 ? (unsigned)o->watchdog_s : (unsigned)(o->timeout_s * 3) + 10;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool selected(const options *o, const char *check)
{
    if (!o->checks[0])
        return true;
    for (const char *const *c = o->checks; *c; c++)
        if (strcmp(*c, check) == 0)
            return true;
    return false;
}

static int list_accelerators(const kiln_thresholds *cat, bool compact)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < cat->len; i++) {
        const kiln_threshold_accel *a = &cat->items[i];
        json_t *e = json_object();
        json_object_set_new(e, "name", json_string(a->name));
        json_object_set_new(e, "description", json_string(a->description));
        json_t *al = json_array();
        for (size_t j = 0; j < a->n_aliases; j++)
            json_array_append_new(al, json_string(a->aliases[j]));
        json_object_set_new(e, "aliases", al);
        json_array_append_new(arr, e);
    }
    char *s = dump(arr, compact);
    puts(s);
    free(s);
    json_decref(arr);
    return 0;
}

int main(int argc, char **argv)
{
    options o = {0};
    kiln_err err = {0};
    kiln_thresholds cat = {0};
    json_t *doc = NULL, *report = NULL;
    char host[256];
    int code = 2;
    const char *node = NULL;

    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (parse_args(&o, argc, argv, &err)) {
        fprintf(stderr, "kiln-gpucheck: %s\n", err.msg);
        node = node_name(&o, host, sizeof(host));
        code = fail_to_run(&o, NULL, node, NULL, err.msg);
        goto done;
    }
    node = node_name(&o, host, sizeof(host));
    int rc = o.thresholds ? kiln_thresholds_load_path(&cat, o.thresholds, &err)
                          : kiln_thresholds_load_builtin(&cat, &err);
    if (rc) {
        code = fail_to_run(&o, NULL, node, NULL, err.msg);
        goto done;
    }
    if (o.list) {
        code = list_accelerators(&cat, o.compact);
        goto done;
    }

    /* --simulate names the hardware that is simulated, --accelerator the
     * thresholds it is judged by (default: its own), so a mismatch between
     * the Job's accelerator and the node's cards can be played out. */
    const char *requested = o.accelerator ? o.accelerator : o.simulate;
    const kiln_threshold_accel *acc = NULL, *hw = NULL;
    for (int pass = 0; pass < 2; pass++) {
        const char *name = pass ? requested : o.simulate;
        const kiln_threshold_accel **slot = pass ? &acc : &hw;
        if (!name)
            continue;
        *slot = kiln_thresholds_find(&cat, name);
        if (!*slot) {
            char why[KILN_ERR_MSG_MAX];
            snprintf(why, sizeof(why),
                     "unknown accelerator \"%.64s\"%s (kiln-gpucheck --list-accelerators shows "
                     "the known ones)",
                     name, pass ? "" : " in --simulate");
            code = fail_to_run(&o, NULL, node, NULL, why);
            goto done;
        }
    }
    const char **checks = o.checks[0] ? o.checks : NULL;
    kiln_validate_eval_opts eopts = {node, o.expect_gpus, checks};

    if (o.simulate) {
        kiln_validate_sim_opts sopts = {
            node,
            requested,
            o.gpus ? o.gpus : o.expect_gpus,
            checks,
            o.fail_checks[0] ? o.fail_checks : NULL,
        };
        if (kiln_validate_simulate(&doc, hw, &sopts, &err)) {
            code = fail_to_run(&o, NULL, node, acc->name, err.msg);
            goto done;
        }
        /* The document describes what is judged; the simulated cards stay
         * visible in the GPU entries and here. */
        json_object_set_new(doc, "accelerator", json_string(acc->name));
        json_object_set_new(doc, "simulatedHardware", json_string(hw->name));
        if (o.simulate_hang) {
            /* Exercises the watchdog as a hung kernel would: the checks from
             * the hanging one on never report, and only the signal ends the
             * process. */
            json_t *list = json_object_get(doc, "checks");
            size_t k = 0;
            while (k < json_array_size(list) &&
                   strcmp(json_string_value(json_object_get(json_array_get(list, k), "name")),
                          o.simulate_hang) != 0)
                k++;
            while (json_array_size(list) > k)
                json_array_remove(list, k);
            signal(SIGALRM, on_alarm);
            arm_watchdog(&o, doc, acc, &eopts, o.simulate_hang, watchdog_seconds(&o));
            for (;;)
                pause();
        }
    } else {
        const kiln_gpucheck_backend *be = kiln_gpucheck_backend_get();
        doc = kiln_validate_measured_new(node, acc ? acc->name : NULL, requested, false);
        signal(SIGALRM, on_alarm);
        /* Creating a CUDA context can hang on a broken driver or fabric
         * manager: the probe gets a watchdog too. */
        arm_watchdog(&o, doc, acc, &eopts, "device", 60);
        rc = be->probe(doc, &err);
        alarm(0);
        if (rc) {
            code = fail_to_run(&o, doc, node, acc ? acc->name : NULL, err.msg);
            goto done;
        }
        if (!acc) {
            json_t *g0 = json_array_get(json_object_get(doc, "gpus"), 0);
            const char *product = json_string_value(json_object_get(g0, "name"));
            acc = kiln_thresholds_match_product(&cat, product);
            if (!acc) {
                char why[KILN_ERR_MSG_MAX];
                snprintf(why, sizeof(why),
                         "cannot tell which thresholds fit \"%.80s\": pass --accelerator",
                         product ? product : "(no name)");
                code = fail_to_run(&o, doc, node, NULL, why);
                goto done;
            }
            json_object_set_new(doc, "accelerator", json_string(acc->name));
        }
        kiln_gpucheck_config cfg = {o.timeout_s, o.memory_fraction, o.plant_memory_error};
        for (size_t k = 0; k < KILN_VALIDATE_N_CHECKS; k++) {
            const char *check = kiln_validate_checks[k];
            if (!selected(&o, check))
                continue;
            /* The checks stop themselves when their time is spent; the
             * watchdog is for a kernel or driver call that never returns. */
            arm_watchdog(&o, doc, acc, &eopts, check, watchdog_seconds(&o));
            double t0 = now_s();
            be->run(doc, check, &cfg);
            alarm(0);
            json_t *entry = json_array_get(json_object_get(doc, "checks"),
                                           json_array_size(json_object_get(doc, "checks")) - 1);
            if (entry && !json_object_get(entry, "durationMs"))
                json_object_set_new(entry, "durationMs",
                                    json_integer((json_int_t)((now_s() - t0) * 1000)));
        }
    }

    if (kiln_validate_evaluate(&report, doc, acc, &eopts, &err)) {
        code = fail_to_run(&o, doc, node, acc->name, err.msg);
        goto done;
    }
    code = emit(&o, doc, report);
done:
    json_decref(report);
    json_decref(doc);
    kiln_thresholds_free(&cat);
    kiln_xfree(o.lists_storage[0]);
    kiln_xfree(o.lists_storage[1]);
    free(watchdog_stdout);
    free(watchdog_summary);
    return code;
}
