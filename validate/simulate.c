#include "validate/simulate.h"

#include <stdio.h>
#include <string.h>

#include "validate/measured.h"

#define SIM_MAX_GPUS 64

static bool listed(const char *const *list, const char *name)
{
    for (; list && *list; list++)
        if (strcmp(*list, name) == 0)
            return true;
    return false;
}

/* A healthy figure for GPU g (or pair g->p): typical x achievable, lowered by
 * 0.2% per index so a report does not show eight identical numbers. */
static double healthy(const kiln_threshold_metric *m, int g, int p)
{
    int k = g + (p > 0 ? p : 0);
    return m->achievable * m->typical * (1.0 - 0.002 * k);
}

/* What a slow card shows: well under the floor, so the failure is obvious. */
static double slow(const kiln_threshold_metric *m)
{
    return m->achievable * m->floor * 0.6;
}

static void sim_device(json_t *c, const kiln_threshold_accel *acc, int n, bool fail)
{
    char name[160], cc[16];
    snprintf(name, sizeof(name), "NVIDIA %s", acc->products[0]);
    snprintf(cc, sizeof(cc), "%d.%d", acc->cc_major, acc->cc_minor);
    kiln_validate_measured_value(c, "count", -1, -1, n, NULL);
    for (int g = 0; g < n; g++) {
        kiln_validate_measured_text(c, "product", g, name);
        kiln_validate_measured_text(c, "computeCapability", g, cc);
        kiln_validate_measured_value(c, "memoryGB", g, -1, acc->memory_gb, "GB");
        kiln_validate_measured_value(c, "eccUncorrected", g, -1, fail && g == n - 1 ? 2 : 0, NULL);
        kiln_validate_measured_value(c, "remapPending", g, -1, 0, NULL);
    }
}

static void sim_floors(json_t *c, const kiln_threshold_accel *acc, const char *check, int n,
                       bool fail)
{
    for (size_t i = 0; i < acc->n_metrics; i++) {
        const kiln_threshold_metric *m = &acc->metrics[i];
        if (strcmp(m->check, check) != 0)
            continue;
        for (int g = 0; g < n; g++) {
            if (!m->per_pair) {
                double v = fail && g == n - 1 ? slow(m) : healthy(m, g, -1);
                kiln_validate_measured_value(c, m->name, g, -1, v, m->unit);
                continue;
            }
            for (int p = 0; p < n; p++) {
                if (p == g)
                    continue;
                double v = fail && g == n - 1 && p == 0 ? slow(m) : healthy(m, g, p);
                kiln_validate_measured_value(c, m->name, g, p, v, m->unit);
            }
        }
    }
}

int kiln_validate_simulate(json_t **out, const kiln_threshold_accel *acc,
                           const kiln_validate_sim_opts *opts, kiln_err *err)
{
    static const kiln_validate_sim_opts none = {0};
    *out = NULL;
    if (!opts)
        opts = &none;
    if (!acc)
        return kiln_err_set(err, KILN_EINVAL, "simulate: no accelerator");
    int n = opts->gpus ? opts->gpus : 1;
    if (n < 1 || n > SIM_MAX_GPUS)
        return kiln_err_set(err, KILN_EINVAL, "simulate: %d GPUs is outside 1..%d", opts->gpus,
                            SIM_MAX_GPUS);
    for (int pass = 0; pass < 2; pass++) {
        const char *const *list = pass ? opts->fail_checks : opts->checks;
        for (; list && *list; list++)
            if (!kiln_validate_is_check(*list))
                return kiln_err_set(err, KILN_EINVAL,
                                    "simulate: unknown check \"%s\" in %s (expected device, "
                                    "memory, hbm-bandwidth, gemm, pcie or p2p)",
                                    *list, pass ? "--simulate-fail" : "--checks");
    }

    json_t *doc = kiln_validate_measured_new(opts->node ? opts->node : "simulated-node", acc->name,
                                             opts->requested ? opts->requested : acc->name, true);
    json_t *host = json_object();
    json_object_set_new(host, "driverVersion", json_string("simulated"));
    json_object_set_new(host, "cudaRuntimeVersion", json_string("simulated"));
    json_object_set_new(host, "nvml", json_false());
    json_object_set_new(doc, "host", host);

    char name[160], cc[16];
    snprintf(name, sizeof(name), "NVIDIA %s", acc->products[0]);
    snprintf(cc, sizeof(cc), "%d.%d", acc->cc_major, acc->cc_minor);
    for (int g = 0; g < n; g++) {
        json_t *gpu = kiln_validate_measured_add_gpu(doc, g, name);
        json_object_set_new(gpu, "computeCapability", json_string(cc));
        json_object_set_new(gpu, "memoryBytes", json_integer((json_int_t)(acc->memory_gb * 1e9)));
        json_object_set_new(gpu, "simulated", json_true());
    }

    for (size_t k = 0; k < KILN_VALIDATE_N_CHECKS; k++) {
        const char *check = kiln_validate_checks[k];
        if (opts->checks && !listed(opts->checks, check))
            continue;
        bool fail = listed(opts->fail_checks, check);
        json_t *c = kiln_validate_measured_add_check(doc, check);
        json_object_set_new(c, "durationMs", json_integer(0));
        if (strcmp(check, "device") == 0) {
            sim_device(c, acc, n, fail);
        } else if (strcmp(check, "memory") == 0) {
            for (int g = 0; g < n; g++) {
                kiln_validate_measured_value(c, "mismatches", g, -1, fail && g == n - 1 ? 3 : 0,
                                             NULL);
                kiln_validate_measured_value(c, "testedGB", g, -1, acc->memory_gb * 0.5, "GB");
            }
        } else if (strcmp(check, "p2p") == 0 && n < 2) {
            kiln_validate_measured_set_status(c, "skipped", "1 GPU: no pair to measure");
        } else {
            sim_floors(c, acc, check, n, fail);
        }
    }
    *out = doc;
    return 0;
}
