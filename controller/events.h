/* controller/events.h: Kubernetes Events about kiln's objects.
 *
 * Events are best effort (client-go's rule): a failure to record one is
 * logged at debug level and never fails a reconcile. Events go through the
 * core/v1 API, named <object>.<hex nanoseconds> as client-go names them, in
 * the object's namespace ("default" for cluster-scoped objects).
 */
#ifndef KILN_CONTROLLER_EVENTS_H
#define KILN_CONTROLLER_EVENTS_H

#include <jansson.h>

#include "kube/client.h"

/* Records an Event about obj (borrowed). type is "Normal" or "Warning";
 * strings are borrowed. */
void kiln_events_record(kiln_kube_client *c, const json_t *obj, const char *type,
                        const char *reason, const char *message, const char *component);

/* The Event document kiln_events_record sends (new reference); now_ns is
 * the time in nanoseconds since the epoch. */
json_t *kiln_events_build(const json_t *obj, const char *type, const char *reason,
                          const char *message, const char *component, long long now_ns);

#endif
