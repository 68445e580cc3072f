/* The backend of a kiln-gpucheck built without nvcc: it can simulate, but it
 * has nothing to measure real GPUs with, and says so. */
#include "validate/gpucheck/backend.h"

static int probe(json_t *doc, kiln_err *err)
{
    json_t *host = json_object();
    json_object_set_new(host, "cudaBuild", json_false());
    json_object_set_new(doc, "host", host);
    return kiln_err_set(err, KILN_ENOTFOUND,
                        "kiln-gpucheck was built without CUDA (nvcc was not found at build "
                        "time): only --simulate works in this binary");
}

static void run(json_t *doc, const char *check, const kiln_gpucheck_config *cfg)
{
    (void)doc;
    (void)check;
    (void)cfg;
}

const kiln_gpucheck_backend *kiln_gpucheck_backend_get(void)
{
    static const kiln_gpucheck_backend backend = {"none", probe, run};
    return &backend;
}
