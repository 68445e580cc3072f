/* Loads arbitrary bytes as YAML; whatever loads must survive a dump and a
 * reload unchanged (load(dump(x)) == x), which is what `kiln render` and the
 * applied-hash rely on. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/json.h"
#include "core/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Small bounds keep each run fast; the bounds themselves are tested. */
    kiln_yaml_limits limits = {.max_depth = 64, .max_nodes = 100000, .max_documents = 100};
    json_t *docs = NULL, *again = NULL;
    kiln_buf out;
    kiln_err err;

    kiln_buf_init(&out, 0);
    if (kiln_yaml_load(&docs, (const char *)data, size, "fuzz", &limits, &err) != 0)
        goto out;
    if (kiln_yaml_dump_all(&out, docs, &err) != 0)
        abort();
    if (kiln_yaml_load(&again, out.data ? out.data : "", out.len, "dump", NULL, &err) != 0)
        abort();
    if (!kiln_json_equal(docs, again))
        abort();
    /* The JSON writer must accept the same documents. */
    char *canon = kiln_json_canonical(docs);
    if (!canon)
        abort();
    json_t *parsed = NULL;
    size_t n = 0;
    while (canon[n])
        n++;
    /* Depth 64 in YAML is within kiln_json_load's 128, so this must parse back. */
    if (kiln_json_load(&parsed, canon, n, &err) != 0 || !kiln_json_equal(parsed, docs))
        abort();
    json_decref(parsed);
    free(canon);
out:
    kiln_buf_free(&out);
    json_decref(docs);
    json_decref(again);
    return 0;
}
