/* Feeds arbitrary bytes to the ${...} scanner and the Lua name scanner. A
 * parsed template must reassemble into its input (literal text plus "${" expr
 * "}"), and every expression is compiled and evaluated in a sandbox with small
 * limits: whatever the bytes, nothing may crash, leak or run unbounded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lua/names.h"
#include "lua/sandbox.h"
#include "lua/template.h"

static kiln_lua *sandbox;
static int env;

static void check_names(const char *src)
{
    kiln_lua_names names;
    kiln_err err;
    if (kiln_lua_scan_names(&names, src, &err) != 0)
        return;
    for (size_t i = 0; i < names.nfree; i++)
        if (kiln_lua_is_keyword(names.free_names[i]) || names.free_names[i][0] == '\0')
            abort();
    kiln_lua_names_free(&names);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sandbox == NULL) {
        kiln_lua_limits lim;
        kiln_lua_limits_default(&lim);
        lim.instructions = 20000;
        lim.memory = 4 << 20;
        lim.pattern_subject = 4096;
        sandbox = kiln_lua_new(&lim);
        kiln_err err;
        if (kiln_lua_env_new(sandbox, &env, NULL, "fuzz", &err) != 0)
            abort();
    }
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';

    check_names(s);
    kiln_tmpl t;
    kiln_err err;
    if (kiln_tmpl_parse(&t, s, &err) == 0) {
        /* Reassemble: the parts must be the input, in order, at their columns. */
        size_t at = 0, nexprs = 0;
        for (size_t i = 0; i < t.nparts; i++) {
            const kiln_tmpl_part *p = &t.parts[i];
            size_t len = strlen(p->text);
            if (p->column != at + 1)
                abort();
            if (p->is_expr) {
                nexprs++;
                if (strncmp(s + at, "${", 2) != 0 || strncmp(s + at + 2, p->text, len) != 0 ||
                    s[at + 2 + len] != '}')
                    abort();
                at += len + 3;
                check_names(p->text);
            } else {
                if (len == 0 || strncmp(s + at, p->text, len) != 0)
                    abort();
                at += len;
            }
        }
        if (at != strlen(s) || nexprs != t.nexprs)
            abort();
        if (t.whole != (t.nparts == 1 && t.nexprs == 1))
            abort();
        int fns[16];
        size_t nf = 0;
        bool compiled = t.nexprs <= 16;
        for (size_t i = 0; compiled && i < t.nparts; i++) {
            if (!t.parts[i].is_expr)
                continue;
            if (kiln_lua_compile_expr(sandbox, &fns[nf], t.parts[i].text, "fuzz", &err) != 0)
                compiled = false;
            else
                nf++;
        }
        if (compiled) {
            json_t *out = NULL;
            kiln_lua_eval_template(sandbox, &out, env, &t, fns, &err);
            json_decref(out);
        }
        for (size_t i = 0; i < nf; i++)
            kiln_lua_release(sandbox, fns[i]);
        kiln_tmpl_free(&t);
    }
    free(s);
    return 0;
}
