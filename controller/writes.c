/* controller/writes.c: the object writes both reconcilers make: kiln's
 * finalizer and status through the /status subresource. */
#include <string.h>

#include "controller/internal.h"
#include "controller/status.h"
#include "core/json.h"

bool kiln_ctl_has_finalizer(const json_t *obj)
{
    size_t i;
    json_t *v;
    json_array_foreach(kiln_json_get_path(obj, "metadata.finalizers"), i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), KILN_FINALIZER) == 0)
            return true;
    }
    return false;
}

int kiln_ctl_set_finalizer(json_t **out, kiln_kube_client *c, const kiln_kube_ref *ref,
                           const json_t *obj, bool present, kiln_err *err)
{
    json_t *list = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(kiln_json_get_path(obj, "metadata.finalizers"), i, v)
    {
        if (!(json_is_string(v) && strcmp(json_string_value(v), KILN_FINALIZER) == 0))
            json_array_append(list, v);
    }
    if (present)
        json_array_append_new(list, json_string(KILN_FINALIZER));
    json_t *patch =
        json_pack("{s:{s:s?, s:o}}", "metadata", "resourceVersion",
                  kiln_json_get_string(obj, "metadata.resourceVersion"), "finalizers", list);
    int rc = kiln_kube_patch(out, c, ref, KILN_KUBE_PATCH_MERGE, patch, NULL, err);
    json_decref(patch);
    return rc;
}

int kiln_ctl_write_status(kiln_kube_client *c, const kiln_kube_ref *ref, const json_t *obj,
                          json_t *status, kiln_err *err)
{
    if (kiln_status_equal(json_object_get(obj, "status"), status))
        return 0;
    json_t *next = json_deep_copy(obj);
    json_object_set(next, "status", status);
    kiln_kube_ref sref = *ref;
    sref.subresource = "status";
    int rc = kiln_kube_update(NULL, c, &sref, next, NULL, err);
    json_decref(next);
    return rc;
}
