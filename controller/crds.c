/* controller/crds.c: installs kiln's own CRDs (what crds/ holds), for
 * `kiln dev` and `kiln controller --install-crds`. */
#include "controller/manager.h"
#include "graph/crd.h"

int kiln_manager_install_crds(kiln_kube_client *client, kiln_err *err)
{
    json_t *crds = kiln_crd_builtin();
    size_t i;
    json_t *crd;
    int rc = 0;
    json_array_foreach(crds, i, crd)
    {
        kiln_kube_ref ref = {
            .group = "apiextensions.k8s.io",
            .version = "v1",
            .resource = "customresourcedefinitions",
            .name = json_string_value(json_object_get(json_object_get(crd, "metadata"), "name"))};
        json_t *applied = NULL;
        /* Server-side apply under kiln's field manager: idempotent, and an
         * older kiln's CRD is upgraded in place. */
        rc = kiln_kube_apply(&applied, client, &ref, crd, "kiln", true, err);
        json_decref(applied);
        if (rc < 0) {
            kiln_err_prefix(err, "installing %s", ref.name);
            break;
        }
    }
    json_decref(crds);
    return rc;
}
