#include "validate/summary.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

#include "core/mem.h"
#include "validate/evaluate.h"
#include "validate/jstr.h"
#include "validate/thresholds.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(10))

/* The fields a summary check entry may carry, in output order. */
static const char *const check_keys[] = {"name",  "result", "metric", "gpu",       "peer",
                                         "value", "unit",   "op",     "threshold", "reason"};
#define N_CHECK_KEYS (sizeof(check_keys) / sizeof(check_keys[0]))

/* Shortening steps, tried in order until the text fits: reason lengths for
 * passing checks, failing checks and the node (0 drops the field). */
static const struct {
    size_t pass, fail, node;
} steps[] = {
    {240, 240, 480}, {0, 240, 480}, {0, 120, 240}, {0, 0, 160}, {0, 0, 0},
};

/* Shortens s to max bytes (0: drops it), noting in *cut when it had to. */
static json_t *fit(const char *s, size_t max, bool *cut)
{
    if (!s)
        return NULL;
    if (strlen(s) > max)
        *cut = true;
    return max ? kiln_validate_jstr_max(s, max) : NULL;
}

static json_t *build_once(const json_t *report, size_t pass_max, size_t fail_max, size_t node_max)
{
    bool cut = false;
    json_t *s = json_object();
    json_object_set_new(s, "kiln", json_string("gpucheck"));
    json_object_set_new(s, "schemaVersion", json_integer(KILN_VALIDATE_SCHEMA));
    static const char *const head[] = {"node",     "accelerator", "simulated", "result",
                                       "exitCode", "gpus",        "product"};
    for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++) {
        json_t *v = json_object_get(report, head[i]);
        if (!v)
            continue;
        if (json_is_string(v))
            json_object_set_new(s, head[i], fit(json_string_value(v), 256, &cut));
        else
            json_object_set(s, head[i], v);
    }
    const char *reason = json_string_value(json_object_get(report, "reason"));
    if (reason && node_max)
        json_object_set_new(s, "reason", fit(reason, node_max, &cut));
    else if (reason && *reason)
        cut = true;
    json_t *checks = json_array();
    json_object_set_new(s, "checks", checks);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(report, "checks"), i, c)
    {
        json_t *e = json_object();
        const char *r = json_string_value(json_object_get(c, "result"));
        size_t max = r && strcmp(r, "fail") == 0 ? fail_max : pass_max;
        for (size_t k = 0; k < N_CHECK_KEYS; k++) {
            json_t *v = json_object_get(c, check_keys[k]);
            if (!v || json_is_null(v))
                continue;
            if (strcmp(check_keys[k], "reason") == 0) {
                json_t *cut_reason = fit(json_string_value(v), max, &cut);
                if (cut_reason)
                    json_object_set_new(e, "reason", cut_reason);
            } else if (json_is_string(v)) {
                json_object_set_new(e, check_keys[k], fit(json_string_value(v), 256, &cut));
            } else {
                json_object_set(e, check_keys[k], v);
            }
        }
        json_array_append_new(checks, e);
    }
    if (cut)
        json_object_set_new(s, "truncated", json_true());
    return s;
}

int kiln_validate_summary_build(char **out, const json_t *report, kiln_err *err)
{
    int rc = 0;
    char *text = NULL;
    *out = NULL;
    const char *result = json_string_value(json_object_get(report, "result"));
    if (!json_is_object(report) || !result || !json_is_array(json_object_get(report, "checks"))) {
        rc = kiln_err_set(err, KILN_EINVAL, "summary: not a validation report");
        goto done;
    }
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        json_t *s = build_once(report, steps[i].pass, steps[i].fail, steps[i].node);
        text = json_dumps(s, DUMP_FLAGS);
        json_decref(s);
        if (text && strlen(text) <= KILN_VALIDATE_SUMMARY_MAX) {
            *out = text;
            text = NULL;
            goto done;
        }
        free(text);
        text = NULL;
    }
    rc = kiln_err_set(err, KILN_ELIMIT, "summary: does not fit in %d bytes even without reasons",
                      KILN_VALIDATE_SUMMARY_MAX);
done:
    free(text);
    return rc;
}

static bool is_one_of(const char *s, const char *a, const char *b, const char *c)
{
    return s && (strcmp(s, a) == 0 || strcmp(s, b) == 0 || (c && strcmp(s, c) == 0));
}

static int parse_check(json_t **out, const json_t *c, size_t idx, kiln_err *err)
{
    *out = NULL;
    if (!json_is_object(c))
        return kiln_err_set(err, KILN_EINVAL,
                            "termination message: checks[%zu]: expected an object", idx);
    const char *name = json_string_value(json_object_get(c, "name"));
    if (!kiln_validate_is_check(name))
        return kiln_err_set(err, KILN_EINVAL, "termination message: checks[%zu].name: %s%s%s", idx,
                            name ? "unknown check \"" : "missing", name ? name : "",
                            name ? "\"" : "");
    const char *result = json_string_value(json_object_get(c, "result"));
    if (!is_one_of(result, "pass", "fail", "skip"))
        return kiln_err_set(err, KILN_EINVAL,
                            "termination message: checks[%zu] (%s).result: expected pass, fail or "
                            "skip",
                            idx, name);
    json_t *e = json_object();
    for (size_t k = 0; k < N_CHECK_KEYS; k++) {
        const char *key = check_keys[k];
        json_t *v = json_object_get(c, key);
        if (!v)
            continue;
        bool ok;
        if (strcmp(key, "gpu") == 0 || strcmp(key, "peer") == 0)
            ok = json_is_integer(v) && json_integer_value(v) >= 0;
        else if (strcmp(key, "value") == 0 || strcmp(key, "threshold") == 0)
            ok = json_is_number(v) || json_is_string(v) || json_is_array(v) || json_is_null(v);
        else
            ok = json_is_string(v);
        if (!ok) {
            json_decref(e);
            return kiln_err_set(err, KILN_EINVAL,
                                "termination message: checks[%zu] (%s).%s: wrong type %s", idx,
                                name, key, json_is_object(v) ? "object" : "for this field");
        }
        json_object_set(e, key, v);
    }
    *out = e;
    return 0;
}

int kiln_validate_summary_parse(json_t **out, const char *msg, size_t len,
                                const kiln_validate_expect *expect, kiln_err *err)
{
    int rc = 0;
    json_t *doc = NULL, *node = NULL;
    json_error_t jerr;
    *out = NULL;
    size_t start = 0;
    while (msg && start < len && isspace((unsigned char)msg[start]))
        start++;
    if (!msg || start == len) {
        rc = kiln_err_set(err, KILN_ENOTFOUND,
                          "the validation pod left no termination message (it was killed, never "
                          "started, or is not kiln-gpucheck)");
        goto done;
    }
    if (len > KILN_VALIDATE_SUMMARY_MAX) {
        rc = kiln_err_set(err, KILN_ELIMIT,
                          "termination message is %zu bytes, over the %d-byte limit", len,
                          KILN_VALIDATE_SUMMARY_MAX);
        goto done;
    }
    doc = json_loadb(msg, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "termination message is not valid JSON (truncated?): line %d column "
                          "%d: %s",
                          jerr.line, jerr.column, jerr.text);
        goto done;
    }
    const char *kind = json_string_value(json_object_get(doc, "kiln"));
    if (!json_is_object(doc) || !kind || strcmp(kind, "gpucheck") != 0) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "termination message is not a kiln-gpucheck summary (no \"kiln\": "
                          "\"gpucheck\")");
        goto done;
    }
    json_t *ver = json_object_get(doc, "schemaVersion");
    if (!json_is_integer(ver) || json_integer_value(ver) != KILN_VALIDATE_SCHEMA) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "termination message: schemaVersion %s is not supported (expected %d)",
                          json_is_integer(ver) ? "other" : "missing", KILN_VALIDATE_SCHEMA);
        goto done;
    }
    const char *name = json_string_value(json_object_get(doc, "node"));
    if (!name || !*name) {
        rc = kiln_err_set(err, KILN_EINVAL, "termination message: node: missing");
        goto done;
    }
    if (expect && expect->node && strcmp(expect->node, name) != 0) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "termination message is from node \"%.100s\", expected \"%.100s\"", name,
                          expect->node);
        goto done;
    }
    const char *result = json_string_value(json_object_get(doc, "result"));
    json_t *code = json_object_get(doc, "exitCode");
    if (!is_one_of(result, "passed", "failed", "error")) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "termination message: result: expected passed, failed or error");
        goto done;
    }
    int want_code = strcmp(result, "passed") == 0 ? 0 : strcmp(result, "failed") == 0 ? 1 : 2;
    if (!json_is_integer(code) || json_integer_value(code) != want_code) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "termination message: exitCode does not match result \"%s\"", result);
        goto done;
    }
    json_t *sim = json_object_get(doc, "simulated");
    json_t *gpus = json_object_get(doc, "gpus");
    json_t *checks = json_object_get(doc, "checks");
    if (!json_is_boolean(sim) || !json_is_integer(gpus) || json_integer_value(gpus) < 0 ||
        !json_is_array(checks)) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "termination message: simulated, gpus or checks missing or of the "
                          "wrong type");
        goto done;
    }

    node = json_object();
    json_object_set_new(node, "name", kiln_validate_jstr(name));
    static const char *const strs[] = {"accelerator", "product"};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(doc, strs[i]);
        if (json_is_string(v))
            json_object_set(node, strs[i], v);
    }
    json_object_set(node, "simulated", sim);
    json_object_set(node, "gpus", gpus);

    json_t *out_checks = json_array();
    size_t npass = 0, nfail = 0, i;
    const char *first_fail = NULL;
    json_t *c;
    json_array_foreach(checks, i, c)
    {
        json_t *e = NULL;
        if ((rc = parse_check(&e, c, i, err))) {
            json_decref(out_checks);
            goto done;
        }
        const char *cname = json_string_value(json_object_get(e, "name"));
        for (size_t j = 0; j < json_array_size(out_checks); j++) {
            if (strcmp(json_string_value(json_object_get(json_array_get(out_checks, j), "name")),
                       cname) == 0) {
                json_decref(e);
                json_decref(out_checks);
                rc = kiln_err_set(err, KILN_EINVAL,
                                  "termination message: check %s is reported twice", cname);
                goto done;
            }
        }
        const char *r = json_string_value(json_object_get(e, "result"));
        if (strcmp(r, "pass") == 0)
            npass++;
        else if (strcmp(r, "fail") == 0 && !nfail++)
            first_fail = json_string_value(json_object_get(e, "reason"));
        json_array_append_new(out_checks, e);
    }
    json_object_set_new(node, "checks", out_checks);

    const char *reason = json_string_value(json_object_get(doc, "reason"));
    char buf[512];
    bool missing = false;
    for (const char *const *want = expect ? expect->checks : NULL; want && *want; want++) {
        bool present = false;
        for (size_t j = 0; j < json_array_size(out_checks); j++)
            if (strcmp(json_string_value(json_object_get(json_array_get(out_checks, j), "name")),
                       *want) == 0)
                present = true;
        if (present)
            continue;
        json_t *e = json_object();
        json_object_set_new(e, "name", kiln_validate_jstr(*want));
        json_object_set_new(e, "result", json_string("fail"));
        snprintf(buf, sizeof(buf),
                 "%s on node %.100s: no result in the termination message (missing data)", *want,
                 name);
        json_object_set_new(e, "reason", kiln_validate_jstr(buf));
        json_array_append_new(out_checks, e);
        if (!missing && !nfail)
            first_fail = json_string_value(json_object_get(e, "reason"));
        missing = true;
        nfail++;
    }

    bool passed = strcmp(result, "passed") == 0 && nfail == 0 && npass > 0;
    const char *final = result;
    if (strcmp(result, "passed") == 0 && !passed) {
        /* The pod's own verdict is not trusted over its details. */
        final = "failed";
        if (nfail)
            snprintf(buf, sizeof(buf), "%s", first_fail ? first_fail : "a check failed");
        else
            snprintf(buf, sizeof(buf), "node %.100s: no check passed", name);
        reason = buf;
    } else if (strcmp(result, "error") != 0 && nfail && missing) {
        final = "failed";
        snprintf(buf, sizeof(buf), "%s", first_fail);
        reason = buf;
    }
    json_object_set_new(node, "result", json_string(final));
    json_object_set_new(node, "passed", json_boolean(passed));
    if (!reason || !*reason)
        reason = passed ? "passed" : "failed without a reason";
    json_object_set_new(node, "reason", kiln_validate_jstr(reason));
    *out = node;
    node = NULL;
done:
    json_decref(node);
    json_decref(doc);
    return rc;
}

json_t *kiln_validate_node_failed(const char *node, const char *reason)
{
    json_t *n = json_object();
    json_object_set_new(n, "name", kiln_validate_jstr(node && *node ? node : "(unnamed)"));
    json_object_set_new(n, "simulated", json_false());
    json_object_set_new(n, "gpus", json_integer(0));
    json_object_set_new(n, "result", json_string("error"));
    json_object_set_new(n, "passed", json_false());
    json_object_set_new(n, "reason", kiln_validate_jstr(reason && *reason ? reason : "failed"));
    json_object_set_new(n, "checks", json_array());
    return n;
}

json_t *kiln_validate_status_new(const json_t *nodes)
{
    json_t *st = json_object();
    json_t *copy = json_array();
    bool passed = json_array_size(nodes) > 0, simulated = false;
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        /* Only a literal true counts: a node entry without "passed" did not. */
        passed = passed && json_is_true(json_object_get(n, "passed"));
        simulated = simulated || json_is_true(json_object_get(n, "simulated"));
        json_array_append_new(copy, json_deep_copy(n));
    }
    json_object_set_new(st, "passed", json_boolean(passed));
    json_object_set_new(st, "simulated", json_boolean(simulated));
    json_object_set_new(st, "nodes", copy);
    return st;
}
