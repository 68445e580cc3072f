/* graph/rgd_crd.c: the CRD of kiln's own ResourceGraphDefinition kind
 * (DESIGN.md section 2), printed by `kiln crd --builtin` and checked in
 * under crds/.
 *
 * The schema checks the shape the API server can check cheaply (required
 * fields, name patterns, enums, defaults); SimpleSchema, templates and
 * expressions stay free-form (x-kubernetes-preserve-unknown-fields) because
 * kiln compiles them and reports errors with paths in the RGD's status.
 */
#include "graph/crd.h"

#include <stdlib.h>

/* Where the generated kind's identity would change under existing
 * instances, an update is refused (as kro does). Only the API server
 * evaluates these CEL rules; the dev cluster does not. */
#define IMMUTABLE(what)                                                                            \
    "\"x-kubernetes-validations\":[{\"rule\":\"self == oldSelf\",\"message\":\"" what              \
    " is immutable\"}]"

#define FREE_OBJECT "{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true}"
#define STRING "{\"type\":\"string\"}"
#define STRINGS "{\"type\":\"array\",\"items\":{\"type\":\"string\"}}"
#define NAME_LIST                                                                                  \
    "{\"type\":\"array\",\"maxItems\":32,\"x-kubernetes-list-type\":\"set\",\"items\":{\"type\":"  \
    "\"string\",\"maxLength\":63,\"pattern\":\"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$\"}}"
#define STRING_MAP "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}"

/* clang-format off */
static const char rgd_crd[] =
    "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
    "\"metadata\":{\"name\":\"resourcegraphdefinitions.kiln.dev\","
    "\"labels\":{\"app.kubernetes.io/part-of\":\"kiln\"}},"
    "\"spec\":{\"group\":\"kiln.dev\",\"scope\":\"Cluster\","
    "\"names\":{\"kind\":\"ResourceGraphDefinition\",\"listKind\":\"ResourceGraphDefinitionList\","
    "\"plural\":\"resourcegraphdefinitions\",\"singular\":\"resourcegraphdefinition\","
    "\"shortNames\":[\"rgd\"],\"categories\":[\"kiln\"]},"
    "\"versions\":[{\"name\":\"v1alpha1\",\"served\":true,\"storage\":true,"
    "\"subresources\":{\"status\":{}},"
    "\"additionalPrinterColumns\":["
      "{\"name\":\"APIVERSION\",\"type\":\"string\",\"jsonPath\":\".spec.schema.apiVersion\"},"
      "{\"name\":\"KIND\",\"type\":\"string\",\"jsonPath\":\".spec.schema.kind\"},"
      "{\"name\":\"STATE\",\"type\":\"string\",\"jsonPath\":\".status.state\"},"
      "{\"name\":\"READY\",\"type\":\"string\","
        "\"jsonPath\":\".status.conditions[?(@.type==\\\"Ready\\\")].status\"},"
      "{\"name\":\"TOPOLOGICALORDER\",\"type\":\"string\","
        "\"jsonPath\":\".status.topologicalOrder\",\"priority\":1},"
      "{\"name\":\"AGE\",\"type\":\"date\",\"jsonPath\":\".metadata.creationTimestamp\"}],"
    "\"schema\":{\"openAPIV3Schema\":{"
    "\"description\":\"A ResourceGraphDefinition declares a new kind and the graph of objects "
      "each instance of it expands into.\","
    "\"type\":\"object\",\"required\":[\"spec\"],\"properties\":{"
    "\"apiVersion\":" STRING ",\"kind\":" STRING ",\"metadata\":{\"type\":\"object\"},"
    "\"spec\":{\"type\":\"object\",\"required\":[\"schema\"],\"properties\":{"
      "\"schema\":{\"type\":\"object\",\"required\":[\"apiVersion\",\"kind\"],"
      "\"description\":\"The generated kind: API version, kind, group, scope, SimpleSchema spec, "
        "custom types and status projections.\",\"properties\":{"
        "\"apiVersion\":{\"type\":\"string\",\"pattern\":\"^v[0-9]+((alpha|beta)[0-9]+)?$\","
          IMMUTABLE("apiVersion") "},"
        "\"kind\":{\"type\":\"string\",\"maxLength\":63,\"pattern\":\"^[A-Z][a-zA-Z0-9]{0,62}$\","
          IMMUTABLE("kind") "},"
        "\"group\":{\"type\":\"string\",\"default\":\"kiln.dev\"," IMMUTABLE("group") "},"
        "\"scope\":{\"type\":\"string\",\"enum\":[\"Namespaced\",\"Cluster\"],"
          "\"default\":\"Namespaced\"," IMMUTABLE("scope") "},"
        "\"spec\":" FREE_OBJECT ",\"types\":" FREE_OBJECT ",\"status\":" FREE_OBJECT ","
        "\"printerColumns\":{\"type\":\"array\",\"items\":" FREE_OBJECT "},"
        "\"shortNames\":" NAME_LIST ",\"categories\":" NAME_LIST ","
        "\"metadata\":{\"type\":\"object\",\"properties\":{"
          "\"labels\":" STRING_MAP ",\"annotations\":" STRING_MAP "}}}},"
      "\"lua\":" STRING ","
      "\"resources\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"id\"],"
        "\"properties\":{"
        "\"id\":{\"type\":\"string\",\"pattern\":\"^[a-z][a-zA-Z0-9]*$\"},"
        "\"template\":" FREE_OBJECT ",\"externalRef\":" FREE_OBJECT ","
        "\"validation\":" FREE_OBJECT ",\"script\":" STRING ","
        "\"readyWhen\":" STRINGS ",\"includeWhen\":" STRINGS ","
        "\"forEach\":{\"type\":\"array\",\"items\":" FREE_OBJECT "}}}},"
      "\"serviceAccountName\":" STRING "}},"
    "\"status\":{\"type\":\"object\",\"properties\":{"
      "\"state\":" STRING ",\"topologicalOrder\":" STRINGS ","
      "\"resources\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"id\"],"
        "\"properties\":{\"id\":" STRING ",\"dependsOn\":" STRINGS "}}},"
      "\"observedGeneration\":{\"type\":\"integer\",\"format\":\"int64\"}}}}}}}]}}";
/* clang-format on */

/* Follows keys (indexes in arrays) from doc; borrowed result or NULL. */
static json_t *dig(json_t *doc, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n && doc; i++)
        doc = json_is_array(doc) ? json_array_get(doc, strtoul(keys[i], NULL, 10))
                                 : json_object_get(doc, keys[i]);
    return doc;
}

json_t *kiln_crd_builtin(void)
{
    static const char *const status_path[] = {
        "spec", "versions", "0", "schema", "openAPIV3Schema", "properties", "status", "properties"};
    json_t *crd = json_loads(rgd_crd, 0, NULL);
    /* A constant: the tests parse it, so NULL here is a build defect. */
    if (!crd)
        return NULL;
    json_object_set_new(dig(crd, status_path, sizeof(status_path) / sizeof(*status_path)),
                        "conditions", kiln_crd_conditions_schema());
    json_t *out = json_array();
    json_array_append_new(out, crd);
    return out;
}
