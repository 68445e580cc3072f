/* SimpleSchema over arbitrary input: each YAML document is converted as a
 * spec (and as custom types; a document with "spec"/"types" keys uses
 * those), the raw bytes as one declaration. Whatever converts is then put
 * through the rest of the pipeline (CRD synthesis, a self-comparison that must
 * find no breaking change, default + validate + prune of an empty object). No
 * crash, no leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/schema.h"
#include "core/yaml.h"
#include "graph/compat.h"
#include "graph/crd.h"
#include "graph/simpleschema.h"

static void exercise(const json_t *schema)
{
    json_t *value = json_object();
    kiln_schema_errors errs = {0};
    json_t *crd = NULL;
    kiln_crd_spec spec = {.version = "v1", .kind = "Fuzz", .spec_schema = schema};
    /* A schema never breaks itself; a CRD can always carry it. */
    if (kiln_crd_breaking_changes(NULL, schema, schema) != 0)
        abort();
    if (kiln_crd_synthesize(&crd, &spec, NULL) != 0)
        abort();
    json_decref(crd);
    kiln_schema_default(value, schema);
    kiln_schema_validate(value, schema, "spec", &errs);
    kiln_schema_prune(value, schema, false);
    kiln_schema_errors_free(&errs);
    json_decref(value);
}

static void convert(const json_t *spec, const json_t *types)
{
    json_t *out = NULL;
    kiln_errs errs = {0};
    int rc = kiln_simpleschema_to_openapi(&out, spec, types, "spec.schema.spec", &errs);
    /* The contract: 0 with a schema, or an error code with a message. */
    if ((rc == 0) != (out != NULL) || (rc != 0 && errs.len == 0))
        abort();
    if (out)
        exercise(out);
    json_decref(out);
    kiln_errs_free(&errs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kiln_yaml_limits limits = {.max_depth = 64, .max_nodes = 20000, .max_documents = 8};
    json_t *docs = NULL;
    size_t i;
    json_t *doc;

    if (kiln_yaml_load(&docs, (const char *)data, size, "fuzz", &limits, NULL) == 0) {
        json_array_foreach(docs, i, doc)
        {
            const json_t *spec = json_object_get(doc, "spec");
            const json_t *types = json_object_get(doc, "types");
            convert(doc, NULL);
            convert(doc, doc);
            if (spec || types)
                convert(spec, types);
        }
        json_decref(docs);
    }

    char *decl = malloc(size + 1);
    if (!decl)
        return 0;
    memcpy(decl, data, size);
    decl[size] = '\0';
    json_t *out = NULL;
    kiln_errs errs = {0};
    bool required = false;
    if (kiln_simpleschema_field(&out, &required, decl, NULL, "spec.x", &errs) == 0)
        exercise(out);
    json_decref(out);
    kiln_errs_free(&errs);
    free(decl);
    return 0;
}
