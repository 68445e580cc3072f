/* controller/events.c: core/v1 Events, best effort. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "controller/events.h"
#include "core/json.h"
#include "core/log.h"

json_t *kiln_events_build(const json_t *obj, const char *type, const char *reason,
                          const char *message, const char *component, long long now_ns)
{
    const char *name = kiln_json_get_string(obj, "metadata.name");
    const char *ns = kiln_json_get_string(obj, "metadata.namespace");
    char ev_name[320], ts[32];
    time_t secs = (time_t)(now_ns / 1000000000LL);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(ev_name, sizeof(ev_name), "%.240s.%llx", name ? name : "object", now_ns);
    json_t *involved = json_pack(
        "{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}", "apiVersion",
        kiln_json_get_string(obj, "apiVersion"), "kind", kiln_json_get_string(obj, "kind"), "name",
        name, "namespace", ns, "uid", kiln_json_get_string(obj, "metadata.uid"), "resourceVersion",
        kiln_json_get_string(obj, "metadata.resourceVersion"));
    /* A message over 1,024 bytes is refused by the events API; clip it. */
    char msg[1024];
    snprintf(msg, sizeof(msg), "%s", message ? message : "");
    return json_pack("{s:s, s:s, s:{s:s, s:s}, s:o, s:s, s:s, s:s, s:{s:s}, s:s, s:s, s:i, "
                     "s:s, s:s}",
                     "apiVersion", "v1", "kind", "Event", "metadata", "name", ev_name, "namespace",
                     ns && *ns ? ns : "default", "involvedObject", involved, "reason", reason,
                     "message", msg, "type", type, "source", "component", component,
                     "firstTimestamp", ts, "lastTimestamp", ts, "count", 1, "reportingComponent",
                     component, "reportingInstance", component);
}

void kiln_events_record(kiln_kube_client *c, const json_t *obj, const char *type,
                        const char *reason, const char *message, const char *component)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    json_t *ev = kiln_events_build(obj, type, reason, message, component,
                                   (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
    kiln_kube_ref ref = {.version = "v1",
                         .resource = "events",
                         .namespace = kiln_json_get_string(ev, "metadata.namespace")};
    kiln_err err = {0};
    if (kiln_kube_create(NULL, c, &ref, ev, NULL, &err) < 0)
        KILN_LOG(KILN_LOG_DEBUG, "event %s not recorded: %s", reason, err.msg);
    json_decref(ev);
}
