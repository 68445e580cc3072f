/* Tests for recipes/recipes.c: the shipped lock data (exact versions, orders,
 * overlays and why they applied), inheritance and deep merge on small
 * made-up data, and every way resolution fails closed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/json.h"
#include "core/yaml.h"
#include "recipes/recipes.h"

static const kiln_recipes *shipped(void)
{
    kiln_err err = {0};
    const kiln_recipes *r = kiln_recipes_builtin(&err);
    if (r == NULL)
        fail_msg("embedded lock data: %s", err.msg);
    return r;
}

/* criteria from "service=eks accelerator=h100 ..." */
static json_t *crit(const char *spec)
{
    json_t *c = json_object();
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok;
         tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        assert_non_null(eq);
        *eq = '\0';
        json_object_set_new(c, tok, json_string(eq + 1));
    }
    return c;
}

static int resolve(json_t **out, const kiln_recipes *r, const char *spec, kiln_err *err)
{
    json_t *c = crit(spec);
    int rc = kiln_recipes_resolve(out, r, c, err);
    json_decref(c);
    return rc;
}

/* The names of a list of objects (or a list of strings) joined by ','. */
static void names(char *buf, size_t n, const json_t *list)
{
    size_t i, used = 0;
    json_t *v;
    buf[0] = '\0';
    json_array_foreach(list, i, v)
    {
        const char *s = json_is_string(v) ? json_string_value(v) : kiln_json_get_string(v, "name");
        used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? "," : "", s);
        assert_true(used < n);
    }
}

static const json_t *component(const json_t *res, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(res, "components"), i, c)
    {
        if (strcmp(kiln_json_get_string(c, "name"), name) == 0)
            return c;
    }
    return NULL;
}

static const char *reason(const json_t *res, const char *overlay)
{
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(res, "overlays"), i, o)
    {
        if (strcmp(kiln_json_get_string(o, "name"), overlay) == 0)
            return kiln_json_get_string(o, "reason");
    }
    return NULL;
}

static kiln_recipes *load_text(const char *yaml, kiln_err *err, int *rc)
{
    json_t *docs = NULL;
    kiln_recipes *r = NULL;
    assert_int_equal(kiln_yaml_load(&docs, yaml, strlen(yaml), "test.yaml", NULL, err), 0);
    *rc = kiln_recipes_load(&r, docs, err);
    json_decref(docs);
    return r;
}

static void test_resolve__eks_h100_ubuntu_inference_exact(void **state)
{
    (void)state;
    json_t *res = NULL;
    kiln_err err = {0};
    char buf[1024];
    assert_int_equal(
        resolve(&res, shipped(), "service=eks accelerator=h100 os=ubuntu intent=inference", &err),
        0);
    names(buf, sizeof buf, json_object_get(res, "deploymentOrder"));
    assert_string_equal(buf, "cert-manager,gateway-api-crds,inference-extension-crds,kai-scheduler,"
                             "kgateway-crds,kgateway,kube-prometheus-stack,gpu-operator,lws,"
                             "nvidia-dra-driver-gpu");
    names(buf, sizeof buf, json_object_get(res, "components"));
    assert_string_equal(buf, "cert-manager,gateway-api-crds,inference-extension-crds,kai-scheduler,"
                             "kgateway-crds,kgateway,kube-prometheus-stack,gpu-operator,lws,"
                             "nvidia-dra-driver-gpu");
    names(buf, sizeof buf, json_object_get(res, "overlays"));
    assert_string_equal(buf, "base,eks,h100,inference,ubuntu");
    assert_string_equal(reason(res, "base"), "root of every recipe");
    assert_string_equal(reason(res, "eks"), "matches service=eks");
    assert_string_equal(reason(res, "ubuntu"), "matches os=ubuntu");

    const json_t *gpu = component(res, "gpu-operator");
    assert_string_equal(kiln_json_get_string(gpu, "version"), "v25.10.1");
    assert_string_equal(kiln_json_get_string(gpu, "repository"),
                        "https://helm.ngc.nvidia.com/nvidia");
    assert_string_equal(kiln_json_get_string(gpu, "values.driver.version"), "580.105.08");
    names(buf, sizeof buf, json_object_get(gpu, "dependencies"));
    assert_string_equal(buf, "cert-manager,kube-prometheus-stack");
    assert_string_equal(kiln_json_get_string(component(res, "cert-manager"), "version"), "v1.17.2");
    assert_string_equal(kiln_json_get_string(component(res, "kube-prometheus-stack"), "version"),
                        "82.8.0");
    assert_string_equal(kiln_json_get_string(component(res, "nvidia-dra-driver-gpu"), "version"),
                        "25.12.0");
    assert_string_equal(kiln_json_get_string(component(res, "kai-scheduler"), "version"),
                        "v0.13.0");
    assert_string_equal(kiln_json_get_string(component(res, "lws"), "version"), "0.11.1");
    assert_string_equal(kiln_json_get_string(component(res, "gateway-api-crds"), "version"),
                        "v1.5.1");
    assert_string_equal(kiln_json_get_string(component(res, "inference-extension-crds"), "version"),
                        "v1.6.0");
    assert_string_equal(kiln_json_get_string(component(res, "kgateway"), "version"), "v2.1.0");
    assert_true(json_is_true(
        kiln_json_get_path(component(res, "kgateway"), "values.inferenceExtension.enabled")));
    /* eks puts Prometheus on gp2, deep-merged beside the registry's 50Gi. */
    const json_t *spec =
        kiln_json_get_path(component(res, "kube-prometheus-stack"),
                           "values.prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec");
    assert_string_equal(kiln_json_get_string(spec, "storageClassName"), "gp2");
    assert_string_equal(kiln_json_get_string(spec, "resources.requests.storage"), "50Gi");
    assert_null(component(res, "network-operator"));
    assert_string_equal(kiln_json_get_string(res, "validation.accelerator"), "h100-sxm");
    assert_int_equal(json_integer_value(kiln_json_get_path(res, "validation.gpusPerNode")), 8);
    names(buf, sizeof buf, json_object_get(res, "constraints"));
    assert_string_equal(buf, "K8s.server.version,OS.release.ID,OS.release.VERSION_ID,"
                             "OS.sysctl./proc/sys/kernel/osrelease");
    json_decref(res);
}

/* Each service, accelerator, os and intent overlay, and the specific ones. */
static void test_resolve__each_overlay(void **state)
{
    (void)state;
    static const struct {
        const char *criteria, *overlays, *order;
    } cases[] = {
        {"service=gke accelerator=h100 os=cos intent=training",
         "base,h100,training,gke,h100-gke-training",
         "cert-manager,kai-scheduler,kube-prometheus-stack,gpu-operator,nvidia-dra-driver-gpu"},
        {"service=aks accelerator=a100 os=ubuntu intent=training", "base,a100,aks,training,ubuntu",
         "cert-manager,kai-scheduler,kube-prometheus-stack,gpu-operator,network-operator,"
         "nvidia-dra-driver-gpu"},
        {"service=aks accelerator=h100 os=ubuntu intent=training",
         "base,aks,h100,training,ubuntu,h100-aks-training",
         "cert-manager,kai-scheduler,kube-prometheus-stack,gpu-operator,network-operator,"
         "nvidia-dra-driver-gpu"},
        {"service=oke accelerator=gb200 os=ubuntu intent=training",
         "base,gb200,oke,training,ubuntu",
         "cert-manager,kai-scheduler,kube-prometheus-stack,gpu-operator,nvidia-dra-driver-gpu"},
        {"service=kind accelerator=l40s os=ubuntu intent=training",
         "base,kind,l40s,training,ubuntu",
         "cert-manager,kai-scheduler,kube-prometheus-stack,gpu-operator,network-operator,"
         "nvidia-dra-driver-gpu"},
        {"service=self-managed accelerator=h200 os=ubuntu intent=training",
         "base,h200,self-managed,training,ubuntu",
         "cert-manager,kai-scheduler,kube-prometheus-stack,gpu-operator,nvidia-dra-driver-gpu"},
        {"service=eks accelerator=h200 os=ubuntu intent=training",
         "base,eks,h200,training,ubuntu,h200-eks-training",
         "cert-manager,kai-scheduler,kube-prometheus-stack,gpu-operator,nvidia-dra-driver-gpu"},
        {"service=eks accelerator=h100 os=ubuntu intent=training platform=kubeflow",
         "base,eks,h100,training,ubuntu,kubeflow,h100-eks-training",
         "cert-manager,kai-scheduler,kube-prometheus-stack,gpu-operator,kubeflow-trainer,"
         "nvidia-dra-driver-gpu"},
        {"service=eks accelerator=h100 os=ubuntu intent=inference platform=dynamo",
         "base,eks,h100,inference,ubuntu,dynamo,eks-dynamo",
         "cert-manager,dynamo-crds,gateway-api-crds,inference-extension-crds,kai-scheduler,"
         "kgateway-crds,kgateway,kube-prometheus-stack,gpu-operator,dynamo-platform,lws,"
         "nvidia-dra-driver-gpu"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *res = NULL;
        kiln_err err = {0};
        char buf[1024];
        if (resolve(&res, shipped(), cases[i].criteria, &err) != 0)
            fail_msg("%s: %s", cases[i].criteria, err.msg);
        names(buf, sizeof buf, json_object_get(res, "overlays"));
        if (strcmp(buf, cases[i].overlays) != 0)
            fail_msg("%s: overlays %s, want %s", cases[i].criteria, buf, cases[i].overlays);
        names(buf, sizeof buf, json_object_get(res, "deploymentOrder"));
        if (strcmp(buf, cases[i].order) != 0)
            fail_msg("%s: order %s, want %s", cases[i].criteria, buf, cases[i].order);
        json_decref(res);
    }
}

static void test_resolve__overlay_values_and_constraints(void **state)
{
    (void)state;
    json_t *res = NULL;
    kiln_err err = {0};
    /* aks raises the Kubernetes floor (constraints merge by name) and adds
     * the network operator. */
    assert_int_equal(
        resolve(&res, shipped(), "service=aks accelerator=h100 os=ubuntu intent=training", &err),
        0);
    const json_t *cons = json_object_get(res, "constraints");
    assert_string_equal(kiln_json_get_string(json_array_get(cons, 0), "name"),
                        "K8s.server.version");
    assert_string_equal(kiln_json_get_string(json_array_get(cons, 0), "value"), ">= 1.34");
    assert_string_equal(kiln_json_get_string(json_array_get(cons, 4), "name"),
                        "nccl-all-reduce-bw");
    assert_string_equal(kiln_json_get_string(json_array_get(cons, 4), "value"), ">= 150");
    assert_string_equal(kiln_json_get_string(component(res, "network-operator"), "version"),
                        "25.1.0");
    assert_string_equal(reason(res, "h100-aks-training"), "matches service=aks accelerator=h100 "
                                                          "intent=training");
    json_decref(res);

    /* kind switches the driver off but keeps the pinned version beside it. */
    assert_int_equal(
        resolve(&res, shipped(), "service=kind accelerator=l40s os=ubuntu intent=inference", &err),
        0);
    const json_t *gpu = component(res, "gpu-operator");
    assert_true(json_is_false(kiln_json_get_path(gpu, "values.driver.enabled")));
    assert_string_equal(kiln_json_get_string(gpu, "values.driver.version"), "580.105.08");
    assert_true(json_is_true(kiln_json_get_path(gpu, "values.driver.useOpenKernelModules")));
    assert_true(json_is_false(kiln_json_get_path(gpu, "values.migManager.enabled")));
    assert_string_equal(kiln_json_get_string(res, "validation.accelerator"), "l40s");
    assert_null(kiln_json_get_path(res, "validation.gpusPerNode"));
    json_decref(res);

    /* dynamo adds to the DRA driver's values; eks-dynamo to dynamo-platform's. */
    assert_int_equal(resolve(&res, shipped(),
                             "service=eks accelerator=gb200 os=ubuntu intent=inference "
                             "platform=dynamo",
                             &err),
                     0);
    const json_t *dra = component(res, "nvidia-dra-driver-gpu");
    assert_true(json_is_true(kiln_json_get_path(dra, "values.gpuResourcesEnabledOverride")));
    assert_string_equal(kiln_json_get_string(dra, "values.nvidiaDriverRoot"), "/run/nvidia/driver");
    assert_string_equal(kiln_json_get_string(component(res, "dynamo-platform"),
                                             "values.etcd.persistence.storageClass"),
                        "gp2");
    assert_int_equal(json_integer_value(kiln_json_get_path(res, "validation.gpusPerNode")), 4);
    assert_string_equal(
        kiln_json_get_string(json_array_get(json_object_get(res, "constraints"), 0), "value"),
        ">= 1.34");
    json_decref(res);
}

static void test_resolve__aliases_and_case(void **state)
{
    (void)state;
    json_t *res = NULL;
    kiln_err err = {0};
    assert_int_equal(resolve(&res, shipped(),
                             "service=Vanilla accelerator=H200 os=UBUNTU intent=Inference", &err),
                     0);
    assert_string_equal(kiln_json_get_string(res, "criteria.service"), "self-managed");
    assert_string_equal(kiln_json_get_string(res, "criteria.accelerator"), "h200");
    assert_string_equal(kiln_json_get_string(res, "criteria.os"), "ubuntu");
    assert_null(kiln_json_get_path(res, "criteria.platform"));
    json_decref(res);
}

static void expect_error(const char *spec, int code, const char *msg)
{
    json_t *res = NULL;
    kiln_err err = {0};
    int rc = resolve(&res, shipped(), spec, &err);
    if (rc != code || strcmp(err.msg, msg) != 0)
        fail_msg("%s: got %d \"%s\", want %d \"%s\"", spec, rc, err.msg, code, msg);
    assert_null(res);
}

static void test_resolve__errors_name_the_criterion(void **state)
{
    (void)state;
    expect_error("service=gke accelerator=h100 os=ubuntu intent=inference", KILN_ENOTFOUND,
                 "criterion service=gke matched no overlay (gke needs os=cos; h100-gke-training "
                 "needs os=cos)");
    expect_error("service=eks accelerator=h100 os=rhel intent=inference", KILN_ENOTFOUND,
                 "criterion os=rhel matched no overlay (overlays exist for os: cos, ubuntu)");
    expect_error("service=eks accelerator=h100 os=cos intent=inference", KILN_ENOTFOUND,
                 "criterion os=cos matched no overlay (gke needs service=gke; h100-gke-training "
                 "needs service=gke)");
    expect_error("service=eks accelerator=h100 os=ubuntu intent=training platform=dynamo",
                 KILN_ENOTFOUND,
                 "criterion platform=dynamo matched no overlay (dynamo needs intent=inference; "
                 "eks-dynamo needs intent=inference)");
    expect_error("service=eks accelerator=h800 os=ubuntu intent=training", KILN_EINVAL,
                 "criterion accelerator: unknown value \"h800\" (known: h100, h200, a100, l40s, "
                 "gb200)");
    expect_error("service=eks accelerator=h100 intent=training", KILN_EINVAL,
                 "criterion os is required (one of: ubuntu, rhel, cos, amazonlinux)");
    expect_error("service=eks accelerator=h100 os=ubuntu intent=any", KILN_EINVAL,
                 "criterion intent is required (one of: inference, training)");
    expect_error("service=eks gpu=h100 os=ubuntu intent=training", KILN_EINVAL,
                 "unknown criterion \"gpu\" (known: service, accelerator, os, intent, platform)");
}

/* Made-up lock data: a leaf whose parent does not match by itself. */
static const char small_registry[] =
    "apiVersion: recipes.kiln.dev/v1alpha1\n"
    "kind: ComponentRegistry\n"
    "criteria:\n"
    "  service: {required: true, values: [eks, gke]}\n"
    "  accelerator: {values: [h100, a100]}\n"
    "  os: {values: [ubuntu]}\n"
    "  intent: {values: [inference, training]}\n"
    "  platform: {values: [dynamo]}\n"
    "components:\n"
    "  - {name: a, type: helm, repository: r, chart: a, version: '1', namespace: ns,\n"
    "     values: {x: {keep: 1, over: 2}, list: [1, 2], gone: 3}}\n"
    "  - {name: b, type: helm, repository: r, chart: b, version: '1', namespace: ns,\n"
    "     dependencies: [a]}\n"
    "  - {name: c, type: git, repository: g, path: p, version: v1, namespace: ns}\n";

static void test_resolve__inheritance_and_deep_merge(void **state)
{
    (void)state;
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "%s---\n"
             "apiVersion: recipes.kiln.dev/v1alpha1\nkind: RecipeOverlay\nmetadata: {name: base}\n"
             "spec: {components: [{name: a}, {name: b}]}\n"
             "---\n"
             "apiVersion: recipes.kiln.dev/v1alpha1\nkind: RecipeOverlay\n"
             "metadata: {name: train}\n"
             "spec:\n  criteria: {intent: training}\n"
             "  components: [{name: a, values: {x: {over: 20, new: 5}, list: [9]}}]\n"
             "---\n"
             "apiVersion: recipes.kiln.dev/v1alpha1\nkind: RecipeOverlay\n"
             "metadata: {name: leaf}\n"
             "spec:\n  base: train\n  criteria: {service: eks, accelerator: h100}\n"
             "  components: [{name: a, version: '2', values: {x: {over: 200}, gone: null}},\n"
             "               {name: c}]\n",
             small_registry);
    kiln_err err = {0};
    int rc;
    kiln_recipes *r = load_text(yaml, &err, &rc);
    assert_int_equal(rc, 0);
    json_t *res = NULL;
    char buf[256];
    assert_int_equal(resolve(&res, r, "service=eks accelerator=h100", &err), 0);
    names(buf, sizeof buf, json_object_get(res, "overlays"));
    assert_string_equal(buf, "base,train,leaf");
    assert_string_equal(reason(res, "train"), "base of leaf");
    assert_string_equal(reason(res, "leaf"), "matches service=eks accelerator=h100");
    const json_t *a = component(res, "a");
    assert_string_equal(kiln_json_get_string(a, "version"), "2");
    char *values = kiln_json_canonical(json_object_get(a, "values"));
    assert_string_equal(values,
                        "{\"gone\":null,\"list\":[9],\"x\":{\"keep\":1,\"new\":5,\"over\":200}}");
    free(values);
    names(buf, sizeof buf, json_object_get(res, "deploymentOrder"));
    assert_string_equal(buf, "a,b,c");
    assert_string_equal(kiln_json_get_string(component(res, "c"), "path"), "p");
    json_decref(res);

    /* Without the leaf's criteria only the training overlay applies. */
    assert_int_equal(resolve(&res, r, "service=gke intent=training", &err), KILN_ENOTFOUND);
    assert_string_equal(err.msg, "criterion service=gke matched no overlay (overlays exist for "
                                 "service: eks)");
    kiln_recipes_free(r);
}

static void test_resolve__ambiguous_overlays(void **state)
{
    (void)state;
    char yaml[4096];
    kiln_err err = {0};
    int rc;
    json_t *res = NULL;
    snprintf(yaml, sizeof yaml,
             "%s---\n"
             "apiVersion: recipes.kiln.dev/v1alpha1\nkind: RecipeOverlay\nmetadata: {name: base}\n"
             "spec: {components: [{name: a}]}\n---\n"
             "apiVersion: recipes.kiln.dev/v1alpha1\nkind: RecipeOverlay\nmetadata: {name: one}\n"
             "spec: {criteria: {accelerator: h100}}\n---\n"
             "apiVersion: recipes.kiln.dev/v1alpha1\nkind: RecipeOverlay\nmetadata: {name: two}\n"
             "spec: {criteria: {accelerator: h100}}\n---\n"
             "apiVersion: recipes.kiln.dev/v1alpha1\nkind: RecipeOverlay\nmetadata: {name: svc}\n"
             "spec: {criteria: {service: eks}}\n",
             small_registry);
    kiln_recipes *r = load_text(yaml, &err, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(resolve(&res, r, "service=eks accelerator=h100", &err), KILN_ECONFLICT);
    assert_string_equal(err.msg,
                        "criteria are ambiguous: overlays one and two both match accelerator=h100");
    assert_null(res);
    kiln_recipes_free(r);

    /* Unrelated overlays that pin one component to different versions. */
    snprintf(yaml, sizeof yaml,
             "%s---\n"
             "apiVersion: recipes.kiln.dev/v1alpha1\nkind: RecipeOverlay\nmetadata: {name: base}\n"
             "spec: {components: [{name: a}]}\n---\n"
             "apiVersion: recipes.kiln.dev/v1alpha1\nkind: RecipeOverlay\nmetadata: {name: gpu}\n"
             "spec: {criteria: {accelerator: h100}, components: [{name: a, version: '3'}]}\n---\n"
             "apiVersion: recipes.kiln.dev/v1alpha1\nkind: RecipeOverlay\nmetadata: {name: svc}\n"
             "spec: {criteria: {service: eks}, components: [{name: a, version: '4'}]}\n",
             small_registry);
    r = load_text(yaml, &err, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(resolve(&res, r, "service=eks accelerator=h100", &err), KILN_ECONFLICT);
    assert_string_equal(err.msg, "criteria are ambiguous: overlay gpu (accelerator=h100) pins a "
                                 "version 3 and overlay svc (service=eks) pins 4");
    kiln_recipes_free(r);
}

static void test_resolve__disabled_component(void **state)
{
    (void)state;
    char yaml[4096];
    kiln_err err = {0};
    int rc;
    json_t *res = NULL;
    char buf[128];
    snprintf(yaml, sizeof yaml,
             "%s---\n"
             "apiVersion: recipes.kiln.dev/v1alpha1\nkind: RecipeOverlay\nmetadata: {name: base}\n"
             "spec: {components: [{name: a}, {name: b}, {name: c}]}\n---\n"
             "apiVersion: recipes.kiln.dev/v1alpha1\nkind: RecipeOverlay\nmetadata: {name: noc}\n"
             "spec: {criteria: {service: eks}, components: [{name: c, enabled: false}]}\n---\n"
             "apiVersion: recipes.kiln.dev/v1alpha1\nkind: RecipeOverlay\nmetadata: {name: noa}\n"
             "spec: {criteria: {service: gke}, components: [{name: a, enabled: false}]}\n",
             small_registry);
    kiln_recipes *r = load_text(yaml, &err, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(resolve(&res, r, "service=eks", &err), 0);
    names(buf, sizeof buf, json_object_get(res, "deploymentOrder"));
    assert_string_equal(buf, "a,b");
    json_decref(res);
    assert_int_equal(resolve(&res, r, "service=gke", &err), KILN_EINVAL);
    assert_string_equal(err.msg, "component b depends on a, which this recipe does not include");
    kiln_recipes_free(r);
}

static void test_load__rejects_bad_data(void **state)
{
    (void)state;
    static const struct {
        const char *overlays, *msg;
    } cases[] = {
        {"metadata: {name: x}\nspec: {base: nope}\n", "overlay x: base \"nope\" does not exist"},
        {"metadata: {name: x}\nspec: {base: w}\n---\napiVersion: recipes.kiln.dev/v1alpha1\n"
         "kind: RecipeOverlay\nmetadata: {name: w}\nspec: {base: x}\n",
         "overlay x: its chain of bases loops"},
        {"metadata: {name: x}\nspec: {components: [{name: zz}]}\n",
         "overlay x: components[0]: \"zz\" is not in the registry"},
        {"metadata: {name: x}\nspec: {criteria: {service: aks}}\n",
         "overlay x: criteria.service is not a known value"},
        {"metadata: {name: x}\nspec: {criteria: {gpu: h100}}\n",
         "overlay x: unknown criterion \"gpu\""},
        {"metadata: {name: x}\nspec: {extra: 1}\n", "overlay x: spec.extra: unknown field"},
        {"metadata: {name: x}\nspec: {components: [{name: a, verison: '2'}]}\n",
         "overlay x: components[0].verison: unknown field"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char yaml[4096];
        snprintf(yaml, sizeof yaml,
                 "%s---\napiVersion: recipes.kiln.dev/v1alpha1\nkind: RecipeOverlay\n"
                 "metadata: {name: base}\n---\napiVersion: recipes.kiln.dev/v1alpha1\n"
                 "kind: RecipeOverlay\n%s",
                 small_registry, cases[i].overlays);
        kiln_err err = {0};
        int rc;
        kiln_recipes *r = load_text(yaml, &err, &rc);
        assert_null(r);
        assert_int_equal(rc, KILN_EINVAL);
        assert_string_equal(err.msg, cases[i].msg);
    }
}

/* Over the whole criteria space: a query either fails naming one of its own
 * criteria, or every criterion it gave was decided by an overlay that names
 * it (never a silent base-only recipe), the pins hold and the order respects
 * every dependency. */
static void test_resolve__criteria_space(void **state)
{
    (void)state;
    json_t *cat = kiln_recipes_catalog(shipped());
    const json_t *cr = json_object_get(cat, "criteria");
    const json_t *sv = kiln_json_get_path(cr, "service.values");
    const json_t *av = kiln_json_get_path(cr, "accelerator.values");
    const json_t *ov = kiln_json_get_path(cr, "os.values");
    const json_t *iv = kiln_json_get_path(cr, "intent.values");
    const json_t *pv = kiln_json_get_path(cr, "platform.values");
    size_t ok = 0, failed = 0;
    for (size_t s = 0; s < json_array_size(sv); s++)
        for (size_t a = 0; a < json_array_size(av); a++)
            for (size_t o = 0; o < json_array_size(ov); o++)
                for (size_t i = 0; i < json_array_size(iv); i++)
                    for (size_t p = 0; p <= json_array_size(pv); p++) {
                        char spec[256];
                        int n =
                            snprintf(spec, sizeof spec, "service=%s accelerator=%s os=%s intent=%s",
                                     json_string_value(json_array_get(sv, s)),
                                     json_string_value(json_array_get(av, a)),
                                     json_string_value(json_array_get(ov, o)),
                                     json_string_value(json_array_get(iv, i)));
                        if (p < json_array_size(pv))
                            snprintf(spec + n, sizeof spec - (size_t)n, " platform=%s",
                                     json_string_value(json_array_get(pv, p)));
                        json_t *res = NULL;
                        kiln_err err = {0};
                        int rc = resolve(&res, shipped(), spec, &err);
                        if (rc < 0) {
                            failed++;
                            assert_int_equal(rc, KILN_ENOTFOUND);
                            char word[80];
                            const char *c = strstr(err.msg, "criterion ");
                            assert_non_null(c);
                            sscanf(c + 10, "%79s", word);
                            if (strstr(spec, word) == NULL)
                                fail_msg("%s: error names %s: %s", spec, word, err.msg);
                            continue;
                        }
                        ok++;
                        for (int k = 0; k < KILN_RECIPES_NCRITERIA; k++) {
                            const char *v = kiln_json_get_string(json_object_get(res, "criteria"),
                                                                 kiln_recipes_criteria[k]);
                            if (v == NULL)
                                continue;
                            char want[64];
                            snprintf(want, sizeof want, "%s=%s", kiln_recipes_criteria[k], v);
                            bool decided = false;
                            size_t j;
                            json_t *e;
                            json_array_foreach(json_object_get(res, "overlays"), j, e)
                            {
                                const char *why = kiln_json_get_string(e, "reason");
                                decided = decided ||
                                          (strncmp(why, "matches ", 8) == 0 && strstr(why, want));
                            }
                            if (!decided)
                                fail_msg("%s: no overlay decided %s", spec, want);
                        }
                        const json_t *gpu = component(res, "gpu-operator");
                        assert_string_equal(kiln_json_get_string(gpu, "version"), "v25.10.1");
                        assert_string_equal(kiln_json_get_string(gpu, "values.driver.version"),
                                            "580.105.08");
                        assert_non_null(kiln_json_get_string(res, "validation.accelerator"));
                        size_t j;
                        json_t *c;
                        json_array_foreach(json_object_get(res, "components"), j, c)
                        {
                            size_t d;
                            json_t *dep;
                            json_array_foreach(json_object_get(c, "dependencies"), d, dep)
                            {
                                bool before = false;
                                for (size_t b = 0; b < j; b++)
                                    before = before ||
                                             strcmp(kiln_json_get_string(
                                                        json_array_get(
                                                            json_object_get(res, "components"), b),
                                                        "name"),
                                                    json_string_value(dep)) == 0;
                                if (!before)
                                    fail_msg("%s: %s before its dependency %s", spec,
                                             kiln_json_get_string(c, "name"),
                                             json_string_value(dep));
                            }
                        }
                        json_decref(res);
                    }
    /* 6 services x 5 accelerators x 4 os x 2 intents x 3 platform choices. */
    assert_int_equal(ok + failed, 720);
    /* ubuntu everywhere but gke, cos on gke: 6 x 5 x 2 intents, with no
     * platform or the one matching the intent. */
    assert_int_equal(ok, 120);
    json_decref(cat);
}

static void test_catalog__lists_what_ships(void **state)
{
    (void)state;
    json_t *cat = kiln_recipes_catalog(shipped());
    char buf[512];
    names(buf, sizeof buf, kiln_json_get_path(cat, "criteria.os.resolvable"));
    assert_string_equal(buf, "ubuntu,cos");
    names(buf, sizeof buf, kiln_json_get_path(cat, "criteria.service.resolvable"));
    assert_string_equal(buf, "eks,gke,aks,oke,kind,self-managed");
    names(buf, sizeof buf, kiln_json_get_path(cat, "criteria.accelerator.resolvable"));
    assert_string_equal(buf, "h100,h200,a100,l40s,gb200");
    assert_int_equal(json_array_size(json_object_get(cat, "components")), 14);
    assert_string_equal(
        kiln_json_get_string(json_array_get(json_object_get(cat, "overlays"), 0), "name"), "base");
    json_decref(cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve__eks_h100_ubuntu_inference_exact),
        cmocka_unit_test(test_resolve__each_overlay),
        cmocka_unit_test(test_resolve__overlay_values_and_constraints),
        cmocka_unit_test(test_resolve__aliases_and_case),
        cmocka_unit_test(test_resolve__errors_name_the_criterion),
        cmocka_unit_test(test_resolve__inheritance_and_deep_merge),
        cmocka_unit_test(test_resolve__ambiguous_overlays),
        cmocka_unit_test(test_resolve__disabled_component),
        cmocka_unit_test(test_load__rejects_bad_data),
        cmocka_unit_test(test_resolve__criteria_space),
        cmocka_unit_test(test_catalog__lists_what_ships),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
