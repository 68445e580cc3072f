/* graph/scope.c: which kinds are cluster-scoped, and the names of kinds and
 * states.
 *
 * A namespaced child without metadata.namespace gets the instance's
 * namespace; a cluster-scoped one must not. Without a cluster to ask, kiln
 * knows the built-in cluster-scoped kinds below; a caller with discovery
 * (the controller) passes a kiln_graph_scope_fn for the rest.
 */
#include <string.h>

#include "graph/graph.h"

static const char *const cluster_kinds[] = {"Namespace",
                                            "Node",
                                            "PersistentVolume",
                                            "ClusterRole",
                                            "ClusterRoleBinding",
                                            "CustomResourceDefinition",
                                            "StorageClass",
                                            "PriorityClass",
                                            "IngressClass",
                                            "RuntimeClass",
                                            "GatewayClass",
                                            "ValidatingWebhookConfiguration",
                                            "MutatingWebhookConfiguration",
                                            "APIService",
                                            "CSIDriver",
                                            NULL};

bool kiln_graph_kind_is_cluster_scoped(const char *api_version, const char *kind)
{
    (void)api_version;
    if (!kind)
        return false;
    for (size_t i = 0; cluster_kinds[i]; i++)
        if (strcmp(cluster_kinds[i], kind) == 0)
            return true;
    return false;
}

const char *kiln_graph_node_kind_name(kiln_graph_node_kind kind)
{
    switch (kind) {
    case KILN_GRAPH_NODE_TEMPLATE:
        return "template";
    case KILN_GRAPH_NODE_SCRIPT:
        return "script";
    case KILN_GRAPH_NODE_EXTERNAL_REF:
        return "externalRef";
    case KILN_GRAPH_NODE_VALIDATION:
        return "validation";
    }
    return "unknown";
}

const char *kiln_node_state_name(kiln_node_state state)
{
    switch (state) {
    case KILN_NODE_READY:
        return "READY";
    case KILN_NODE_PENDING:
        return "PENDING";
    case KILN_NODE_WAITING:
        return "WAITING";
    case KILN_NODE_EXCLUDED:
        return "EXCLUDED";
    case KILN_NODE_ERROR:
        return "ERROR";
    }
    return "UNKNOWN";
}
