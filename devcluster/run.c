/* devcluster/run.c: the foreground program behind `kiln dev` and the
 * standalone kiln-devcluster: flags, logging, signals, clean shutdown. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "devcluster/devcluster.h"

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
            "usage: %s [flags]\n"
            "  --port N              port on 127.0.0.1 (default 0: any free port)\n"
            "  --data-dir DIR        keep state in DIR (write-ahead log, fsync); default: memory\n"
            "  --kubeconfig PATH     where to write the kubeconfig (default: DIR/kubeconfig,\n"
            "                        or ./kiln-dev.kubeconfig without --data-dir)\n"
            "  --simulate-gpus SPEC  GPU nodes, e.g. h100x8 or h100x8:2,a100x4; per item\n"
            "                        <model>x<gpus>[:<nodes>][:slow|:notready|:fail=<check>+...]\n"
            "  --gpucheck PATH       kiln-gpucheck for validation Jobs (default: beside this\n"
            "                        program, else on PATH)\n"
            "  --real-gpus           offer this machine's GPUs as node kiln-dev (probed with\n"
            "                        kiln-gpucheck --checks device at start)\n"
            "  --real-gpus-timeout S kill that probe after S seconds (default 10)\n"
            "  --tls                 serve HTTPS with a self-signed certificate\n"
            "  --kubelet-delay MS    simulated readiness delay (default 0: immediate)\n"
            "  --no-kubelet          do not simulate the kubelet and controllers' status\n"
            "  --max-body BYTES      request body limit (default 3145728)\n"
            "  --history N           watch events kept for resume (default 10000)\n"
            "  --bookmark-interval MS  watch bookmark interval (default 60000)\n"
            "  --wal-compact-bytes N rewrite the log once it grows by N bytes (default 64 MiB)\n"
            "  --log-level LEVEL     debug, info, warn, error, off (default info)\n",
            prog);
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !end || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int kiln_devcluster_main(int argc, char **argv)
{
    return kiln_devcluster_main_hooked(argc, argv, NULL);
}

int kiln_devcluster_main_hooked(int argc, char **argv, const kiln_devcluster_hooks *hooks)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"data-dir", required_argument, NULL, 'd'},
        {"kubeconfig", required_argument, NULL, 'k'},
        {"simulate-gpus", required_argument, NULL, 'g'},
        {"gpucheck", required_argument, NULL, 'G'},
        {"real-gpus", no_argument, NULL, 'R'},
        {"real-gpus-timeout", required_argument, NULL, 'T'},
        {"tls", no_argument, NULL, 't'},
        {"kubelet-delay", required_argument, NULL, 'D'},
        {"no-kubelet", no_argument, NULL, 'K'},
        {"max-body", required_argument, NULL, 'm'},
        {"history", required_argument, NULL, 'H'},
        {"bookmark-interval", required_argument, NULL, 'b'},
        {"log-level", required_argument, NULL, 'l'},
        {"wal-compact-bytes", required_argument, NULL, 'W'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *prog = argc > 0 && strcmp(argv[0], "dev") ? argv[0] : "kiln dev";
    kiln_devcluster_options o = {0};
    char kubeconfig[4096] = "";
    int level = KILN_LOG_INFO;
    optind = 1;
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (!parse_long(optarg, 0, 65535, &v)) {
                fprintf(stderr, "%s: --port: expected 0..65535, got \"%s\"\n", prog, optarg);
                return 2;
            }
            o.port = (int)v;
            break;
        case 'd':
            o.data_dir = optarg;
            break;
        case 'k':
            snprintf(kubeconfig, sizeof kubeconfig, "%s", optarg);
            break;
        case 'g':
            o.simulate_gpus = optarg;
            break;
        case 'G':
            o.gpucheck_path = optarg;
            break;
        case 'R':
            o.real_gpus = true;
            break;
        case 'T':
            if (!parse_long(optarg, 1, 600, &v)) {
                fprintf(stderr, "%s: --real-gpus-timeout: expected seconds 1..600, got \"%s\"\n",
                        prog, optarg);
                return 2;
            }
            o.real_gpus_timeout_s = (int)v;
            break;
        case 't':
            o.tls = true;
            break;
        case 'D':
            if (!parse_long(optarg, 0, 3600000, &v)) {
                fprintf(stderr, "%s: --kubelet-delay: expected milliseconds, got \"%s\"\n", prog,
                        optarg);
                return 2;
            }
            o.kubelet_delay_ms = (int)v;
            break;
        case 'K':
            o.no_kubelet = true;
            break;
        case 'm':
            if (!parse_long(optarg, 1024, 1L << 30, &v)) {
                fprintf(stderr, "%s: --max-body: expected 1024..1073741824\n", prog);
                return 2;
            }
            o.max_body = (size_t)v;
            break;
        case 'H':
            if (!parse_long(optarg, 1, 10000000, &v)) {
                fprintf(stderr, "%s: --history: expected 1..10000000\n", prog);
                return 2;
            }
            o.history = (size_t)v;
            break;
        case 'b':
            if (!parse_long(optarg, 10, 3600000, &v)) {
                fprintf(stderr, "%s: --bookmark-interval: expected milliseconds\n", prog);
                return 2;
            }
            o.bookmark_ms = (int)v;
            break;
        case 'W':
            if (!parse_long(optarg, 4096, 1L << 40, &v)) {
                fprintf(stderr, "%s: --wal-compact-bytes: expected 4096 or more\n", prog);
                return 2;
            }
            o.wal_compact = (size_t)v;
            break;
        case 'l':
            level = kiln_log_parse_level(optarg);
            if (level < 0) {
                fprintf(stderr, "%s: --log-level: unknown level \"%s\"\n", prog, optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout, prog);
            return 0;
        default:
            usage(stderr, prog);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument \"%s\"\n", prog, argv[optind]);
        return 2;
    }
    if (!kubeconfig[0])
        snprintf(kubeconfig, sizeof kubeconfig, "%s%s", o.data_dir ? o.data_dir : ".",
                 o.data_dir ? "/kubeconfig" : "/kiln-dev.kubeconfig");
    o.kubeconfig = kubeconfig;
    kiln_log_set_sink(kiln_log_sink_text, stderr);
    kiln_log_set_level((kiln_log_level)level);

    /* Block the stop signals in every thread; main waits for them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    kiln_err err = {0};
    kiln_devcluster *dc = NULL;
    if (kiln_devcluster_new(&dc, &o, &err) < 0 || kiln_devcluster_start(dc, &err) < 0) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        kiln_devcluster_stop(dc);
        return 1;
    }
    printf("kiln dev cluster listening on %s\nkubeconfig: %s\n", kiln_devcluster_url(dc),
           kubeconfig);
    fflush(stdout);
    if (hooks && hooks->started && hooks->started(dc, kubeconfig, hooks->userdata, &err) < 0) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        kiln_devcluster_stop(dc);
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "%s: signal %d, shutting down\n", prog, sig);
    if (hooks && hooks->stopping)
        hooks->stopping(hooks->userdata);
    kiln_devcluster_stop(dc);
    return 0;
}
