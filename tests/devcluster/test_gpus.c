/* tests/devcluster/test_gpus.c: the --simulate-gpus grammar (flags, errors)
 * and the nodes it makes, in-process (no network, no background threads). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "devcluster/devcluster.h"

#define GRAMMAR                                                                                    \
    "expected <model>x<gpus>[:<nodes>][:slow|:notready|:fail=<check>+<check>...], e.g. "           \
    "h100x8:2 or h100x8:1:slow"

static void expect_error(const char *spec, const char *msg)
{
    kiln_err err = {0};
    assert_int_equal(kiln_devcluster_check_gpus(spec, &err), KILN_EINVAL);
    assert_int_equal(err.code, KILN_EINVAL);
    assert_string_equal(err.msg, msg);
}

static void test_gpus__bad_items_name_the_item_and_the_grammar(void **state)
{
    (void)state;
    expect_error("h100x8:2,h100x8:2:fast",
                 "--simulate-gpus: \"h100x8:2:fast\": unknown flag \"fast\"; " GRAMMAR);
    expect_error("h100x8:1:fail=gemm+fp8",
                 "--simulate-gpus: \"h100x8:1:fail=gemm+fp8\": unknown check \"fp8\" in fail= "
                 "(expected device, memory, hbm-bandwidth, gemm, pcie or p2p, joined with +)");
    expect_error("h100x8:2x",
                 "--simulate-gpus: \"h100x8:2x\": \"2x\" is not a node count; " GRAMMAR);
    expect_error("h100xeight",
                 "--simulate-gpus: \"h100xeight\": \"eight\" is not a GPU count; " GRAMMAR);
    expect_error("gpu8", "--simulate-gpus: \"gpu8\": " GRAMMAR);
    expect_error("h900x8", "--simulate-gpus: \"h900x8\": unknown GPU model \"h900\" (known: h100, "
                           "h200, a100, l40s, l4, b200, gb200)");
    expect_error("h100x8:0:slow",
                 "--simulate-gpus: \"h100x8:0:slow\": gpus must be 1..64 and nodes 1..1000");
    kiln_err err = {0};
    assert_int_equal(
        kiln_devcluster_check_gpus("h100x8:2,h100x8:slow,a100x4:1:notready:fail=p2p+memory", &err),
        0);
}

static json_t *nodes(const char *spec)
{
    kiln_devcluster_options o = {.simulate_gpus = spec};
    kiln_devcluster *dc = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_devcluster_new(&dc, &o, &err), 0);
    kiln_devcluster_request req = {.method = "GET",
                                   .path = "/api/v1/nodes",
                                   .accept = "application/json",
                                   .user_agent = "test/1.0",
                                   .loopback = true};
    kiln_devcluster_response resp;
    kiln_devcluster_response_init(&resp);
    kiln_devcluster_handle(dc, &req, &resp);
    assert_int_equal(resp.status, 200);
    json_t *doc = json_loads(resp.body.data, 0, NULL);
    kiln_devcluster_response_free(dc, &resp);
    kiln_devcluster_stop(dc);
    assert_non_null(doc);
    return doc;
}

static void test_gpus__flags_make_distinct_annotated_nodes(void **state)
{
    (void)state;
    json_t *list = nodes("h100x2:2,h100x2:1:slow,h100x1:notready,a100x4:fail=p2p+memory+p2p");
    char got[2048] = "";
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(list, "items"), i, n)
    {
        json_t *md = json_object_get(n, "metadata");
        json_t *ann = json_object_get(md, "annotations");
        json_t *ready =
            json_array_get(json_object_get(json_object_get(n, "status"), "conditions"), 0);
        size_t len = strlen(got);
        snprintf(got + len, sizeof got - len, "%s %s %s %s %s\n",
                 json_string_value(json_object_get(md, "name")),
                 json_string_value(json_object_get(ann, "kiln.dev/simulated-gpu-model")) ?: "-",
                 json_string_value(json_object_get(ann, "kiln.dev/simulate-fail")) ?: "-",
                 json_string_value(json_object_get(ready, "status")),
                 json_string_value(json_object_get(ready, "reason")));
    }
    assert_string_equal(got, "kiln-dev - - True KubeletReady\n"
                             "kiln-gpu-a100x4-fail-p2p-memory-0 a100 p2p,memory True KubeletReady\n"
                             "kiln-gpu-h100x1-notready-0 h100 - False KubeletNotReady\n"
                             "kiln-gpu-h100x2-0 h100 - True KubeletReady\n"
                             "kiln-gpu-h100x2-1 h100 - True KubeletReady\n"
                             "kiln-gpu-h100x2-slow-0 h100 hbm-bandwidth,gemm True KubeletReady\n");
    json_decref(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpus__bad_items_name_the_item_and_the_grammar),
        cmocka_unit_test(test_gpus__flags_make_distinct_annotated_nodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
