#include "validate/measured.h"

#include <math.h>

#include "validate/evaluate.h"
#include "validate/jstr.h"

json_t *kiln_validate_measured_new(const char *node, const char *accelerator, const char *requested,
                                   bool simulated)
{
    json_t *d = json_object();
    json_object_set_new(d, "kind", json_string("kiln-gpucheck"));
    json_object_set_new(d, "schemaVersion", json_integer(KILN_VALIDATE_SCHEMA));
    json_object_set_new(d, "version", json_string(KILN_VERSION));
    json_object_set_new(d, "node", kiln_validate_jstr(node));
    if (accelerator)
        json_object_set_new(d, "accelerator", kiln_validate_jstr(accelerator));
    if (requested)
        json_object_set_new(d, "acceleratorRequested", kiln_validate_jstr(requested));
    json_object_set_new(d, "simulated", json_boolean(simulated));
    json_object_set_new(d, "gpus", json_array());
    json_object_set_new(d, "checks", json_array());
    return d;
}

json_t *kiln_validate_measured_add_gpu(json_t *doc, int index, const char *name)
{
    json_t *g = json_object();
    json_object_set_new(g, "index", json_integer(index));
    json_object_set_new(g, "name", kiln_validate_jstr(name));
    json_array_append_new(json_object_get(doc, "gpus"), g);
    return g;
}

json_t *kiln_validate_measured_add_check(json_t *doc, const char *name)
{
    json_t *c = json_object();
    json_object_set_new(c, "name", json_string(name));
    json_object_set_new(c, "status", json_string("ran"));
    json_object_set_new(c, "measurements", json_array());
    json_array_append_new(json_object_get(doc, "checks"), c);
    return c;
}

void kiln_validate_measured_set_status(json_t *check, const char *status, const char *reason)
{
    json_object_set_new(check, "status", json_string(status));
    if (reason)
        json_object_set_new(check, "reason", kiln_validate_jstr(reason));
}

static json_t *new_measurement(json_t *check, const char *metric, int gpu, int peer)
{
    json_t *m = json_object();
    json_object_set_new(m, "metric", json_string(metric));
    if (gpu >= 0)
        json_object_set_new(m, "gpu", json_integer(gpu));
    if (peer >= 0)
        json_object_set_new(m, "peer", json_integer(peer));
    json_array_append_new(json_object_get(check, "measurements"), m);
    return m;
}

void kiln_validate_measured_value(json_t *check, const char *metric, int gpu, int peer,
                                  double value, const char *unit)
{
    json_t *m = new_measurement(check, metric, gpu, peer);
    /* NaN and infinity have no JSON form; leaving the value out makes the
     * evaluation fail the metric instead of guessing. */
    if (isfinite(value)) {
        double r = round(value * 100.0) / 100.0;
        if (r == floor(r) && fabs(r) < 9e15)
            json_object_set_new(m, "value", json_integer((json_int_t)r));
        else
            json_object_set_new(m, "value", json_real(r));
    }
    if (unit && *unit)
        json_object_set_new(m, "unit", json_string(unit));
}

void kiln_validate_measured_text(json_t *check, const char *metric, int gpu, const char *text)
{
    json_t *m = new_measurement(check, metric, gpu, -1);
    json_object_set_new(m, "text", kiln_validate_jstr(text));
}

void kiln_validate_measured_skip(json_t *check, const char *metric, int gpu, const char *reason)
{
    json_t *m = new_measurement(check, metric, gpu, -1);
    json_object_set_new(m, "skipped", kiln_validate_jstr(reason));
}

json_t *kiln_validate_measured_details(json_t *check)
{
    json_t *d = json_object_get(check, "details");
    if (!d) {
        d = json_object();
        json_object_set_new(check, "details", d);
    }
    return d;
}
