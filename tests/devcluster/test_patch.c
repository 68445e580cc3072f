/* tests/devcluster/test_patch.c: merge patch, JSON patch and strategic merge patch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devcluster/internal.h"

static char *dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

static void expect_merge(const char *target, const char *patch, const char *want)
{
    json_t *t = json_loads(target, JSON_DECODE_ANY, NULL);
    json_t *p = json_loads(patch, JSON_DECODE_ANY, NULL);
    json_t *out = kiln_dc_patch_merge(t, p);
    char *s = dump(out);
    assert_string_equal(s, want);
    free(s);
    json_decref(out);
    json_decref(t);
    json_decref(p);
}

/* RFC 7386 appendix A examples. */
static void test_patch__merge_rfc7386(void **state)
{
    (void)state;
    expect_merge("{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
    expect_merge("{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}");
    expect_merge("{\"a\":\"b\"}", "{\"a\":null}", "{}");
    expect_merge("{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}");
    expect_merge("[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}");
    expect_merge("{\"e\":null}", "{\"a\":1}", "{\"a\":1,\"e\":null}");
    expect_merge("{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}");
}

static int json_patch(const char *doc, const char *ops, char **out, kiln_err *err)
{
    json_t *d = json_loads(doc, 0, NULL);
    json_t *o = json_loads(ops, 0, NULL);
    int rc = kiln_dc_patch_json(&d, o, err);
    *out = dump(d);
    json_decref(d);
    json_decref(o);
    return rc;
}

static void test_patch__json_patch_ops_and_errors(void **state)
{
    (void)state;
    kiln_err err = {0};
    char *s = NULL;
    assert_int_equal(json_patch("{\"a\":[1,2],\"m\":{\"x~y\":1}}",
                                "[{\"op\":\"add\",\"path\":\"/a/1\",\"value\":9},"
                                "{\"op\":\"add\",\"path\":\"/a/-\",\"value\":3},"
                                "{\"op\":\"copy\",\"from\":\"/m/x~0y\",\"path\":\"/c\"},"
                                "{\"op\":\"replace\",\"path\":\"/m\",\"value\":{}}]",
                                &s, &err),
                     0);
    assert_string_equal(s, "{\"a\":[1,9,2,3],\"c\":1,\"m\":{}}");
    free(s);
    assert_int_equal(json_patch("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/b\"}]", &s, &err),
                     KILN_EINVAL);
    assert_string_equal(err.msg,
                        "jsonpatch remove operation does not apply: doc is missing path: \"/b\"");
    free(s);
    assert_int_equal(
        json_patch("{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/5\",\"value\":1}]", &s, &err),
        KILN_EINVAL);
    free(s);
    assert_int_equal(json_patch("{}", "[{\"op\":\"jump\",\"path\":\"/a\"}]", &s, &err), KILN_EIO);
    assert_string_equal(err.msg, "Unexpected kind: jump");
    free(s);
}

static void expect_smp(const char *target, const char *patch, const char *want)
{
    json_t *t = json_loads(target, 0, NULL);
    json_t *p = json_loads(patch, 0, NULL);
    json_t *out = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_dc_patch_strategic(&out, t, p, &err), 0);
    char *s = json_dumps(out, JSON_COMPACT);
    assert_string_equal(s, want);
    free(s);
    json_decref(out);
    json_decref(t);
    json_decref(p);
}

static void test_patch__strategic_directives(void **state)
{
    (void)state;
    /* Ports of a container merge on containerPort; of a Service on port. */
    expect_smp("{\"ports\":[{\"containerPort\":80,\"name\":\"a\"}]}",
               "{\"ports\":[{\"containerPort\":80,\"name\":\"b\"},{\"containerPort\":81}]}",
               "{\"ports\":[{\"containerPort\":80,\"name\":\"b\"},{\"containerPort\":81}]}");
    expect_smp("{\"ports\":[{\"port\":80,\"protocol\":\"TCP\"}]}",
               "{\"ports\":[{\"port\":80,\"name\":\"http\"}]}",
               "{\"ports\":[{\"port\":80,\"protocol\":\"TCP\",\"name\":\"http\"}]}");
    /* Lists without a merge key are replaced. */
    expect_smp("{\"args\":[\"a\",\"b\"]}", "{\"args\":[\"c\"]}", "{\"args\":[\"c\"]}");
    /* finalizers merge as a set; $deleteFromPrimitiveList removes. */
    expect_smp("{\"finalizers\":[\"a\"]}", "{\"finalizers\":[\"b\",\"a\"]}",
               "{\"finalizers\":[\"a\",\"b\"]}");
    expect_smp("{\"finalizers\":[\"a\",\"b\"]}",
               "{\"$deleteFromPrimitiveList/finalizers\":[\"a\"]}", "{\"finalizers\":[\"b\"]}");
    /* $patch: replace on a map, delete on a map field, $retainKeys. */
    expect_smp("{\"m\":{\"a\":1,\"b\":2}}", "{\"m\":{\"$patch\":\"replace\",\"c\":3}}",
               "{\"m\":{\"c\":3}}");
    expect_smp("{\"m\":{\"a\":1},\"n\":1}", "{\"m\":{\"$patch\":\"delete\"}}", "{\"n\":1}");
    expect_smp("{\"s\":{\"type\":\"A\",\"x\":1,\"y\":2}}",
               "{\"s\":{\"$retainKeys\":[\"type\",\"y\"],\"type\":\"B\"}}",
               "{\"s\":{\"type\":\"B\",\"y\":2}}");
    /* $patch: replace inside a keyed list replaces the whole list. */
    expect_smp("{\"env\":[{\"name\":\"A\"},{\"name\":\"B\"}]}",
               "{\"env\":[{\"name\":\"C\"},{\"$patch\":\"replace\"}]}",
               "{\"env\":[{\"name\":\"C\"}]}");

    json_t *t = json_loads("{\"env\":[{\"name\":\"A\"}]}", 0, NULL);
    json_t *p = json_loads("{\"env\":[{\"value\":\"x\"}]}", 0, NULL);
    json_t *out = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_dc_patch_strategic(&out, t, p, &err), KILN_EIO);
    assert_string_equal(err.msg, "map: env does not contain declared merge key: name");
    json_decref(t);
    json_decref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patch__merge_rfc7386),
        cmocka_unit_test(test_patch__json_patch_ops_and_errors),
        cmocka_unit_test(test_patch__strategic_directives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
