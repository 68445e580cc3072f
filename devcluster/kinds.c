/* devcluster/kinds.c: the registry of served resources, built-in and CRD-defined. */
#include <string.h>

#include "core/mem.h"
#include "devcluster/internal.h"

typedef struct builtin {
    const char *group, *version, *plural, *singular, *kind;
    bool namespaced, status_sub, scale_sub, generation;
    const char *short_names; /* comma separated */
    bool all_category;
} builtin;

/* The kinds kiln and its recipes touch (issue: built-in kinds list). */
static const builtin builtins[] = {
    {"", "v1", "namespaces", "namespace", "Namespace", false, true, false, false, "ns", false},
    {"", "v1", "configmaps", "configmap", "ConfigMap", true, false, false, false, "cm", false},
    {"", "v1", "secrets", "secret", "Secret", true, false, false, false, "", false},
    {"", "v1", "services", "service", "Service", true, true, false, false, "svc", true},
    {"", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, false, false, false,
     "sa", false},
    {"", "v1", "pods", "pod", "Pod", true, true, false, false, "po", true},
    {"", "v1", "nodes", "node", "Node", false, true, false, false, "no", false},
    {"", "v1", "events", "event", "Event", true, false, false, false, "ev", false},
    {"", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", true,
     true, false, false, "pvc", false},
    {"", "v1", "endpoints", "endpoints", "Endpoints", true, false, false, false, "ep", false},
    {"apps", "v1", "deployments", "deployment", "Deployment", true, true, true, true, "deploy",
     true},
    {"apps", "v1", "statefulsets", "statefulset", "StatefulSet", true, true, true, true, "sts",
     true},
    {"apps", "v1", "daemonsets", "daemonset", "DaemonSet", true, true, false, true, "ds", true},
    {"apps", "v1", "replicasets", "replicaset", "ReplicaSet", true, true, true, true, "rs", true},
    {"batch", "v1", "jobs", "job", "Job", true, true, false, true, "", true},
    {"coordination.k8s.io", "v1", "leases", "lease", "Lease", true, false, false, false, "", false},
    {"rbac.authorization.k8s.io", "v1", "roles", "role", "Role", true, false, false, false, "",
     false},
    {"rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", true, false,
     false, false, "", false},
    {"rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", false, false,
     false, false, "", false},
    {"rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding",
     "ClusterRoleBinding", false, false, false, false, "", false},
    {"networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", true, true, false, true, "ing",
     false},
    {"apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition",
     "CustomResourceDefinition", false, true, false, true, "crd,crds", false},
};

kiln_dc_resource *kiln_dc_kinds_add(kiln_devcluster *dc, const char *group, const char *version,
                                    const char *plural, const char *singular, const char *kind,
                                    bool namespaced)
{
    kiln_dc_resource *r = kiln_xcalloc(1, sizeof *r);
    r->group = kiln_xstrdup(group);
    r->version = kiln_xstrdup(version);
    r->plural = kiln_xstrdup(plural);
    r->singular = kiln_xstrdup(singular);
    r->kind = kiln_xstrdup(kind);
    r->list_kind = kiln_xasprintf("%sList", kind);
    r->namespaced = namespaced;
    r->short_names = json_array();
    r->categories = json_array();
    kiln_dc_table_init(&r->objects);
    if (dc->nres == dc->capres) {
        dc->capres = dc->capres ? dc->capres * 2 : 32;
        dc->res = kiln_xrealloc(dc->res, dc->capres * sizeof *dc->res);
    }
    dc->res[dc->nres++] = r;
    dc->discovery_gen++;
    return r;
}

void kiln_dc_kinds_register_builtins(kiln_devcluster *dc)
{
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
        const builtin *b = &builtins[i];
        kiln_dc_resource *r = kiln_dc_kinds_add(dc, b->group, b->version, b->plural, b->singular,
                                                b->kind, b->namespaced);
        r->status_sub = b->status_sub;
        r->scale_sub = b->scale_sub;
        r->generation = b->generation;
        r->smp = true;
        char *names = kiln_xstrdup(b->short_names);
        char *save = NULL;
        for (char *t = strtok_r(names, ",", &save); t; t = strtok_r(NULL, ",", &save))
            json_array_append_new(r->short_names, json_string(t));
        kiln_xfree(names);
        if (b->all_category)
            json_array_append_new(r->categories, json_string("all"));
    }
}

kiln_dc_resource *kiln_dc_kinds_find(kiln_devcluster *dc, const char *group, const char *version,
                                     const char *plural)
{
    for (size_t i = 0; i < dc->nres; i++) {
        kiln_dc_resource *r = dc->res[i];
        if (!strcmp(r->group, group) && !strcmp(r->version, version) && !strcmp(r->plural, plural))
            return r;
    }
    return NULL;
}

kiln_dc_resource *kiln_dc_kinds_find_kind(kiln_devcluster *dc, const char *group, const char *kind)
{
    for (size_t i = 0; i < dc->nres; i++) {
        kiln_dc_resource *r = dc->res[i];
        if (!strcmp(r->group, group) && !strcmp(r->kind, kind))
            return r;
    }
    return NULL;
}

static void resource_free(kiln_dc_resource *r)
{
    kiln_xfree(r->group);
    kiln_xfree(r->version);
    kiln_xfree(r->plural);
    kiln_xfree(r->singular);
    kiln_xfree(r->kind);
    kiln_xfree(r->list_kind);
    kiln_xfree(r->scale_spec);
    kiln_xfree(r->scale_status);
    kiln_xfree(r->scale_selector);
    kiln_xfree(r->crd_name);
    json_decref(r->short_names);
    json_decref(r->categories);
    json_decref(r->schema);
    json_decref(r->columns);
    kiln_dc_table_free(&r->objects);
    kiln_xfree(r);
}

void kiln_dc_kinds_remove(kiln_devcluster *dc, kiln_dc_resource *r)
{
    for (size_t i = 0; i < dc->nres; i++) {
        if (dc->res[i] != r)
            continue;
        memmove(&dc->res[i], &dc->res[i + 1], (dc->nres - i - 1) * sizeof *dc->res);
        dc->nres--;
        break;
    }
    /* Events in the history and in watcher queues may still point at r. */
    for (size_t i = 0; i < dc->hlen; i++) {
        kiln_dc_event *ev = dc->hist[(dc->hhead + i) % dc->hcap];
        if (ev->res == r)
            ev->res = NULL;
    }
    for (kiln_dc_watcher *w = dc->watchers; w; w = w->next) {
        for (size_t i = 0; i < w->qlen; i++) {
            kiln_dc_event *ev = w->queue[(w->qhead + i) % w->qcap];
            if (ev->res == r)
                ev->res = NULL;
        }
        if (w->res == r) {
            w->res = NULL;
            w->ended = true;
            pthread_cond_broadcast(&w->cond);
        }
    }
    dc->discovery_gen++;
    resource_free(r);
}

void kiln_dc_kinds_free_all(kiln_devcluster *dc)
{
    for (size_t i = 0; i < dc->nres; i++)
        resource_free(dc->res[i]);
    kiln_xfree(dc->res);
    dc->res = NULL;
    dc->nres = dc->capres = 0;
}
