/* devcluster/table.c: meta.k8s.io/v1 Table responses for `kubectl get`.
 *
 * kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and falls
 * back to plain lists, but only a Table carries CRD printer columns. Columns:
 * Name, then the CRD's additionalPrinterColumns (or a few per built-in kind),
 * then Age, as the real table convertors do. Rows carry PartialObjectMetadata
 * (includeObject=Metadata, the default).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "devcluster/internal.h"

bool kiln_dc_wants_table(const char *accept)
{
    return accept && strstr(accept, "as=Table") && strstr(accept, "g=meta.k8s.io");
}

/* kube's duration.HumanDuration. */
static void human_age(const char *ts, char *out, size_t n)
{
    struct tm tm = {0};
    if (!ts || !strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm)) {
        snprintf(out, n, "<unknown>");
        return;
    }
    long long d = (long long)(time(NULL) - timegm(&tm));
    if (d < 0)
        d = 0;
    if (d < 120)
        snprintf(out, n, "%llds", d);
    else if (d < 600)
        snprintf(out, n, "%lldm%llds", d / 60, d % 60);
    else if (d < 3 * 3600)
        snprintf(out, n, "%lldm", d / 60);
    else if (d < 8 * 3600)
        snprintf(out, n, "%lldh%lldm", d / 3600, (d % 3600) / 60);
    else if (d < 48 * 3600)
        snprintf(out, n, "%lldh", d / 3600);
    else if (d < 8 * 86400)
        snprintf(out, n, "%lldd%lldh", d / 86400, (d % 86400) / 3600);
    else
        snprintf(out, n, "%lldd", d / 86400);
}

static json_t *col(const char *name, const char *type, const char *desc)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:i}", "name", name, "type", type, "format",
                     !strcmp(name, "Name") ? "name" : "", "description", desc, "priority", 0);
}

static long long int_at(const json_t *obj, const char *a, const char *b)
{
    return json_integer_value(json_object_get(json_object_get(obj, a), b));
}

/* Built-in columns between Name and Age: {name, jsonPath or NULL for computed}. */
static void builtin_columns(const kiln_dc_resource *r, json_t *defs)
{
    if (!strcmp(r->plural, "deployments")) {
        json_array_append_new(defs, col("Ready", "string", "Number of ready replicas"));
        json_array_append_new(defs, col("Up-to-date", "integer", "Updated replicas"));
        json_array_append_new(defs, col("Available", "integer", "Available replicas"));
    } else if (!strcmp(r->plural, "pods")) {
        json_array_append_new(defs, col("Ready", "string", "Ready containers"));
        json_array_append_new(defs, col("Status", "string", "Pod phase"));
        json_array_append_new(defs, col("Restarts", "string", "Container restarts"));
    } else if (!strcmp(r->plural, "namespaces") || !strcmp(r->plural, "nodes")) {
        json_array_append_new(defs, col("Status", "string", "Status"));
    } else if (!strcmp(r->plural, "jobs")) {
        json_array_append_new(defs, col("Status", "string", "Job status"));
        json_array_append_new(defs, col("Completions", "string", "Completions"));
    } else if (!strcmp(r->plural, "configmaps") || !strcmp(r->plural, "secrets")) {
        json_array_append_new(defs, col("Data", "integer", "Number of data items"));
    }
}

static void builtin_cells(const kiln_dc_resource *r, const json_t *o, json_t *cells)
{
    char buf[64];
    if (!strcmp(r->plural, "deployments")) {
        long long want = json_is_integer(json_object_get(json_object_get(o, "spec"), "replicas"))
                             ? int_at(o, "spec", "replicas")
                             : 1;
        snprintf(buf, sizeof buf, "%lld/%lld", int_at(o, "status", "readyReplicas"), want);
        json_array_append_new(cells, json_string(buf));
        json_array_append_new(cells, json_integer(int_at(o, "status", "updatedReplicas")));
        json_array_append_new(cells, json_integer(int_at(o, "status", "availableReplicas")));
    } else if (!strcmp(r->plural, "pods")) {
        json_t *cs = json_object_get(json_object_get(o, "status"), "containerStatuses");
        json_t *ctrs = json_object_get(json_object_get(o, "spec"), "containers");
        size_t ready = 0, i;
        json_t *c;
        json_array_foreach(cs, i, c) ready += json_is_true(json_object_get(c, "ready"));
        snprintf(buf, sizeof buf, "%zu/%zu", ready, json_array_size(ctrs));
        json_array_append_new(cells, json_string(buf));
        const char *phase =
            json_string_value(json_object_get(json_object_get(o, "status"), "phase"));
        /* As kubectl's printer: a terminated container's reason (Completed, Error). */
        const char *reason = json_string_value(json_object_get(
            json_object_get(json_object_get(json_array_get(cs, 0), "state"), "terminated"),
            "reason"));
        json_array_append_new(cells, json_string(reason ? reason : phase ? phase : "Pending"));
        json_array_append_new(cells, json_string("0"));
    } else if (!strcmp(r->plural, "namespaces")) {
        const char *phase =
            json_string_value(json_object_get(json_object_get(o, "status"), "phase"));
        json_array_append_new(cells, json_string(phase ? phase : "Active"));
    } else if (!strcmp(r->plural, "nodes")) {
        const char *ready = "Unknown";
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(json_object_get(o, "status"), "conditions"), i, c)
        {
            const char *t = json_string_value(json_object_get(c, "type"));
            const char *st = json_string_value(json_object_get(c, "status"));
            if (t && !strcmp(t, "Ready"))
                ready = st && !strcmp(st, "True") ? "Ready" : "NotReady";
        }
        json_array_append_new(cells, json_string(ready));
    } else if (!strcmp(r->plural, "jobs")) {
        long long ok = int_at(o, "status", "succeeded");
        json_t *comp = json_object_get(json_object_get(o, "spec"), "completions");
        long long want = json_is_integer(comp) ? json_integer_value(comp) : 1;
        bool failed = int_at(o, "status", "failed") > 0 && !int_at(o, "status", "active");
        json_array_append_new(cells, json_string(ok >= want ? "Complete"
                                                 : failed   ? "Failed"
                                                            : "Running"));
        snprintf(buf, sizeof buf, "%lld/%lld", ok, want);
        json_array_append_new(cells, json_string(buf));
    } else if (!strcmp(r->plural, "configmaps") || !strcmp(r->plural, "secrets")) {
        size_t n = json_object_size(json_object_get(o, "data")) +
                   json_object_size(json_object_get(o, "binaryData"));
        json_array_append_new(cells, json_integer((json_int_t)n));
    }
}

static json_t *cell_value(json_t *v, const char *type)
{
    if (!v)
        return json_null();
    if (json_is_array(v)) {
        /* Several matches print comma-separated, as kubectl's JSONPath printer. */
        kiln_buf b;
        kiln_buf_init(&b, 65536);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (i)
                kiln_buf_puts(&b, ",", NULL);
            if (json_is_string(e)) {
                kiln_buf_puts(&b, json_string_value(e), NULL);
            } else {
                char *s = kiln_dc_dump(e);
                kiln_buf_puts(&b, s, NULL);
                free(s);
            }
        }
        json_t *s = json_string(b.data ? b.data : "");
        kiln_buf_free(&b);
        json_decref(v);
        return s;
    }
    if (!strcmp(type, "date") && json_is_string(v)) {
        char age[32];
        human_age(json_string_value(v), age, sizeof age);
        json_decref(v);
        return json_string(age);
    }
    if (json_is_object(v)) {
        char *s = kiln_dc_dump(v);
        json_decref(v);
        json_t *r = json_string(s);
        free(s);
        return r;
    }
    return v;
}

json_t *kiln_dc_table_new(const kiln_dc_resource *r, json_t *objects, bool with_columns,
                          const char *rv)
{
    json_t *t =
        json_pack("{s:s,s:s,s:{}}", "kind", "Table", "apiVersion", "meta.k8s.io/v1", "metadata");
    if (rv)
        json_object_set_new(json_object_get(t, "metadata"), "resourceVersion", json_string(rv));
    json_t *defs = json_array();
    json_array_append_new(defs, col("Name", "string",
                                    "Name must be unique within a namespace. More info: "
                                    "https://kubernetes.io/docs/concepts/overview/working-with-"
                                    "objects/names#names"));
    bool age_from_columns = false;
    if (r->columns) {
        size_t i;
        json_t *c;
        json_array_foreach(r->columns, i, c)
        {
            const char *name = json_string_value(json_object_get(c, "name"));
            const char *type = json_string_value(json_object_get(c, "type"));
            const char *desc = json_string_value(json_object_get(c, "description"));
            json_t *d = col(name ? name : "", type && strcmp(type, "date") ? type : "string",
                            desc ? desc : "");
            json_t *prio = json_object_get(c, "priority");
            json_object_set_new(d, "priority", prio ? json_incref(prio) : json_integer(0));
            json_array_append_new(defs, d);
        }
        /* A CRD's declared columns are the whole table (the API server defaults
         * them to Age only when a CRD declares none). */
        age_from_columns = true;
    } else {
        builtin_columns(r, defs);
    }
    if (!age_from_columns)
        json_array_append_new(defs, col("Age", "string",
                                        "CreationTimestamp is a timestamp representing the "
                                        "server time when this object was created."));
    json_t *rows = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(objects, i, o)
    {
        json_t *cells = json_array();
        const char *name = kiln_dc_meta_str(o, "name");
        json_array_append_new(cells, json_string(name ? name : ""));
        if (r->columns) {
            size_t j;
            json_t *c;
            json_array_foreach(r->columns, j, c)
            {
                const char *path = json_string_value(json_object_get(c, "jsonPath"));
                const char *type = json_string_value(json_object_get(c, "type"));
                json_t *v = path ? kiln_dc_jsonpath(o, path) : NULL;
                json_array_append_new(cells, cell_value(v, type ? type : "string"));
            }
        } else {
            builtin_cells(r, o, cells);
        }
        if (!age_from_columns) {
            char age[32];
            human_age(kiln_dc_meta_str(o, "creationTimestamp"), age, sizeof age);
            json_array_append_new(cells, json_string(age));
        }
        json_t *md = json_deep_copy(json_object_get(o, "metadata"));
        json_object_del(md, "managedFields");
        json_t *row = json_pack("{s:o,s:{s:s,s:s,s:o}}", "cells", cells, "object", "kind",
                                "PartialObjectMetadata", "apiVersion", "meta.k8s.io/v1", "metadata",
                                md ? md : json_object());
        json_array_append_new(rows, row);
    }
    if (with_columns)
        json_object_set_new(t, "columnDefinitions", defs);
    else
        json_decref(defs);
    json_object_set_new(t, "rows", rows);
    return t;
}
