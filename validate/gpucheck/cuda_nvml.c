#include "validate/gpucheck/cuda_internal.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

/* The few NVML entry points used, declared here with NVML's stable C ABI so
 * the build needs neither nvml.h nor libnvidia-ml (it comes with the driver,
 * not the toolkit, and is absent on build machines). */
typedef int nvml_ret;
typedef struct nvml_device_st *nvml_device;
#define NVML_SUCCESS 0
#define NVML_MEMORY_ERROR_TYPE_UNCORRECTED 1
#define NVML_VOLATILE_ECC 0

static struct {
    bool tried, ok;
    char why[160];
    nvml_ret (*init)(void);
    const char *(*error_string)(nvml_ret);
    nvml_ret (*driver_version)(char *, unsigned);
    nvml_ret (*by_pci)(const char *, nvml_device *);
    nvml_ret (*ecc_mode)(nvml_device, int *, int *);
    nvml_ret (*ecc_errors)(nvml_device, int, int, unsigned long long *);
    nvml_ret (*remapped_rows)(nvml_device, unsigned *, unsigned *, unsigned *, unsigned *);
} nv;

static const char *nv_err(nvml_ret r)
{
    const char *s = nv.error_string ? nv.error_string(r) : NULL;
    return s ? s : "unknown NVML error";
}

bool kiln_gpucheck_nvml_open(char *why, size_t n)
{
    if (!nv.tried) {
        nv.tried = true;
        void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            snprintf(nv.why, sizeof(nv.why), "NVML not available (libnvidia-ml.so.1: %s)",
                     dlerror());
        } else {
            /* Casting dlsym's void * to a function pointer is what POSIX
             * prescribes for it. */
            *(void **)&nv.init = dlsym(h, "nvmlInit_v2");
            *(void **)&nv.error_string = dlsym(h, "nvmlErrorString");
            *(void **)&nv.driver_version = dlsym(h, "nvmlSystemGetDriverVersion");
            *(void **)&nv.by_pci = dlsym(h, "nvmlDeviceGetHandleByPciBusId_v2");
            *(void **)&nv.ecc_mode = dlsym(h, "nvmlDeviceGetEccMode");
            *(void **)&nv.ecc_errors = dlsym(h, "nvmlDeviceGetTotalEccErrors");
            *(void **)&nv.remapped_rows = dlsym(h, "nvmlDeviceGetRemappedRows");
            if (!nv.init || !nv.by_pci) {
                snprintf(nv.why, sizeof(nv.why),
                         "NVML lacks nvmlInit_v2 or "
                         "nvmlDeviceGetHandleByPciBusId_v2");
            } else {
                nvml_ret r = nv.init();
                if (r == NVML_SUCCESS)
                    nv.ok = true;
                else
                    snprintf(nv.why, sizeof(nv.why), "nvmlInit: %s", nv_err(r));
            }
            /* The library stays loaded for the life of the process. */
        }
    }
    if (!nv.ok && why)
        snprintf(why, n, "%s", nv.why);
    return nv.ok;
}

bool kiln_gpucheck_nvml_driver_version(char *out, size_t n)
{
    if (!nv.ok || !nv.driver_version || n == 0)
        return false;
    char buf[96] = "";
    if (nv.driver_version(buf, sizeof(buf)) != NVML_SUCCESS)
        return false;
    snprintf(out, n, "%s", buf);
    return true;
}

bool kiln_gpucheck_nvml_ecc(kiln_gpucheck_ecc *out, const char *pci_bus_id)
{
    memset(out, 0, sizeof(*out));
    out->ecc_enabled = -1;
    if (!kiln_gpucheck_nvml_open(out->why, sizeof(out->why)))
        return false;
    nvml_device dev = NULL;
    nvml_ret r = nv.by_pci(pci_bus_id, &dev);
    if (r != NVML_SUCCESS) {
        snprintf(out->why, sizeof(out->why), "NVML cannot find %s: %s", pci_bus_id, nv_err(r));
        return false;
    }
    int cur = 0, pending = 0;
    if (nv.ecc_mode && nv.ecc_mode(dev, &cur, &pending) == NVML_SUCCESS)
        out->ecc_enabled = cur ? 1 : 0;
    if (out->ecc_enabled == 0) {
        snprintf(out->why, sizeof(out->why), "ECC is disabled on this GPU");
    } else if (nv.ecc_errors) {
        r = nv.ecc_errors(dev, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC,
                          &out->uncorrected);
        if (r == NVML_SUCCESS)
            out->have_uncorrected = true;
        else
            snprintf(out->why, sizeof(out->why), "ECC counters: %s", nv_err(r));
    }
    if (nv.remapped_rows) {
        unsigned corr = 0, unc = 0, pend = 0, failed = 0;
        if (nv.remapped_rows(dev, &corr, &unc, &pend, &failed) == NVML_SUCCESS) {
            out->have_remap = true;
            /* A failed remap leaves the row bad for good: as serious as one
             * waiting for a reset. */
            out->remap_pending = pend + failed;
        }
    }
    return true;
}
