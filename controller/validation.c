/* controller/validation.c: GPU validation Jobs for validation nodes
 * (validation.h says what and why). */
#define _GNU_SOURCE /* timegm */
#include "controller/validation.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controller/internal.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "validate/summary.h"
#include "validate/thresholds.h"

/* Past a Job's own activeDeadlineSeconds, how long the controller waits for
 * the Job controller to say so before it calls the run failed itself. */
#define DEADLINE_GRACE_S 30

const char *kiln_validation_phase_name(kiln_validation_phase phase)
{
    switch (phase) {
    case KILN_VALIDATION_PASSED:
        return "Passed";
    case KILN_VALIDATION_FAILED:
        return "Failed";
    default:
        return "Running";
    }
}

/* ------------------------------------------------------------------------ */
/* thresholds: loaded once, read by every worker                              */

static pthread_once_t catalog_once = PTHREAD_ONCE_INIT;
static kiln_thresholds catalog;
static char catalog_error[KILN_ERR_MSG_MAX];

static void catalog_load(void)
{
    kiln_err err = {0};
    if (kiln_thresholds_load_builtin(&catalog, &err) < 0)
        snprintf(catalog_error, sizeof(catalog_error), "%s", err.msg);
}

static const kiln_thresholds *thresholds(void)
{
    pthread_once(&catalog_once, catalog_load);
    return catalog_error[0] ? NULL : &catalog;
}

static char *known_accelerators(void)
{
    const kiln_thresholds *cat = thresholds();
    kiln_buf b;
    kiln_buf_init(&b, 0);
    for (size_t i = 0; cat && i < cat->len; i++)
        kiln_buf_printf(&b, NULL, "%s%s", i ? ", " : "", cat->items[i].name);
    return kiln_buf_steal(&b);
}

/* ------------------------------------------------------------------------ */
/* node selection                                                             */

static int gpu_count(const json_t *node)
{
    const json_t *v =
        json_object_get(kiln_json_get_path(node, "status.allocatable"), "nvidia.com/gpu");
    if (json_is_integer(v))
        return (int)json_integer_value(v);
    const char *s = json_string_value(v);
    if (!s)
        return 0;
    char *end = NULL;
    long n = strtol(s, &end, 10);
    return end && *end == '\0' && n > 0 && n < 1024 ? (int)n : 0;
}

static int by_name(const void *a, const void *b)
{
    const kiln_validation_target *x = a, *y = b;
    return strcmp(x->node, y->node);
}

static void set_none(kiln_validation_selection *out, char *why)
{
    kiln_xfree(out->why_none);
    out->why_none = why;
}

void kiln_validation_select(kiln_validation_selection *out, const json_t *spec, const json_t *nodes)
{
    memset(out, 0, sizeof(*out));
    const json_t *sel = json_object_get(spec, "nodeSelector");
    bool has_selector = json_is_object(sel) && json_object_size(sel) > 0;
    const char *acc_req = kiln_json_get_string(spec, "accelerator");
    const json_t *gpn = json_object_get(spec, "gpusPerNode");
    int want = json_is_integer(gpn) ? (int)json_integer_value(gpn) : 0;
    json_int_t max_nodes = json_integer_value(json_object_get(spec, "maxNodes"));
    const kiln_thresholds *cat = thresholds();
    const kiln_threshold_accel *acc = NULL;

    if (!cat) {
        set_none(out, kiln_xasprintf("the thresholds data does not load: %s", catalog_error));
        return;
    }
    if (acc_req && *acc_req) {
        acc = kiln_thresholds_find(cat, acc_req);
        if (!acc) {
            char *known = known_accelerators();
            set_none(out, kiln_xasprintf("unknown accelerator \"%s\" (known: %s)", acc_req, known));
            kiln_xfree(known);
            return;
        }
    }
    size_t cap = json_array_size(nodes);
    out->items = kiln_xcalloc(cap + 1, sizeof(*out->items));
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *name = kiln_json_get_string(n, "metadata.name");
        if (!name)
            continue;
        int gpus = gpu_count(n);
        if (gpus == 0 && !has_selector)
            continue; /* not a GPU node */
        kiln_validation_target *t = &out->items[out->len++];
        t->node = kiln_xstrdup(name);
        t->gpus = want > 0 ? want : gpus;
        const char *product = json_string_value(
            json_object_get(kiln_json_get_path(n, "metadata.labels"), "nvidia.com/gpu.product"));
        const kiln_threshold_accel *a = acc;
        if (!a && product)
            a = kiln_thresholds_find(cat, product);
        if (a)
            t->accelerator = kiln_xstrdup(a->name);
        if (gpus == 0)
            t->why_not = kiln_xasprintf("node %s matches the nodeSelector but advertises no "
                                        "nvidia.com/gpu",
                                        name);
        else if (want > gpus)
            t->why_not = kiln_xasprintf("node %s has %d allocatable GPUs; gpusPerNode asks for %d",
                                        name, gpus, want);
        else if (!a)
            t->why_not = kiln_xasprintf("cannot tell the accelerator of node %s "
                                        "(nvidia.com/gpu.product=%s): set validation.accelerator",
                                        name, product ? product : "(none)");
        /* A NotReady node is selected all the same: its Job never runs and
         * fails at its deadline, with the pod's state in the reason. */
    }
    qsort(out->items, out->len, sizeof(*out->items), by_name);
    if (max_nodes > 0 && (size_t)max_nodes < out->len) {
        for (size_t k = (size_t)max_nodes; k < out->len; k++) {
            kiln_xfree(out->items[k].node);
            kiln_xfree(out->items[k].accelerator);
            kiln_xfree(out->items[k].why_not);
        }
        out->len = (size_t)max_nodes;
    }
    if (out->len == 0) {
        if (has_selector) {
            char *s = kiln_validation_label_selector(spec, NULL);
            set_none(out,
                     kiln_xasprintf("no node matches the nodeSelector %s", s ? s : "(invalid)"));
            kiln_xfree(s);
        } else {
            set_none(out, kiln_xstrdup("no node advertises nvidia.com/gpu"));
        }
    }
}

void kiln_validation_selection_free(kiln_validation_selection *s)
{
    for (size_t i = 0; i < s->len; i++) {
        kiln_xfree(s->items[i].node);
        kiln_xfree(s->items[i].accelerator);
        kiln_xfree(s->items[i].why_not);
    }
    kiln_xfree(s->items);
    kiln_xfree(s->why_none);
    memset(s, 0, sizeof(*s));
}

/* Label keys: [prefix/]name, name 1-63 of [A-Za-z0-9-_.] starting and
 * ending alphanumeric; values the same, or empty. */
static bool label_name_ok(const char *s, size_t len, bool empty_ok)
{
    if (len == 0)
        return empty_ok;
    if (len > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

static bool label_key_ok(const char *k)
{
    const char *slash = strchr(k, '/');
    if (!slash)
        return label_name_ok(k, strlen(k), false);
    size_t plen = (size_t)(slash - k);
    if (plen == 0 || plen > 253)
        return false;
    for (size_t i = 0; i < plen; i++)
        if (!islower((unsigned char)k[i]) && !isdigit((unsigned char)k[i]) && k[i] != '-' &&
            k[i] != '.')
            return false;
    return label_name_ok(slash + 1, strlen(slash + 1), false);
}

char *kiln_validation_label_selector(const json_t *spec, kiln_err *err)
{
    const json_t *sel = json_object_get(spec, "nodeSelector");
    kiln_buf b;
    kiln_buf_init(&b, 0);
    if (json_is_object(sel)) {
        size_t n = 0;
        const char **keys = kiln_json_sorted_keys(&n, sel);
        for (size_t i = 0; i < n; i++) {
            const char *v = json_string_value(json_object_get(sel, keys[i]));
            if (!label_key_ok(keys[i]) || !v || !label_name_ok(v, strlen(v), true)) {
                kiln_err_set(err, KILN_EINVAL,
                             "validation.nodeSelector: \"%s\": \"%s\" is not a valid label",
                             keys[i], v ? v : "(not a string)");
                kiln_xfree(keys);
                kiln_buf_free(&b);
                return NULL;
            }
            kiln_buf_printf(&b, NULL, "%s%s=%s", i ? "," : "", keys[i], v);
        }
        kiln_xfree(keys);
    }
    return kiln_buf_steal(&b);
}

/* ------------------------------------------------------------------------ */
/* runs and Jobs                                                              */

void kiln_validation_run_hash(char out[11], const kiln_validation_run *run)
{
    json_t *doc = json_pack("{s:s, s:O, s:i, s:I, s:I, s:s, s:s, s:s}", "accelerator",
                            run->accelerator ? run->accelerator : "", "checks",
                            run->checks ? run->checks : json_null(), "gpus", run->gpus, "timeout",
                            (json_int_t)run->timeout_s, "generation", (json_int_t)run->generation,
                            "revalidate", run->revalidate ? run->revalidate : "", "node",
                            run->node ? run->node : "", "image", run->image ? run->image : "");
    char full[KILN_SHA256_HEX_LEN + 1];
    kiln_hash_json(full, doc);
    json_decref(doc);
    memcpy(out, full, 10);
    out[10] = '\0';
}

/* Lower-case alphanumerics and '-', at most max characters, no '-' at
 * either end. */
static void dns_part(char *out, size_t max, const char *s)
{
    size_t n = 0;
    for (; s && *s && n < max; s++) {
        char c = (char)tolower((unsigned char)*s);
        if (!isalnum((unsigned char)c))
            c = '-';
        if (c == '-' && (n == 0 || out[n - 1] == '-'))
            continue;
        out[n++] = c;
    }
    while (n > 0 && out[n - 1] == '-')
        n--;
    out[n] = '\0';
}

char *kiln_validation_job_name(const kiln_validation_run *run, const char hash[11])
{
    /* 30 + 1 + 16 + 1 + 10 = 58 characters at most; a pod adds "-xxxxx". */
    char inst[31], node[17];
    dns_part(inst, 30, run->instance_name);
    dns_part(node, 16, run->node_id);
    return kiln_xasprintf("%s%s%s%s%s", inst, *inst ? "-" : "", node, *node ? "-" : "", hash);
}

static char *checks_csv(const json_t *checks)
{
    kiln_buf b;
    kiln_buf_init(&b, 0);
    size_t i;
    json_t *c;
    json_array_foreach(checks, i, c) kiln_buf_printf(
        &b, NULL, "%s%s", i ? "," : "", json_string_value(c) ? json_string_value(c) : "");
    return kiln_buf_steal(&b);
}

json_t *kiln_validation_job(const kiln_validation_run *run, const char *name, const char hash[11],
                            const json_t *labels, const json_t *owner)
{
    json_t *lab = json_is_object(labels) ? json_deep_copy(labels) : json_object();
    json_object_set_new(lab, KILN_LABEL_VALIDATION, json_string(run->node_id));
    json_object_set_new(lab, KILN_LABEL_VALIDATION_RUN, json_string(hash));
    json_object_set_new(lab, KILN_LABEL_VALIDATION_NODE, json_string(run->node));
    json_t *pod_labels = json_deep_copy(lab);
    json_object_set_new(pod_labels, KILN_LABEL_VALIDATION_JOB, json_string(name));

    size_t nchecks = json_array_size(run->checks);
    /* Each check gets at most 10 s (kiln-gpucheck's default) and all of
     * them, with start-up, must fit the Job's deadline. */
    int64_t per = nchecks ? run->timeout_s / (int64_t)(2 * nchecks) : 10;
    if (per > 10)
        per = 10;
    if (per < 1)
        per = 1;
    char *csv = checks_csv(run->checks);
    char gpus[16], tmo[24];
    snprintf(gpus, sizeof(gpus), "%d", run->gpus);
    snprintf(tmo, sizeof(tmo), "%lld", (long long)per);
    json_t *args = json_pack("[s,s,s,s,s,s,s,s,s]", "--accelerator", run->accelerator, "--checks",
                             csv, "--expect-gpus", gpus, "--timeout", tmo, "--compact");
    kiln_xfree(csv);

    /* terminationMessagePolicy File: a crash's log tail is not a summary,
     * and "left no termination message" says more than a parse error. */
    json_t *container = json_pack(
        "{s:s, s:s, s:[s], s:o, s:[{s:s, s:{s:{s:s}}}], s:{s:{s:s}, s:{s:s}}, s:s, s:s, "
        "s:{s:b, s:b, s:b, s:{s:[s]}}}",
        "name", "gpucheck", "image", run->image, "command", "/usr/local/bin/kiln-gpucheck", "args",
        args, "env", "name", "NODE_NAME", "valueFrom", "fieldRef", "fieldPath", "spec.nodeName",
        "resources", "limits", "nvidia.com/gpu", gpus, "requests", "nvidia.com/gpu", gpus,
        "terminationMessagePath", "/dev/termination-log", "terminationMessagePolicy", "File",
        "securityContext", "allowPrivilegeEscalation", 0, "readOnlyRootFilesystem", 1,
        "runAsNonRoot", 1, "capabilities", "drop", "ALL");
    json_t *pod_spec = json_pack(
        "{s:s, s:s, s:s, s:b, s:[{s:s}], s:{s:{s:s}}, s:[o]}", "restartPolicy", "Never", "nodeName",
        run->node, "serviceAccountName", KILN_GPUCHECK_SERVICE_ACCOUNT,
        "automountServiceAccountToken", 0, "tolerations", "operator", "Exists", "securityContext",
        "seccompProfile", "type", "RuntimeDefault", "containers", container);
    json_t *md = json_pack("{s:s, s:o}", "name", name, "labels", lab);
    if (run->instance_namespace && *run->instance_namespace)
        json_object_set_new(md, "namespace", json_string(run->instance_namespace));
    if (owner)
        json_object_set_new(md, "ownerReferences", json_pack("[O]", owner));
    return json_pack("{s:s, s:s, s:o, s:{s:i, s:I, s:i, s:{s:{s:o}, s:o}}}", "apiVersion",
                     "batch/v1", "kind", "Job", "metadata", md, "spec", "backoffLimit", 0,
                     "activeDeadlineSeconds", (json_int_t)run->timeout_s, "ttlSecondsAfterFinished",
                     86400, "template", "metadata", "labels", pod_labels, "spec", pod_spec);
}

int64_t kiln_validation_parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!s)
        return -1;
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return -1;
    if (*end == '.')
        while (*++end >= '0' && *end <= '9')
            ;
    if (*end != 'Z')
        return -1;
    return (int64_t)timegm(&tm);
}

/* ------------------------------------------------------------------------ */
/* one node's result                                                          */

static const json_t *job_condition(const json_t *job, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(kiln_json_get_path(job, "status.conditions"), i, c)
    {
        const char *t = kiln_json_get_string(c, "type");
        const char *s = kiln_json_get_string(c, "status");
        if (t && s && strcmp(t, type) == 0 && strcmp(s, "True") == 0)
            return c;
    }
    return NULL;
}

/* The newest pod of the Job. */
static const json_t *newest_pod(const json_t *pods)
{
    const json_t *best = NULL;
    const char *best_ts = NULL;
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p)
    {
        const char *ts = kiln_json_get_string(p, "metadata.creationTimestamp");
        if (!best || (ts && best_ts && strcmp(ts, best_ts) > 0)) {
            best = p;
            best_ts = ts;
        }
    }
    return best;
}

static const json_t *gpucheck_status(const json_t *pod)
{
    size_t i;
    json_t *cs;
    const json_t *first = NULL;
    json_array_foreach(kiln_json_get_path(pod, "status.containerStatuses"), i, cs)
    {
        const char *n = kiln_json_get_string(cs, "name");
        if (n && strcmp(n, "gpucheck") == 0)
            return cs;
        if (!first)
            first = cs;
    }
    return first;
}

/* "pod P is Pending (Unschedulable: 0/3 nodes ...)" */
static char *pod_state(const json_t *pod)
{
    if (!pod)
        return kiln_xstrdup("no pod was created");
    const char *name = kiln_json_get_string(pod, "metadata.name");
    const char *phase = kiln_json_get_string(pod, "status.phase");
    const json_t *cs = gpucheck_status(pod);
    const json_t *waiting = kiln_json_get_path(cs, "state.waiting");
    const char *reason = kiln_json_get_string(waiting, "reason");
    const char *msg = kiln_json_get_string(waiting, "message");
    if (!reason) {
        size_t i;
        json_t *c;
        json_array_foreach(kiln_json_get_path(pod, "status.conditions"), i, c)
        {
            const char *t = kiln_json_get_string(c, "type");
            const char *s = kiln_json_get_string(c, "status");
            if (t && s && strcmp(t, "PodScheduled") == 0 && strcmp(s, "False") == 0) {
                reason = kiln_json_get_string(c, "reason");
                msg = kiln_json_get_string(c, "message");
            }
        }
    }
    return kiln_xasprintf("pod %s is %s%s%s%s%s%s", name ? name : "?", phase ? phase : "Pending",
                          reason ? " (" : "", reason ? reason : "", msg && *msg ? ": " : "",
                          msg && *msg ? msg : "", reason ? ")" : "");
}

static json_t *tag(json_t *entry, const char *job_name, const char hash[11])
{
    json_object_set_new(entry, "job", json_string(job_name));
    json_object_set_new(entry, "run", json_string(hash));
    return entry;
}

json_t *kiln_validation_node_result(const kiln_validation_run *run, const char *job_name,
                                    const char hash[11], const json_t *job, const json_t *pods,
                                    int64_t now, bool *final, int64_t *wait_ms)
{
    *final = true;
    *wait_ms = 0;
    const json_t *pod = newest_pod(pods);
    const json_t *term = kiln_json_get_path(gpucheck_status(pod), "state.terminated");
    char *reason = NULL;
    json_t *entry = NULL;

    if (term) {
        const char *msg = kiln_json_get_string(term, "message");
        json_int_t code = json_integer_value(json_object_get(term, "exitCode"));
        const char *pname = kiln_json_get_string(pod, "metadata.name");
        if (msg && *msg) {
            const char *const *checks = NULL;
            size_t n = json_array_size(run->checks);
            const char **list = kiln_xcalloc(n + 1, sizeof(*list));
            for (size_t i = 0; i < n; i++)
                list[i] = json_string_value(json_array_get(run->checks, i));
            checks = list;
            kiln_validate_expect expect = {.node = run->node, .checks = checks};
            kiln_err err = {0};
            if (kiln_validate_summary_parse(&entry, msg, strlen(msg), &expect, &err) < 0) {
                reason = kiln_xasprintf("node %s: pod %s (exit code %lld): %s", run->node,
                                        pname ? pname : "?", (long long)code, err.msg);
                entry = NULL;
            } else if (code != 0 && json_is_true(json_object_get(entry, "passed"))) {
                /* A passing summary from a failed container is not trusted. */
                reason = kiln_xasprintf("node %s: pod %s exited with code %lld but its "
                                        "termination message says passed",
                                        run->node, pname ? pname : "?", (long long)code);
                json_decref(entry);
                entry = NULL;
            }
            kiln_xfree(list);
        } else {
            reason = kiln_xasprintf("node %s: pod %s exited with code %lld (%s) and left no "
                                    "termination message",
                                    run->node, pname ? pname : "?", (long long)code,
                                    kiln_json_get_string(term, "reason")
                                        ? kiln_json_get_string(term, "reason")
                                        : "no reason");
        }
    } else if (job_condition(job, "Failed")) {
        const json_t *c = job_condition(job, "Failed");
        char *ps = pod_state(pod);
        reason = kiln_xasprintf(
            "node %s: Job %s failed (%s: %s); %s", run->node, job_name,
            kiln_json_get_string(c, "reason") ? kiln_json_get_string(c, "reason") : "no reason",
            kiln_json_get_string(c, "message") ? kiln_json_get_string(c, "message") : "", ps);
        kiln_xfree(ps);
    } else if (job_condition(job, "Complete")) {
        reason = kiln_xasprintf("node %s: Job %s completed but its pod is gone; set %s to run it "
                                "again",
                                run->node, job_name, KILN_ANN_REVALIDATE);
    } else {
        int64_t created =
            kiln_validation_parse_time(kiln_json_get_string(job, "metadata.creationTimestamp"));
        int64_t deadline = (created >= 0 ? created : now) + run->timeout_s + DEADLINE_GRACE_S;
        char *ps = pod_state(pod);
        if (now >= deadline) {
            reason = kiln_xasprintf("node %s: Job %s did not finish within %lld s; %s", run->node,
                                    job_name, (long long)run->timeout_s, ps);
        } else {
            *final = false;
            *wait_ms = (deadline - now) * 1000;
            entry = json_pack("{s:s, s:b, s:s, s:b, s:i, s:[]}", "name", run->node, "passed", 0,
                              "result", "running", "simulated", 0, "gpus", run->gpus, "checks");
            json_object_set_new(entry, "reason",
                                json_sprintf("node %s: Job %s: %s", run->node, job_name, ps));
        }
        kiln_xfree(ps);
    }
    if (!entry) {
        entry = kiln_validate_node_failed(run->node, reason);
        json_object_set_new(entry, "gpus", json_integer(run->gpus));
    }
    kiln_xfree(reason);
    if (run->accelerator && !json_object_get(entry, "accelerator"))
        json_object_set_new(entry, "accelerator", json_string(run->accelerator));
    return tag(entry, job_name, hash);
}

/* ------------------------------------------------------------------------ */
/* the step                                                                   */

static void finish(kiln_validation_outcome *out, const json_t *spec, json_t *entries,
                   const char *run_reason)
{
    size_t i;
    json_t *e;
    const char *failed = NULL, *running = NULL;
    size_t nrunning = 0;
    json_array_foreach(entries, i, e)
    {
        const char *result = kiln_json_get_string(e, "result");
        if (result && strcmp(result, "running") == 0) {
            nrunning++;
            if (!running)
                running = kiln_json_get_string(e, "reason");
        } else if (!json_is_true(json_object_get(e, "passed")) && !failed) {
            failed = kiln_json_get_string(e, "reason");
            if (!failed)
                failed = "a node did not pass";
        }
    }
    if (run_reason) {
        out->phase = KILN_VALIDATION_FAILED;
        out->message = kiln_xstrdup(run_reason);
    } else if (failed) {
        out->phase = KILN_VALIDATION_FAILED;
        out->message = kiln_xstrdup(failed);
    } else if (nrunning) {
        out->phase = KILN_VALIDATION_RUNNING;
        out->message = kiln_xasprintf("%zu of %zu nodes still running; %s", nrunning,
                                      json_array_size(entries), running ? running : "");
    } else if (json_array_size(entries) == 0) {
        out->phase = KILN_VALIDATION_FAILED;
        out->message = kiln_xstrdup("no node was validated");
    } else {
        out->phase = KILN_VALIDATION_PASSED;
    }
    out->observed = kiln_validate_status_new(entries);
    json_object_set_new(out->observed, "phase",
                        json_string(kiln_validation_phase_name(out->phase)));
    if (out->message)
        json_object_set_new(out->observed, "message", json_string(out->message));
    out->status = json_deep_copy(out->observed);
    const char *acc = kiln_json_get_string(spec, "accelerator");
    if (acc && *acc)
        json_object_set_new(out->status, "accelerator", json_string(acc));
    json_object_set(out->status, "checks", json_object_get(spec, "checks"));
}

/* A finished result of the same run kept in the last status. */
static const json_t *previous_result(const json_t *previous, const char *node, const char *hash)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(previous, "nodes"), i, e)
    {
        const char *n = kiln_json_get_string(e, "name");
        const char *r = kiln_json_get_string(e, "run");
        const char *res = kiln_json_get_string(e, "result");
        if (n && r && res && strcmp(n, node) == 0 && strcmp(r, hash) == 0 &&
            strcmp(res, "running") != 0)
            return e;
    }
    return NULL;
}

static int apply_service_account(kiln_manager *m, const char *ns, kiln_err *err)
{
    /* No Role or RoleBinding: the checks need no API access at all. */
    json_t *sa =
        json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:b}", "apiVersion", "v1", "kind",
                  "ServiceAccount", "metadata", "name", KILN_GPUCHECK_SERVICE_ACCOUNT, "namespace",
                  ns, "labels", KILN_LABEL_MANAGED_BY, "kiln", "automountServiceAccountToken", 0);
    kiln_kube_ref r = {.version = "v1",
                       .resource = "serviceaccounts",
                       .namespace = ns,
                       .name = KILN_GPUCHECK_SERVICE_ACCOUNT};
    json_t *res = NULL;
    int rc = kiln_kube_apply(&res, m->client, &r, sa, KILN_FIELD_MANAGER, true, err);
    json_decref(res);
    json_decref(sa);
    return rc;
}

static json_t *instance_labels(const json_t *inst, const char *rgd)
{
    const char *ns = kiln_json_get_string(inst, "metadata.namespace");
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", KILN_LABEL_MANAGED_BY, "kiln",
                     KILN_LABEL_INSTANCE_UID, kiln_json_get_string(inst, "metadata.uid"),
                     KILN_LABEL_INSTANCE_NAME, kiln_json_get_string(inst, "metadata.name"),
                     KILN_LABEL_INSTANCE_NAMESPACE, ns ? ns : "", KILN_LABEL_RGD, rgd);
}

/* Jobs of this validation node whose run is over (not in keep) go, with
 * their pods. */
static void delete_old_jobs(kiln_manager *m, kiln_kube_informer *jobs, const char *uid,
                            const char *node_id, const json_t *keep)
{
    char *sel =
        kiln_xasprintf("%s=%s,%s=%s", KILN_LABEL_INSTANCE_UID, uid, KILN_LABEL_VALIDATION, node_id);
    json_t *list = NULL;
    if (kiln_kube_informer_list(&list, jobs, sel, NULL) == 0) {
        size_t i;
        json_t *j;
        json_array_foreach(list, i, j)
        {
            const char *name = kiln_json_get_string(j, "metadata.name");
            if (!name || json_object_get(keep, name) ||
                kiln_json_get_path(j, "metadata.deletionTimestamp"))
                continue;
            kiln_kube_ref r = {.group = "batch",
                               .version = "v1",
                               .resource = "jobs",
                               .namespace = kiln_json_get_string(j, "metadata.namespace"),
                               .name = name};
            kiln_kube_delete_opts o = {.propagation_policy = "Background",
                                       .precondition_uid = kiln_json_get_string(j, "metadata.uid")};
            kiln_err err = {0};
            if (kiln_kube_delete(NULL, m->client, &r, &o, &err) < 0 && err.code != KILN_ENOTFOUND)
                KILN_LOG(KILN_LOG_WARN, "deleting validation Job %s: %s", name, err.msg);
            else
                KILN_LOG(KILN_LOG_INFO, "deleted validation Job %s of an earlier run", name);
        }
    }
    json_decref(list);
    kiln_xfree(sel);
}

static void lower_requeue(kiln_validation_outcome *out, int64_t ms)
{
    if (ms > 0 && (out->requeue_ms == 0 || ms < out->requeue_ms))
        out->requeue_ms = ms;
}

void kiln_validation_step(kiln_manager *m, const json_t *inst, const char *rgd, const char *node_id,
                          const json_t *spec, const json_t *previous, const char *image,
                          kiln_validation_outcome *out)
{
    memset(out, 0, sizeof(*out));
    const char *name = kiln_json_get_string(inst, "metadata.name");
    const char *ns = kiln_json_get_string(inst, "metadata.namespace");
    const char *uid = kiln_json_get_string(inst, "metadata.uid");
    /* A cluster-scoped instance's Jobs run in the controller's namespace. */
    const char *job_ns = ns && *ns ? ns : kiln_kube_client_config(m->client)->namespace;
    if (!job_ns || !*job_ns)
        job_ns = "default";
    char *inst_key = kiln_xasprintf("inst:%s:%s:%s", rgd, ns ? ns : "", name);
    json_t *entries = json_array();
    json_t *keep = json_object();
    json_t *nodes = NULL, *labels = NULL, *owner = NULL;
    char *selector = NULL, *run_reason = NULL;
    kiln_validation_selection sel;
    memset(&sel, 0, sizeof(sel));
    kiln_kube_informer *jobs = NULL, *pods = NULL;
    kiln_err err = {0};

    jobs = kiln_manager_child_informer(m, "batch", "v1", "jobs", &err);
    pods = jobs ? kiln_manager_child_informer(m, "", "v1", "pods", &err) : NULL;
    if (!jobs || !pods) {
        /* Not a verdict: the caches will come. */
        json_array_append_new(entries,
                              json_pack("{s:s, s:s, s:b, s:s, s:[]}", "name", "(all)", "result",
                                        "running", "passed", 0, "reason", err.msg, "checks"));
        lower_requeue(out, 5000);
        goto done;
    }
    selector = kiln_validation_label_selector(spec, &err);
    if (!selector) {
        run_reason = kiln_xstrdup(err.msg);
        goto cleanup;
    }
    nodes = kiln_manager_nodes_list(m, selector, inst_key);
    if (!nodes) {
        json_array_append_new(entries, json_pack("{s:s, s:s, s:b, s:s, s:[]}", "name", "(all)",
                                                 "result", "running", "passed", 0, "reason",
                                                 "waiting for the node cache", "checks"));
        lower_requeue(out, 2000);
        goto done;
    }
    kiln_validation_select(&sel, spec, nodes);
    if (sel.why_none) {
        run_reason = kiln_xstrdup(sel.why_none);
        goto cleanup;
    }

    labels = instance_labels(inst, rgd);
    owner = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "apiVersion",
                      kiln_json_get_string(inst, "apiVersion"), "kind",
                      kiln_json_get_string(inst, "kind"), "name", name, "uid", uid, "controller", 1,
                      "blockOwnerDeletion", 1);
    const char *revalidate = json_string_value(
        json_object_get(kiln_json_get_path(inst, "metadata.annotations"), KILN_ANN_REVALIDATE));
    int64_t generation = json_integer_value(kiln_json_get_path(inst, "metadata.generation"));
    int64_t timeout_s = json_integer_value(json_object_get(spec, "timeoutSeconds"));
    if (timeout_s <= 0)
        timeout_s = 600;
    bool sa_applied = false;
    int64_t now = (int64_t)time(NULL);

    for (size_t i = 0; i < sel.len; i++) {
        kiln_validation_target *t = &sel.items[i];
        if (t->why_not) {
            json_t *e = kiln_validate_node_failed(t->node, t->why_not);
            if (t->accelerator)
                json_object_set_new(e, "accelerator", json_string(t->accelerator));
            json_array_append_new(entries, e);
            continue;
        }
        kiln_validation_run run = {.instance_name = name,
                                   .instance_namespace = job_ns,
                                   .node_id = node_id,
                                   .node = t->node,
                                   .accelerator = t->accelerator,
                                   .checks = json_object_get(spec, "checks"),
                                   .gpus = t->gpus,
                                   .timeout_s = timeout_s,
                                   .generation = generation,
                                   .revalidate = revalidate,
                                   .image = image ? image : KILN_GPUCHECK_IMAGE_DEFAULT};
        char hash[11];
        kiln_validation_run_hash(hash, &run);
        char *jname = kiln_validation_job_name(&run, hash);
        json_object_set_new(keep, jname, json_true());
        json_t *job = kiln_kube_informer_get(jobs, job_ns, jname);
        const json_t *prev = previous_result(previous, t->node, hash);
        if (!job && prev) {
            json_array_append_new(entries, json_deep_copy(prev));
        } else if (!job) {
            kiln_err cerr = {0};
            int rc = 0;
            if (!sa_applied) {
                rc = apply_service_account(m, job_ns, &cerr);
                sa_applied = rc == 0;
            }
            if (rc == 0) {
                json_t *want = kiln_validation_job(&run, jname, hash, labels, owner);
                kiln_kube_ref r = {.group = "batch",
                                   .version = "v1",
                                   .resource = "jobs",
                                   .namespace = job_ns,
                                   .name = jname};
                rc = kiln_kube_create(NULL, m->client, &r, want, NULL, &cerr);
                json_decref(want);
                if (rc == KILN_ECONFLICT)
                    rc = 0; /* created meanwhile: its events will come */
            }
            json_t *e =
                json_pack("{s:s, s:s, s:b, s:b, s:i, s:[]}", "name", t->node, "result", "running",
                          "passed", 0, "simulated", 0, "gpus", t->gpus, "checks");
            if (rc == 0) {
                KILN_LOG(KILN_LOG_INFO, "instance %s/%s: validation Job %s/%s on node %s",
                         ns ? ns : "", name, job_ns, jname, t->node);
                json_object_set_new(e, "reason",
                                    json_sprintf("node %s: Job %s created", t->node, jname));
            } else {
                json_object_set_new(
                    e, "reason",
                    json_sprintf("node %s: cannot create Job %s: %s", t->node, jname, cerr.msg));
                lower_requeue(out, 5000);
            }
            json_object_set_new(e, "accelerator", json_string(t->accelerator));
            json_array_append_new(entries, tag(e, jname, hash));
        } else {
            char *psel = kiln_xasprintf("%s=%s", KILN_LABEL_VALIDATION_JOB, jname);
            json_t *all = NULL, *mine = json_array();
            if (kiln_kube_informer_list(&all, pods, psel, NULL) == 0) {
                size_t k;
                json_t *p;
                json_array_foreach(all, k, p)
                {
                    const char *pns = kiln_json_get_string(p, "metadata.namespace");
                    if (pns && strcmp(pns, job_ns) == 0)
                        json_array_append(mine, p);
                }
            }
            bool final = false;
            int64_t wait = 0;
            json_array_append_new(entries, kiln_validation_node_result(&run, jname, hash, job, mine,
                                                                       now, &final, &wait));
            if (!final)
                lower_requeue(out, wait);
            json_decref(all);
            json_decref(mine);
            kiln_xfree(psel);
        }
        json_decref(job);
        kiln_xfree(jname);
    }

cleanup:
    if (jobs && uid)
        delete_old_jobs(m, jobs, uid, node_id, keep);
done:
    finish(out, spec, entries, run_reason);
    json_decref(entries);
    json_decref(keep);
    json_decref(nodes);
    json_decref(labels);
    json_decref(owner);
    kiln_validation_selection_free(&sel);
    kiln_xfree(selector);
    kiln_xfree(run_reason);
    kiln_xfree(inst_key);
}

void kiln_validation_outcome_free(kiln_validation_outcome *o)
{
    json_decref(o->observed);
    json_decref(o->status);
    kiln_xfree(o->message);
    memset(o, 0, sizeof(*o));
}
