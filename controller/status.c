/* controller/status.c: building kstatus-shaped status documents. */
#include <string.h>
#include <time.h>

#include "controller/status.h"
#include "core/json.h"

void kiln_status_now(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const json_t *find_cond(const json_t *conds, const char *type)
{
    size_t i;
    const json_t *c;
    if (!json_is_array(conds))
        return NULL;
    json_array_foreach(conds, i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && strcmp(t, type) == 0)
            return c;
    }
    return NULL;
}

const json_t *kiln_status_condition(const json_t *status, const char *type)
{
    return find_cond(json_object_get(status, "conditions"), type);
}

void kiln_status_set_condition(json_t *conds, const json_t *old_conds, const char *type,
                               const char *status, const char *reason, const char *message,
                               int64_t generation, const char *now)
{
    const json_t *old = find_cond(old_conds, type);
    const char *ltt = now;
    const char *old_status = json_string_value(json_object_get(old, "status"));
    const char *old_ltt = json_string_value(json_object_get(old, "lastTransitionTime"));
    /* lastTransitionTime moves only when the status flips: no churn. */
    if (old_status && old_ltt && strcmp(old_status, status) == 0)
        ltt = old_ltt;
    json_t *c = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "type", type, "status", status,
                          "observedGeneration", (json_int_t)generation, "lastTransitionTime", ltt,
                          "reason", reason, "message", message ? message : "");
    size_t i;
    json_t *v;
    json_array_foreach(conds, i, v)
    {
        const char *t = json_string_value(json_object_get(v, "type"));
        if (t && strcmp(t, type) == 0) {
            json_array_set_new(conds, i, c);
            return;
        }
    }
    json_array_append_new(conds, c);
}

json_t *kiln_status_instance(const json_t *old_status, const kiln_status_input *in, const char *now)
{
    const json_t *oc = json_object_get(old_status, "conditions");
    json_t *st = json_object();
    json_t *conds = json_array();
    int64_t gen = in->generation;
    const char *state;
    char msg[512];

    if (json_is_object(in->projected)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)in->projected, k, v) json_object_set(st, k, v);
    }

    bool graph_ok = in->graph_error == NULL;
    bool resources_ready = graph_ok && !in->suspended && in->ready == in->nodes;
    bool validated = graph_ok && in->validations_ready == in->validations;
    bool vfailed = graph_ok && in->validation_failed != NULL && !in->deleting && !in->suspended;
    validated = validated && !vfailed;
    bool stalled = (in->stalled != NULL || vfailed) && !in->deleting;
    const char *stalled_msg = in->stalled ? in->stalled : in->validation_failed;
    bool ready = !in->deleting && resources_ready && validated && !stalled;

    /* Order: Ready first (kstatus readers and `kubectl get` look there), then
     * the abnormal-true pair, then the detail conditions. */
    if (in->deleting) {
        kiln_status_set_condition(conds, oc, "Ready", "False", "Deleting",
                                  "deleting children in reverse order", gen, now);
    } else if (ready) {
        snprintf(msg, sizeof(msg), "%zu/%zu resources ready", in->ready, in->nodes);
        kiln_status_set_condition(conds, oc, "Ready", "True", "Reconciled", msg, gen, now);
    } else if (stalled) {
        kiln_status_set_condition(conds, oc, "Ready", "False",
                                  in->stalled ? "Stalled" : "ValidationFailed", stalled_msg, gen,
                                  now);
    } else if (in->suspended) {
        kiln_status_set_condition(conds, oc, "Ready", "False", "Suspended",
                                  "reconciliation is suspended (kiln.dev/reconcile: suspended)",
                                  gen, now);
    } else {
        const char *why = in->graph_error          ? in->graph_error
                          : in->retrying           ? in->retrying
                          : !resources_ready       ? in->not_ready
                          : in->validation_running ? in->validation_running
                                                   : "waiting for GPU validation";
        kiln_status_set_condition(conds, oc, "Ready", "False", "Progressing", why, gen, now);
    }

    bool reconciling = !ready && !stalled && !in->suspended;
    /* kstatus readers show Reconciling's message: say what is in progress. */
    const char *rmsg = "";
    if (reconciling) {
        const json_t *rc = json_array_get(conds, 0);
        rmsg = json_string_value(json_object_get(rc, "message"));
    }
    kiln_status_set_condition(conds, oc, "Reconciling", reconciling ? "True" : "False",
                              in->deleting  ? "Deleting"
                              : reconciling ? "Progressing"
                                            : "Reconciled",
                              rmsg ? rmsg : "", gen, now);
    kiln_status_set_condition(conds, oc, "Stalled", stalled ? "True" : "False",
                              !stalled      ? "NoError"
                              : in->stalled ? "Error"
                                            : "ValidationFailed",
                              stalled ? stalled_msg : "", gen, now);

    if (graph_ok)
        kiln_status_set_condition(conds, oc, "GraphResolved", "True", "Resolved", "", gen, now);
    else
        kiln_status_set_condition(conds, oc, "GraphResolved", "False", "ResolutionFailed",
                                  in->graph_error, gen, now);

    if (in->suspended)
        kiln_status_set_condition(conds, oc, "ResourcesReady", "False", "ReconciliationSuspended",
                                  "", gen, now);
    else if (in->deleting)
        kiln_status_set_condition(conds, oc, "ResourcesReady", "False", "UnderDeletion", "", gen,
                                  now);
    else if (resources_ready) {
        snprintf(msg, sizeof(msg), "%zu/%zu resources ready", in->ready, in->nodes);
        kiln_status_set_condition(conds, oc, "ResourcesReady", "True", "AllResourcesReady", msg,
                                  gen, now);
    } else
        kiln_status_set_condition(conds, oc, "ResourcesReady", "False", "NotReady",
                                  in->not_ready ? in->not_ready : in->graph_error, gen, now);

    if (in->validations == 0)
        kiln_status_set_condition(conds, oc, "Validated", "True", "NotRequired",
                                  "the graph has no validation node", gen, now);
    else if (validated)
        kiln_status_set_condition(conds, oc, "Validated", "True", "Passed",
                                  "every selected GPU node passed", gen, now);
    else if (vfailed)
        kiln_status_set_condition(conds, oc, "Validated", "False", "Failed", in->validation_failed,
                                  gen, now);
    else if (in->validation_running)
        kiln_status_set_condition(conds, oc, "Validated", "False", "Running",
                                  in->validation_running, gen, now);
    else
        kiln_status_set_condition(conds, oc, "Validated", "False", "Pending",
                                  "waiting for GPU validation results", gen, now);

    if (in->deleting)
        state = "DELETING";
    else if (stalled)
        state = "ERROR";
    else if (ready)
        state = "ACTIVE";
    else
        state = "IN_PROGRESS";

    json_object_set_new(st, "observedGeneration", json_integer((json_int_t)gen));
    json_object_set_new(st, "conditions", conds);
    json_object_set_new(st, "state", json_string(state));
    json_object_set(st, "resources", in->resources ? (json_t *)in->resources : json_array());
    if (!in->resources)
        json_decref(json_object_get(st, "resources"));
    if (in->validation)
        json_object_set(st, "validation", (json_t *)in->validation);
    return st;
}

bool kiln_status_equal(const json_t *a, const json_t *b)
{
    bool ea = !a || (json_is_object(a) && json_object_size(a) == 0);
    bool eb = !b || (json_is_object(b) && json_object_size(b) == 0);
    if (ea || eb)
        return ea && eb;
    return kiln_json_equal(a, b);
}
