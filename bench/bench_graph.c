/* bench/bench_graph.c: how fast kiln compiles and renders, and how much
 * memory `kiln render` needs.
 *
 * usage: bench_graph FIXTURES_DIR [KILN_BINARY]
 * (FIXTURES_DIR is bench/fixtures: the shipped examples are found from it.)
 *
 * Prints one machine-readable line per benchmark:
 *   bench <name> <metric>=<value> ... target_<metric>=<bound> ok|miss
 * ("info" instead of a verdict for lines that have no target). renders_per_s
 * is iterations over their total time on one thread, so it includes the tail
 * the median hides.
 * and always exits 0 when it could run: benchmarks inform, they never fail a
 * build (STYLE.md). A fixture that does not load or compile prints
 * "bench <name> error=..." and the rest still run.
 *
 * Timings are wall-clock medians on one thread (CLOCK_MONOTONIC), after a
 * short warm-up, so a noisy neighbour moves the tail, not the median.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/yaml.h"
#include "graph/graph.h"
#include "lua/sandbox.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(v[0]), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Loads dir/name: the RGD (first document) and the first instance (second),
 * both new references. */
static int load_fixture(json_t **rgd, json_t **instance, const char *dir, const char *name,
                        kiln_err *err)
{
    char path[4096];
    json_t *docs = NULL;
    int rc;

    *rgd = *instance = NULL;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    rc = kiln_yaml_load_file(&docs, path, NULL, err);
    if (rc < 0)
        goto out;
    if (json_array_size(docs) < 2) {
        rc = kiln_err_set(err, KILN_EINVAL, "%s: expected an RGD and an instance", path);
        goto out;
    }
    *rgd = json_incref(json_array_get(docs, 0));
    *instance = json_incref(json_array_get(docs, 1));
out:
    json_decref(docs);
    return rc;
}

static void report_errs(const char *bench, const kiln_errs *errs)
{
    printf("bench %s error=\"%s\"\n", bench, errs->len ? errs->items[0].msg : "does not compile");
}

/* Compiles the 100-resource RGD as the controller does on an RGD change (a
 * temporary Lua state, dry render included). With skip_dry_render, the same
 * without the dry render: informational, it shows where the time goes. */
static void bench_compile(const char *dir, const char *name, bool skip_dry_render)
{
    const size_t iters = 50;
    const double target_ms = 10;
    kiln_graph_options go = {.skip_dry_render = skip_dry_render};
    json_t *rgd = NULL, *inst = NULL;
    double *t = calloc(iters, sizeof(double));
    kiln_err err = {0};

    if (load_fixture(&rgd, &inst, dir, "rgd-100.yaml", &err) < 0) {
        printf("bench %s error=\"%s\"\n", name, err.msg);
        goto out;
    }
    for (size_t i = 0; i < iters + 3; i++) {
        kiln_graph *g = NULL;
        kiln_errs errs = {0};
        double t0 = now_ms();
        int rc = kiln_graph_compile(&g, rgd, &go, &errs);
        double dt = now_ms() - t0;
        if (rc < 0) {
            report_errs(name, &errs);
            kiln_errs_free(&errs);
            goto out;
        }
        kiln_graph_free(g);
        kiln_errs_free(&errs);
        if (i >= 3)
            t[i - 3] = dt;
    }
    double m = median(t, iters);
    if (skip_dry_render)
        printf("bench %s resources=100 iterations=%zu median_ms=%.3f info\n", name, iters, m);
    else
        printf("bench %s resources=100 iterations=%zu median_ms=%.3f target_ms=%g %s\n", name,
               iters, m, target_ms, m < target_ms ? "ok" : "miss");
out:
    free(t);
    json_decref(rgd);
    json_decref(inst);
}

/* Renders fixture's instance iters times in one Lua state (as a controller
 * worker does) and prints the median. */
/* Renders inst through rgd (both borrowed) offline iters times and prints
 * the line; the median (ms) goes to *median_out (-1 when it could not run). */
static void render_objects(const char *name, const json_t *rgd, const json_t *inst, size_t iters,
                           double target_ms, double target_per_s, double *median_out)
{
    kiln_graph *g = NULL;
    kiln_lua *L = kiln_lua_new(NULL);
    kiln_errs errs = {0};
    kiln_err err = {0};
    double *t = calloc(iters, sizeof(double));
    size_t objects = 0;

    if (median_out)
        *median_out = -1;
    kiln_graph_options go = {.lua = L};
    if (kiln_graph_compile(&g, rgd, &go, &errs) < 0) {
        report_errs(name, &errs);
        goto out;
    }
    kiln_render_options ro = {.offline = true};
    size_t warmup = iters / 20 + 1;
    double total = 0;
    for (size_t i = 0; i < iters + warmup; i++) {
        kiln_render_result *r = NULL;
        double t0 = now_ms();
        int rc = kiln_graph_render(&r, g, L, inst, NULL, &ro, &err);
        double dt = now_ms() - t0;
        if (rc < 0) {
            printf("bench %s error=\"%s\"\n", name, err.msg);
            goto out;
        }
        if (i == 0) {
            for (size_t k = 0; k < r->nnodes; k++) {
                const json_t *d = r->nodes[k].desired;
                if (r->nodes[k].state == KILN_NODE_ERROR) {
                    printf("bench %s error=\"%s: %s\"\n", name, r->nodes[k].id,
                           r->nodes[k].message ? r->nodes[k].message : "failed");
                    kiln_render_result_free(r);
                    goto out;
                }
                objects += json_is_array(d) ? json_array_size(d) : d != NULL;
            }
        }
        kiln_render_result_free(r);
        if (i >= warmup) {
            t[i - warmup] = dt;
            total += dt;
        }
    }
    double m = median(t, iters);
    printf("bench %s objects=%zu iterations=%zu median_ms=%.3f target_ms=%g", name, objects, iters,
           m, target_ms);
    bool ok = m < target_ms;
    if (target_per_s > 0) {
        double per_s = 1000.0 * (double)iters / total;
        printf(" mean_ms=%.3f renders_per_s=%.0f target_renders_per_s=%g", total / (double)iters,
               per_s, target_per_s);
        ok = ok && per_s > target_per_s;
    }
    printf(" %s\n", ok ? "ok" : "miss");
    if (median_out)
        *median_out = m;
out:
    if (g)
        kiln_graph_unbind(g, L);
    kiln_graph_free(g);
    kiln_lua_free(L);
    kiln_errs_free(&errs);
    free(t);
}

static void bench_render(const char *dir, const char *fixture, const char *name, size_t iters,
                         double target_ms, double target_per_s)
{
    json_t *rgd = NULL, *inst = NULL;
    kiln_err err = {0};
    if (load_fixture(&rgd, &inst, dir, fixture, &err) < 0)
        printf("bench %s error=\"%s\"\n", name, err.msg);
    else
        render_objects(name, rgd, inst, iters, target_ms, target_per_s, NULL);
    json_decref(rgd);
    json_decref(inst);
}

typedef struct shipped_totals {
    double total, worst;
    char worst_name[300];
    size_t n;
} shipped_totals;

/* Renders every instance document of inst_path through the RGD of rgd_path. */
static void shipped_one(shipped_totals *t, const char *label, const char *rgd_path,
                        const char *inst_path)
{
    json_t *rgds = NULL, *insts = NULL;
    kiln_err err = {0};
    char name[300];
    if (kiln_yaml_load_file(&rgds, rgd_path, NULL, &err) < 0 ||
        kiln_yaml_load_file(&insts, inst_path, NULL, &err) < 0) {
        printf("bench render_shipped_%s error=\"%s\"\n", label, err.msg);
        goto out;
    }
    size_t i;
    json_t *inst;
    json_array_foreach(insts, i, inst)
    {
        double m = -1;
        snprintf(name, sizeof(name), "render_shipped_%s_%s", label,
                 json_string_value(json_object_get(json_object_get(inst, "metadata"), "name")));
        render_objects(name, json_array_get(rgds, 0), inst, 200, 2, 0, &m);
        if (m < 0)
            continue;
        t->total += m;
        t->n++;
        if (m > t->worst) {
            t->worst = m;
            snprintf(t->worst_name, sizeof(t->worst_name), "%s", name);
        }
    }
out:
    json_decref(rgds);
    json_decref(insts);
}

/* Every shipped example and recipe example (rgd.yaml plus instance.yaml per
 * directory; the runtime examples beside their RGD), each instance rendered
 * offline: one line each (target 2 ms), then the total of the medians and
 * the slowest. */
static void bench_shipped(const char *src)
{
    static const char *const dirs[] = {"examples/web-app",
                                       "examples/fan-out",
                                       "examples/script-node",
                                       "examples/chain",
                                       "examples/gpu-service",
                                       "recipes/inference/inference-stack",
                                       "recipes/inference/pd-disaggregation",
                                       "recipes/inference/wide-ep",
                                       "recipes/inference/vllm-service",
                                       "recipes/inference/kserve"};
    static const char *const runtime[] = {"eks-h100-inference-argocd", "gke-h100-training-flux",
                                          "aks-gb200-inference-dynamo-flux",
                                          "self-managed-l40s-inference-argocd"};
    shipped_totals t = {0};
    char rgd[8192], inst[8192];
    for (size_t k = 0; k < sizeof(dirs) / sizeof(dirs[0]); k++) {
        snprintf(rgd, sizeof(rgd), "%s/%s/rgd.yaml", src, dirs[k]);
        snprintf(inst, sizeof(inst), "%s/%s/instance.yaml", src, dirs[k]);
        shipped_one(&t, strrchr(dirs[k], '/') + 1, rgd, inst);
    }
    snprintf(rgd, sizeof(rgd), "%s/recipes/runtime/cluster-runtime.rgd.yaml", src);
    for (size_t k = 0; k < sizeof(runtime) / sizeof(runtime[0]); k++) {
        snprintf(inst, sizeof(inst), "%s/recipes/runtime/examples/%s.instance.yaml", src,
                 runtime[k]);
        shipped_one(&t, "cluster-runtime", rgd, inst);
    }
    printf("bench render_shipped_all instances=%zu total_ms=%.3f slowest=%s slowest_ms=%.3f "
           "target_ms=2 %s\n",
           t.n, t.total, t.worst_name, t.worst, t.n && t.worst < 2 ? "ok" : "miss");
}

/* Runs `kiln render` on the 100-resource fixture as a child and reads its
 * peak resident set from getrusage(RUSAGE_CHILDREN). */
static void bench_rss(const char *dir, const char *kiln)
{
    const char *name = "render_rss_rgd_100";
    const double target_mb = 20;
    char path[4096];

    snprintf(path, sizeof(path), "%s/rgd-100.yaml", dir);
    pid_t pid = fork();
    if (pid < 0) {
        printf("bench %s error=\"fork: %s\"\n", name, strerror(errno));
        return;
    }
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(126);
        execl(kiln, kiln, "render", "-f", path, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) {
        printf("bench %s error=\"waitpid: %s\"\n", name, strerror(errno));
        return;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("bench %s error=\"kiln render exited with status %d\"\n", name,
               WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return;
    }
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    double mb = (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
    printf("bench %s max_rss_mb=%.1f target_mb=%g %s\n", name, mb, target_mb,
           mb < target_mb ? "ok" : "miss");
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: bench_graph FIXTURES_DIR [KILN_BINARY]\n");
        return 2;
    }
    const char *dir = argv[1];
    /* Line-buffered so results show up as each benchmark finishes. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_compile(dir, "compile_rgd_100", false);
    bench_compile(dir, "compile_rgd_100_no_dry_render", true);
    bench_render(dir, "stack-15.yaml", "render_stack_15", 2000, 1, 1000);
    bench_render(dir, "foreach-1000.yaml", "render_foreach_1000", 20, 50, 0);
    char src[4096];
    snprintf(src, sizeof(src), "%s/../..", dir);
    bench_shipped(src);
    if (argc == 3)
        bench_rss(dir, argv[2]);
    else
        printf("bench render_rss_rgd_100 skipped=\"no kiln binary in this build\"\n");
    return 0;
}
