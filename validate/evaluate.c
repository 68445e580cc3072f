#include "validate/evaluate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "validate/jstr.h"

enum { R_PASS, R_FAIL, R_SKIP };
static const char *const result_names[] = {"pass", "fail", "skip"};

typedef struct verdict {
    json_t *obj; /* owned until moved into the check's list */
    int result;
    double ratio; /* value / threshold for floors; orders verdicts by margin */
} verdict;

typedef struct vlist {
    verdict *items;
    size_t len;
} vlist;

typedef struct ctx {
    const char *node;
    const kiln_threshold_accel *acc;
    int *gpus; /* indices from the measured "gpus" list */
    size_t ngpus;
    const char *gpus_problem; /* why the GPU list is unusable; NULL when fine */
} ctx;

static double round2(double v)
{
    return round(v * 100.0) / 100.0;
}

/* Integers print without a fraction, others with at most two decimals: the
 * reason strings end up in status conditions that people read. */
static void fmt_num(char *out, size_t n, double v)
{
    if (fabs(v - round(v)) < 1e-9 && fabs(v) < 1e15) {
        snprintf(out, n, "%.0f", v);
        return;
    }
    snprintf(out, n, "%.2f", v);
    size_t len = strlen(out);
    while (len > 0 && out[len - 1] == '0')
        out[--len] = '\0';
    if (len > 0 && out[len - 1] == '.')
        out[--len] = '\0';
}

static void fmt_where(char *out, size_t n, const ctx *c, int gpu, int peer)
{
    if (gpu >= 0 && peer >= 0)
        snprintf(out, n, "node %s GPU %d->%d", c->node, gpu, peer);
    else if (gpu >= 0)
        snprintf(out, n, "node %s GPU %d", c->node, gpu);
    else
        snprintf(out, n, "node %s", c->node);
}

static void vlist_push(vlist *l, json_t *obj, int result, double ratio)
{
    l->items = kiln_xrealloc(l->items, (l->len + 1) * sizeof(*l->items));
    l->items[l->len++] = (verdict){obj, result, ratio};
}

static void vlist_free(vlist *l)
{
    for (size_t i = 0; i < l->len; i++)
        json_decref(l->items[i].obj);
    kiln_xfree(l->items);
    l->items = NULL;
    l->len = 0;
}

/* A verdict object; value and threshold are stolen (either may be NULL). */
static json_t *new_verdict(const char *check, const char *metric, int gpu, int peer, json_t *value,
                           const char *unit, const char *op, json_t *threshold, int result,
                           const char *reason)
{
    json_t *v = json_object();
    json_object_set_new(v, "check", kiln_validate_jstr(check));
    if (metric && *metric)
        json_object_set_new(v, "metric", kiln_validate_jstr(metric));
    if (gpu >= 0)
        json_object_set_new(v, "gpu", json_integer(gpu));
    if (peer >= 0)
        json_object_set_new(v, "peer", json_integer(peer));
    json_object_set_new(v, "value", value ? value : json_null());
    if (unit && *unit)
        json_object_set_new(v, "unit", kiln_validate_jstr(unit));
    if (op)
        json_object_set_new(v, "op", kiln_validate_jstr(op));
    json_object_set_new(v, "threshold", threshold ? threshold : json_null());
    json_object_set_new(v, "result", kiln_validate_jstr(result_names[result]));
    json_object_set_new(v, "reason", kiln_validate_jstr(reason));
    return v;
}

/* A failure that is about missing or broken data rather than a measurement. */
static void push_problem(vlist *l, const ctx *c, const char *check, const char *metric, int gpu,
                         int peer, int result, const char *what)
{
    char where[320], reason[600];
    fmt_where(where, sizeof(where), c, gpu, peer);
    if (metric && *metric)
        snprintf(reason, sizeof(reason), "%s on %s: %s %s", check, where, metric, what);
    else
        snprintf(reason, sizeof(reason), "%s on %s: %s", check, where, what);
    vlist_push(
        l,
        new_verdict(check, metric ? metric : "", gpu, peer, NULL, NULL, NULL, NULL, result, reason),
        result, 0.0);
}

static int json_int_field(const json_t *obj, const char *key, int dflt)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        return dflt;
    json_int_t i = json_integer_value(v);
    return (i < -1 || i > 1 << 20) ? -2 : (int)i;
}

/* The measurement of metric for gpu/peer (-1: none) in the list, borrowed. A
 * second match is ignored: the first one counts. */
static const json_t *find_measurement(const json_t *list, const char *metric, int gpu, int peer)
{
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m)
    {
        if (!json_is_object(m))
            continue;
        const char *name = json_string_value(json_object_get(m, "metric"));
        if (!name || strcmp(name, metric) != 0)
            continue;
        if (json_int_field(m, "gpu", -1) == gpu && json_int_field(m, "peer", -1) == peer)
            return m;
    }
    return NULL;
}

typedef enum { OP_GE, OP_LE, OP_EQ } num_op;

/* Compares one numeric measurement; achievable/frac describe a floor (for
 * the reason) when frac > 0. skippable: a "skipped" measurement (a counter
 * the card does not have) is a skip rather than a failure. */
static void judge_number(vlist *l, const ctx *c, const json_t *list, const char *check,
                         const char *metric, int gpu, int peer, const char *unit, num_op op,
                         double threshold, double achievable, double frac, bool skippable)
{
    char where[320], reason[700], vs[48], ts[48], extra[160] = "";
    const char *ops = op == OP_GE ? ">=" : op == OP_LE ? "<=" : "==";
    const json_t *m = find_measurement(list, metric, gpu, peer);
    if (!m) {
        push_problem(l, c, check, metric, gpu, peer, R_FAIL, "was not measured (missing data)");
        return;
    }
    const char *skipped = json_string_value(json_object_get(m, "skipped"));
    if (skipped) {
        char what[400];
        snprintf(what, sizeof(what), "%s: %s", skippable ? "skipped" : "was not measured", skipped);
        push_problem(l, c, check, metric, gpu, peer, skippable ? R_SKIP : R_FAIL, what);
        return;
    }
    json_t *jv = json_object_get(m, "value");
    if (!json_is_number(jv) || !isfinite(json_number_value(jv))) {
        push_problem(l, c, check, metric, gpu, peer, R_FAIL, "has no numeric value");
        return;
    }
    double v = json_number_value(jv);
    bool ok = op == OP_GE ? v >= threshold : op == OP_LE ? v <= threshold : v == threshold;
    fmt_where(where, sizeof(where), c, gpu, peer);
    fmt_num(vs, sizeof(vs), v);
    fmt_num(ts, sizeof(ts), threshold);
    if (frac > 0) {
        char fs[48], as[48];
        fmt_num(fs, sizeof(fs), frac);
        fmt_num(as, sizeof(as), achievable);
        snprintf(extra, sizeof(extra), " (%s x %s)", fs, as);
    }
    const char *u = unit && *unit ? unit : "";
    snprintf(reason, sizeof(reason), "%s on %s: %s measured %s%s%s, expected %s %s%s%s%s", check,
             where, metric, vs, *u ? " " : "", u, ops, ts, *u ? " " : "", u, extra);
    json_t *thr = (threshold == floor(threshold) && fabs(threshold) < 1e15)
                      ? json_integer((json_int_t)threshold)
                      : json_real(threshold);
    int result = ok ? R_PASS : R_FAIL;
    double ratio = frac > 0 && threshold > 0 ? v / threshold : (ok ? INFINITY : 0.0);
    vlist_push(
        l,
        new_verdict(check, metric, gpu, peer, json_deep_copy(jv), unit, ops, thr, result, reason),
        result, ratio);
}

static void judge_text(vlist *l, const ctx *c, const json_t *list, const char *check,
                       const char *metric, int gpu, bool ok_fn(const ctx *, const char *),
                       const char *expected_desc, json_t *expected)
{
    char where[320], reason[800];
    const json_t *m = find_measurement(list, metric, gpu, -1);
    const char *text = m ? json_string_value(json_object_get(m, "text")) : NULL;
    if (!text) {
        json_decref(expected);
        push_problem(l, c, check, metric, gpu, -1, R_FAIL,
                     m ? "has no text value" : "was not measured (missing data)");
        return;
    }
    bool ok = ok_fn(c, text);
    fmt_where(where, sizeof(where), c, gpu, -1);
    snprintf(reason, sizeof(reason), "%s on %s: %s measured \"%s\", expected %s", check, where,
             metric, text, expected_desc);
    int result = ok ? R_PASS : R_FAIL;
    vlist_push(l,
               new_verdict(check, metric, gpu, -1, kiln_validate_jstr(text), NULL,
                           strcmp(metric, "product") == 0 ? "matches" : "==", expected, result,
                           reason),
               result, ok ? INFINITY : 0.0);
}

static bool product_ok(const ctx *c, const char *text)
{
    return kiln_thresholds_product_matches(c->acc, text);
}

static bool cc_ok(const ctx *c, const char *text)
{
    char want[16];
    snprintf(want, sizeof(want), "%d.%d", c->acc->cc_major, c->acc->cc_minor);
    return strcmp(text, want) == 0;
}

static void judge_device(vlist *l, const ctx *c, const json_t *list, int expect_gpus)
{
    const kiln_threshold_accel *a = c->acc;
    if (expect_gpus > 0)
        judge_number(l, c, list, "device", "count", -1, -1, "", OP_EQ, expect_gpus, 0, 0, false);
    else
        judge_number(l, c, list, "device", "count", -1, -1, "", OP_GE, 1, 0, 0, false);

    char products[400] = "to contain ";
    for (size_t i = 0; i < a->n_products; i++) {
        size_t len = strlen(products);
        snprintf(products + len, sizeof(products) - len, "%s\"%s\"", i ? " or " : "",
                 a->products[i]);
    }
    char cc[16], ccdesc[32];
    snprintf(cc, sizeof(cc), "%d.%d", a->cc_major, a->cc_minor);
    snprintf(ccdesc, sizeof(ccdesc), "\"%s\"", cc);
    double mem_floor = round2(a->memory_gb * a->memory_floor);
    for (size_t g = 0; g < c->ngpus; g++) {
        int gpu = c->gpus[g];
        json_t *plist = json_array();
        for (size_t i = 0; i < a->n_products; i++)
            json_array_append_new(plist, kiln_validate_jstr(a->products[i]));
        judge_text(l, c, list, "device", "product", gpu, product_ok, products, plist);
        judge_text(l, c, list, "device", "computeCapability", gpu, cc_ok, ccdesc,
                   kiln_validate_jstr(cc));
        judge_number(l, c, list, "device", "memoryGB", gpu, -1, "GB", OP_GE, mem_floor,
                     a->memory_gb, a->memory_floor, false);
        judge_number(l, c, list, "device", "eccUncorrected", gpu, -1, "", OP_LE, 0, 0, 0, true);
        judge_number(l, c, list, "device", "remapPending", gpu, -1, "", OP_LE, 0, 0, 0, true);
    }
}

static void judge_floors(vlist *l, const ctx *c, const json_t *list, const char *check)
{
    const kiln_threshold_accel *a = c->acc;
    for (size_t i = 0; i < a->n_metrics; i++) {
        const kiln_threshold_metric *m = &a->metrics[i];
        if (strcmp(m->check, check) != 0)
            continue;
        double thr = round2(m->achievable * m->floor);
        for (size_t g = 0; g < c->ngpus; g++) {
            if (!m->per_pair) {
                judge_number(l, c, list, check, m->name, c->gpus[g], -1, m->unit, OP_GE, thr,
                             m->achievable, m->floor, false);
                continue;
            }
            for (size_t p = 0; p < c->ngpus; p++)
                if (p != g)
                    judge_number(l, c, list, check, m->name, c->gpus[g], c->gpus[p], m->unit, OP_GE,
                                 thr, m->achievable, m->floor, false);
        }
    }
}

/* Copies the deciding verdict's fields onto the check entry. */
static void roll_up(json_t *entry, vlist *l)
{
    size_t pass = 0, fail = 0, skip = 0;
    long decide = -1;
    for (size_t i = 0; i < l->len; i++) {
        verdict *v = &l->items[i];
        if (v->result == R_PASS)
            pass++;
        else if (v->result == R_FAIL)
            fail++;
        else
            skip++;
    }
    int want = fail ? R_FAIL : pass ? R_PASS : R_SKIP;
    for (size_t i = 0; i < l->len; i++) {
        if (l->items[i].result != want)
            continue;
        if (decide < 0 || l->items[i].ratio < l->items[decide].ratio)
            decide = (long)i;
    }
    json_object_set_new(entry, "result", kiln_validate_jstr(result_names[want]));
    if (decide >= 0) {
        static const char *const keys[] = {"metric", "gpu", "peer",      "value",
                                           "unit",   "op",  "threshold", "reason"};
        json_t *d = l->items[decide].obj;
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            json_t *v = json_object_get(d, keys[k]);
            if (v)
                json_object_set(entry, keys[k], v);
        }
    }
    json_object_set_new(entry, "passed", json_integer((json_int_t)pass));
    json_object_set_new(entry, "failed", json_integer((json_int_t)fail));
    json_object_set_new(entry, "skipped", json_integer((json_int_t)skip));
    json_t *arr = json_array();
    for (size_t i = 0; i < l->len; i++) {
        json_array_append_new(arr, l->items[i].obj);
        l->items[i].obj = NULL;
    }
    json_object_set_new(entry, "verdicts", arr);
}

static json_t *judge_check(const ctx *c, const json_t *measured, const char *check, int expect_gpus,
                           const char *run_error)
{
    vlist l = {0};
    json_t *entry = json_object();
    json_object_set_new(entry, "name", kiln_validate_jstr(check));

    const json_t *found = NULL;
    size_t i, seen = 0;
    json_t *mc;
    json_array_foreach(json_object_get(measured, "checks"), i, mc)
    {
        const char *name = json_string_value(json_object_get(mc, "name"));
        if (json_is_object(mc) && name && strcmp(name, check) == 0) {
            if (!found)
                found = mc;
            seen++;
        }
    }
    const char *status = found ? json_string_value(json_object_get(found, "status")) : NULL;
    const char *why = found ? json_string_value(json_object_get(found, "reason")) : NULL;
    char what[600];

    if (run_error) {
        snprintf(what, sizeof(what), "could not run: %s", run_error);
        push_problem(&l, c, check, NULL, -1, -1, R_FAIL, what);
    } else if (c->gpus_problem && strcmp(check, "p2p") != 0) {
        push_problem(&l, c, check, NULL, -1, -1, R_FAIL, c->gpus_problem);
    } else if (strcmp(check, "p2p") == 0 && c->ngpus < 2) {
        /* The one skip that is about the hardware, not the run: there is no
         * pair to measure. */
        snprintf(what, sizeof(what), "skipped: %zu GPU%s, no pair to measure", c->ngpus,
                 c->ngpus == 1 ? "" : "s");
        push_problem(&l, c, check, NULL, -1, -1, R_SKIP, what);
    } else if (!found) {
        push_problem(&l, c, check, NULL, -1, -1, R_FAIL, "no result reported (missing data)");
    } else if (seen > 1) {
        push_problem(&l, c, check, NULL, -1, -1, R_FAIL, "reported more than once");
    } else if (status && strcmp(status, "error") == 0) {
        snprintf(what, sizeof(what), "error: %s", why ? why : "no reason given");
        push_problem(&l, c, check, NULL, -1, -1, R_FAIL, what);
    } else if (status && strcmp(status, "skipped") == 0) {
        snprintf(what, sizeof(what), "was skipped (%s), but a requested check must run",
                 why ? why : "no reason given");
        push_problem(&l, c, check, NULL, -1, -1, R_FAIL, what);
    } else if (!status || strcmp(status, "ran") != 0) {
        snprintf(what, sizeof(what), "unknown status \"%s\"", status ? status : "(none)");
        push_problem(&l, c, check, NULL, -1, -1, R_FAIL, what);
    } else {
        const json_t *list = json_object_get(found, "measurements");
        if (!json_is_array(list)) {
            push_problem(&l, c, check, NULL, -1, -1, R_FAIL, "has no measurements list");
        } else if (strcmp(check, "device") == 0) {
            judge_device(&l, c, list, expect_gpus);
        } else if (strcmp(check, "memory") == 0) {
            for (size_t g = 0; g < c->ngpus; g++)
                judge_number(&l, c, list, check, "mismatches", c->gpus[g], -1, "", OP_LE, 0, 0, 0,
                             false);
        } else {
            judge_floors(&l, c, list, check);
        }
    }
    if (l.len == 0)
        push_problem(&l, c, check, NULL, -1, -1, R_FAIL, "nothing to judge (missing data)");
    roll_up(entry, &l);
    vlist_free(&l);
    return entry;
}

/* Reads the GPU indices; a list that cannot be trusted fails every check
 * that depends on it. */
static void read_gpus(ctx *c, const json_t *measured, const char **product)
{
    json_t *gpus = json_object_get(measured, "gpus");
    *product = NULL;
    if (!json_is_array(gpus)) {
        c->gpus_problem = "no GPU list reported (missing data)";
        return;
    }
    if (json_array_size(gpus) == 0) {
        c->gpus_problem = "no GPU found";
        return;
    }
    if (json_array_size(gpus) > 1024) {
        c->gpus_problem = "GPU list is implausibly long";
        return;
    }
    c->gpus = kiln_xcalloc(json_array_size(gpus), sizeof(int));
    size_t i;
    json_t *g;
    json_array_foreach(gpus, i, g)
    {
        int idx = json_int_field(g, "index", -2);
        if (idx < 0) {
            c->gpus_problem = "GPU list entry without a valid index";
            return;
        }
        for (size_t j = 0; j < c->ngpus; j++)
            if (c->gpus[j] == idx) {
                c->gpus_problem = "GPU list repeats an index";
                return;
            }
        c->gpus[c->ngpus++] = idx;
        if (!*product)
            *product = json_string_value(json_object_get(g, "name"));
    }
}

int kiln_validate_evaluate(json_t **out, const json_t *measured, const kiln_threshold_accel *acc,
                           const kiln_validate_eval_opts *opts, kiln_err *err)
{
    int rc = 0;
    json_t *report = NULL;
    ctx c = {0};
    static const kiln_validate_eval_opts none = {0};
    const char *const *req = NULL;
    *out = NULL;
    if (!opts)
        opts = &none;
    if (!measured || !acc) {
        rc = kiln_err_set(err, KILN_EINVAL, "evaluate: %s is missing",
                          measured ? "the thresholds entry" : "the measured document");
        goto done;
    }
    for (req = opts->checks; req && *req; req++) {
        if (!kiln_validate_is_check(*req)) {
            rc = kiln_err_set(err, KILN_EINVAL,
                              "unknown check \"%s\" (expected device, memory, hbm-bandwidth, "
                              "gemm, pcie or p2p)",
                              *req);
            goto done;
        }
    }
    c.acc = acc;
    c.node = opts->node ? opts->node : json_string_value(json_object_get(measured, "node"));
    if (!c.node || !*c.node)
        c.node = "(unnamed)";
    const char *product = NULL;
    const char *run_error = NULL;
    if (!json_is_object(measured))
        run_error = "measured results are not a JSON object";
    else
        run_error = json_string_value(json_object_get(measured, "error"));
    read_gpus(&c, measured, &product);

    report = json_object();
    json_object_set_new(report, "schemaVersion", json_integer(KILN_VALIDATE_SCHEMA));
    json_object_set_new(report, "node", kiln_validate_jstr(c.node));
    json_object_set_new(report, "accelerator", kiln_validate_jstr(acc->name));
    json_object_set_new(report, "simulated",
                        json_boolean(json_is_true(json_object_get(measured, "simulated"))));
    json_object_set_new(report, "gpus", json_integer((json_int_t)c.ngpus));
    if (product)
        json_object_set_new(report, "product", kiln_validate_jstr(product));

    json_t *checks = json_array();
    json_object_set_new(report, "checks", checks);
    size_t npass = 0, nfail = 0, nskip = 0;
    const char *first_fail = NULL;
    /* Checks are judged in the canonical order whatever order was asked for,
     * so reports of two nodes line up. */
    for (size_t k = 0; k < KILN_VALIDATE_N_CHECKS; k++) {
        const char *name = kiln_validate_checks[k];
        bool wanted = opts->checks == NULL;
        for (req = opts->checks; req && *req; req++)
            if (strcmp(*req, name) == 0)
                wanted = true;
        if (!wanted)
            continue;
        json_t *entry = judge_check(&c, measured, name, opts->expect_gpus, run_error);
        const char *r = json_string_value(json_object_get(entry, "result"));
        if (strcmp(r, "pass") == 0) {
            npass++;
        } else if (strcmp(r, "fail") == 0) {
            if (!nfail++)
                first_fail = json_string_value(json_object_get(entry, "reason"));
        } else {
            nskip++;
        }
        json_array_append_new(checks, entry);
    }

    char reason[900];
    bool passed = nfail == 0 && npass > 0;
    if (nfail)
        snprintf(reason, sizeof(reason), "%s%s", first_fail ? first_fail : "a check failed",
                 nfail > 1 ? " (and more failures)" : "");
    else if (npass == 0)
        snprintf(reason, sizeof(reason), "no requested check passed on node %s (%zu skipped)",
                 c.node, nskip);
    else if (nskip)
        snprintf(reason, sizeof(reason), "%zu checks passed, %zu skipped on node %s", npass, nskip,
                 c.node);
    else
        snprintf(reason, sizeof(reason), "%zu checks passed on node %s", npass, c.node);
    json_object_set_new(report, "result", kiln_validate_jstr(passed ? "passed" : "failed"));
    json_object_set_new(report, "exitCode", json_integer(passed ? 0 : 1));
    json_object_set_new(report, "reason", kiln_validate_jstr(reason));
    *out = report;
    report = NULL;
done:
    json_decref(report);
    kiln_xfree(c.gpus);
    return rc;
}

json_t *kiln_validate_report_error(const char *node, const char *accelerator, bool simulated,
                                   const char *reason)
{
    json_t *r = json_object();
    json_object_set_new(r, "schemaVersion", json_integer(KILN_VALIDATE_SCHEMA));
    json_object_set_new(r, "node", kiln_validate_jstr(node && *node ? node : "(unnamed)"));
    if (accelerator)
        json_object_set_new(r, "accelerator", kiln_validate_jstr(accelerator));
    json_object_set_new(r, "simulated", json_boolean(simulated));
    json_object_set_new(r, "gpus", json_integer(0));
    json_object_set_new(r, "checks", json_array());
    json_object_set_new(r, "result", kiln_validate_jstr("error"));
    json_object_set_new(r, "exitCode", json_integer(2));
    json_object_set_new(r, "reason",
                        kiln_validate_jstr(reason && *reason ? reason : "could not run"));
    return r;
}

int kiln_validate_report_exit_code(const json_t *report)
{
    const char *r = json_string_value(json_object_get(report, "result"));
    if (r && strcmp(r, "passed") == 0)
        return 0;
    if (r && strcmp(r, "failed") == 0)
        return 1;
    return 2;
}
