/* Tests for lua/lib_recipe.c: the `recipe` Lua table, called on a kiln Lua
 * state outside the sandbox's environment (the sandbox registers the same
 * table for every RGD expression). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lua/internal.h"

typedef struct fx {
    kiln_lua *K;
} fx;

static int setup(void **state)
{
    fx *f = test_malloc(sizeof *f);
    f->K = kiln_lua_new(NULL);
    lua_State *L = f->K->L;
    lua_newtable(L);
    kiln_lua__open_recipe(L);
    lua_getfield(L, -1, "recipe");
    lua_setglobal(L, "recipe");
    lua_pop(L, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kiln_lua_free(f->K);
    test_free(f);
    return 0;
}

/* Runs chunk; returns its string result (copied into out) or the error. */
static int run(fx *f, const char *chunk, char *out, size_t n)
{
    lua_State *L = f->K->L;
    int rc = luaL_loadstring(L, chunk);
    if (rc == LUA_OK)
        rc = lua_pcall(L, 0, 1, 0);
    const char *s = lua_tostring(L, -1);
    snprintf(out, n, "%s", s ? s : "(not a string)");
    lua_pop(L, 1);
    return rc;
}

static void test_lib_recipe__resolve_returns_the_locked_set(void **state)
{
    char out[512];
    assert_int_equal(run(*state,
                         "local r = recipe.resolve{service = 'eks', accelerator = 'h100', "
                         "os = 'ubuntu', intent = 'inference'}\n"
                         "local gpu\n"
                         "for _, c in ipairs(r.components) do\n"
                         "  if c.name == 'gpu-operator' then gpu = c end\n"
                         "end\n"
                         "return table.concat(r.deploymentOrder, ',') .. ' ' .. gpu.version .. ' ' "
                         ".. gpu.values.driver.version .. ' ' .. r.overlays[2].reason .. ' ' .. "
                         "r.validation.accelerator",
                         out, sizeof out),
                     LUA_OK);
    assert_string_equal(out, "cert-manager,gateway-api-crds,inference-extension-crds,kai-scheduler,"
                             "kgateway-crds,kgateway,kube-prometheus-stack,gpu-operator,lws,"
                             "nvidia-dra-driver-gpu v25.10.1 580.105.08 matches service=eks "
                             "h100-sxm");
}

static void test_lib_recipe__unmatched_criterion_raises(void **state)
{
    char out[512];
    assert_int_equal(run(*state,
                         "return recipe.resolve{service = 'eks', accelerator = 'h100', "
                         "os = 'rhel', intent = 'inference'}",
                         out, sizeof out),
                     LUA_ERRRUN);
    assert_non_null(strstr(out, "recipe.resolve: criterion os=rhel matched no overlay"));
    assert_int_equal(run(*state,
                         "return recipe.resolve{service = 'eks', acclerator = 'h100', "
                         "os = 'ubuntu', intent = 'inference'}",
                         out, sizeof out),
                     LUA_ERRRUN);
    assert_non_null(strstr(out, "recipe.resolve: unknown criterion \"acclerator\""));
    assert_int_equal(run(*state, "return recipe.resolve{service = 3}", out, sizeof out),
                     LUA_ERRRUN);
    assert_non_null(strstr(out, "criterion service: expected a string, got number"));
}

/* Resolutions are kept per criteria: a script changing what it got, or
 * asking for other criteria in between, never changes the next answer. */
static void test_lib_recipe__kept_resolutions_are_per_criteria_and_copies(void **state)
{
    char out[512];
    assert_int_equal(
        run(*state,
            "local a = {service = 'eks', accelerator = 'h100', os = 'ubuntu', intent = "
            "'inference'}\n"
            "local b = {service = 'gke', accelerator = 'h100', os = 'cos', intent = 'training'}\n"
            "local r1 = recipe.resolve(a)\n"
            "r1.components[1].version = 'changed'\n"
            "r1.validation.accelerator = 'changed'\n"
            "local r2 = recipe.resolve(b)\n"
            "local r3 = recipe.resolve(a)\n"
            "return r3.components[1].version .. ' ' .. r3.validation.accelerator .. ' ' .. "
            "tostring(r1 ~= r3) .. ' ' .. r2.overlays[2].name .. ' ' .. r3.overlays[2].name",
            out, sizeof out),
        LUA_OK);
    assert_string_equal(out, "v1.17.2 h100-sxm true h100 eks");
}

static void test_lib_recipe__list_and_components(void **state)
{
    char out[512];
    assert_int_equal(
        run(*state,
            "local l = recipe.list()\n"
            "local c = recipe.components()\n"
            "return table.concat(l.criteria.os.resolvable, ',') .. ' ' .. #c .. ' ' .. "
            "c[1].name .. ' ' .. l.overlays[1].name",
            out, sizeof out),
        LUA_OK);
    assert_string_equal(out, "ubuntu,cos 14 cert-manager base");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lib_recipe__resolve_returns_the_locked_set, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lib_recipe__unmatched_criterion_raises, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_lib_recipe__kept_resolutions_are_per_criteria_and_copies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lib_recipe__list_and_components, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
