/* tests/lua/lua_test.h: shared helpers of the lua/ tests. Header-only so each
 * test stays one executable. */
#ifndef KILN_TESTS_LUA_TEST_H
#define KILN_TESTS_LUA_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lua/sandbox.h"

/* The default limits with a smaller instruction budget and memory cap, so
 * tests that hit them stay fast. */
static inline kiln_lua_limits lt_limits(uint64_t instructions, size_t memory)
{
    kiln_lua_limits lim;
    kiln_lua_limits_default(&lim);
    lim.instructions = instructions;
    lim.memory = memory;
    return lim;
}

/* A new state under lim (NULL: the defaults) in *L and one environment without
 * helpers named chunk in *env; fails the test when the environment cannot be
 * made. Undo with lt_close. */
static inline void lt_open(kiln_lua **L, int *env, const kiln_lua_limits *lim, const char *chunk)
{
    kiln_err err = {0};
    *L = kiln_lua_new(lim);
    assert_int_equal(kiln_lua_env_new(*L, env, NULL, chunk, &err), 0);
}

static inline void lt_close(kiln_lua *L, int env)
{
    kiln_lua_env_free(L, env);
    kiln_lua_free(L);
}

/* A state and its environment, for tests that keep them in cmocka's state. */
typedef struct lt_fx {
    kiln_lua *L;
    int env;
} lt_fx;

/* A new fixture (test_free through lt_fx_teardown) opened with lt_open. */
static inline lt_fx *lt_fx_new(const kiln_lua_limits *lim, const char *chunk)
{
    lt_fx *f = test_malloc(sizeof *f);
    lt_open(&f->L, &f->env, lim, chunk);
    return f;
}

/* Group or test teardown for a fixture made by lt_fx_new. */
static inline int lt_fx_teardown(void **state)
{
    lt_fx *f = *state;
    lt_close(f->L, f->env);
    test_free(f);
    return 0;
}

#endif
