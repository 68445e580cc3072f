#include "kube/selector.h"

#include <ctype.h>
#include <string.h>

#include "core/mem.h"

/* A selector is at most a few requirements; values lists are short. */
#define MAX_REQUIREMENTS 64
#define MAX_VALUES 64

typedef enum { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOT_EXISTS } op;

typedef struct requirement {
    char *key;
    op op;
    char **values;
    size_t nvalues;
} requirement;

struct kiln_kube_selector {
    requirement *reqs;
    size_t n;
};

void kiln_kube_selector_free(kiln_kube_selector *sel)
{
    if (!sel)
        return;
    for (size_t i = 0; i < sel->n; i++) {
        kiln_xfree(sel->reqs[i].key);
        for (size_t k = 0; k < sel->reqs[i].nvalues; k++)
            kiln_xfree(sel->reqs[i].values[k]);
        kiln_xfree(sel->reqs[i].values);
    }
    kiln_xfree(sel->reqs);
    kiln_xfree(sel);
}

static void skip_ws(const char **p)
{
    while (**p && isspace((unsigned char)**p))
        (*p)++;
}

/* Label keys and values: [A-Za-z0-9._/-] (a prefix/name key has one '/'). */
static bool word_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-' || c == '/';
}

static char *word(const char **p)
{
    const char *s = *p;
    while (word_char(**p))
        (*p)++;
    return kiln_xstrndup(s, (size_t)(*p - s));
}

static int parse_values(requirement *r, const char **p, const char *text, kiln_err *err)
{
    skip_ws(p);
    if (**p != '(')
        return kiln_err_set(err, KILN_EINVAL, "label selector \"%s\": expected '(' after %s", text,
                            r->op == OP_IN ? "in" : "notin");
    (*p)++;
    for (;;) {
        skip_ws(p);
        char *v = word(p);
        if (r->nvalues == MAX_VALUES) {
            kiln_xfree(v);
            return kiln_err_set(err, KILN_ELIMIT, "label selector \"%s\": more than %d values",
                                text, MAX_VALUES);
        }
        r->values = kiln_xrealloc(r->values, (r->nvalues + 1) * sizeof(char *));
        r->values[r->nvalues++] = v;
        skip_ws(p);
        if (**p == ',') {
            (*p)++;
            continue;
        }
        if (**p == ')') {
            (*p)++;
            return 0;
        }
        return kiln_err_set(err, KILN_EINVAL, "label selector \"%s\": expected ',' or ')'", text);
    }
}

int kiln_kube_selector_parse(kiln_kube_selector **out, const char *text, kiln_err *err)
{
    kiln_kube_selector *sel = kiln_xcalloc(1, sizeof(*sel));
    const char *p = text ? text : "";
    int rc = 0;
    *out = NULL;
    skip_ws(&p);
    while (*p) {
        if (sel->n == MAX_REQUIREMENTS) {
            rc = kiln_err_set(err, KILN_ELIMIT, "label selector \"%s\": more than %d requirements",
                              text, MAX_REQUIREMENTS);
            goto out;
        }
        sel->reqs = kiln_xrealloc(sel->reqs, (sel->n + 1) * sizeof(*sel->reqs));
        requirement *r = &sel->reqs[sel->n++];
        memset(r, 0, sizeof(*r));
        bool negated = false;
        if (*p == '!') {
            negated = true;
            p++;
            skip_ws(&p);
        }
        r->key = word(&p);
        if (!*r->key) {
            rc = kiln_err_set(err, KILN_EINVAL,
                              "label selector \"%s\": expected a label key at "
                              "offset %zu",
                              text, (size_t)(p - text));
            goto out;
        }
        skip_ws(&p);
        if (negated) {
            r->op = OP_NOT_EXISTS;
        } else if (*p == ',' || !*p) {
            r->op = OP_EXISTS;
        } else if (p[0] == '=' || (p[0] == '!' && p[1] == '=')) {
            r->op = p[0] == '!' ? OP_NE : OP_EQ;
            p += p[0] == '!' ? 2 : (p[1] == '=' ? 2 : 1);
            skip_ws(&p);
            r->values = kiln_xcalloc(1, sizeof(char *));
            r->values[0] = word(&p);
            r->nvalues = 1;
        } else if (strncmp(p, "notin", 5) == 0 && !word_char(p[5])) {
            r->op = OP_NOTIN;
            p += 5;
            if ((rc = parse_values(r, &p, text, err)))
                goto out;
        } else if (strncmp(p, "in", 2) == 0 && !word_char(p[2])) {
            r->op = OP_IN;
            p += 2;
            if ((rc = parse_values(r, &p, text, err)))
                goto out;
        } else {
            rc = kiln_err_set(err, KILN_EINVAL,
                              "label selector \"%s\": unexpected \"%c\" at offset %zu", text, *p,
                              (size_t)(p - text));
            goto out;
        }
        skip_ws(&p);
        if (*p == ',') {
            p++;
            skip_ws(&p);
            if (!*p) {
                rc = kiln_err_set(err, KILN_EINVAL, "label selector \"%s\": trailing ','", text);
                goto out;
            }
        } else if (*p) {
            rc = kiln_err_set(err, KILN_EINVAL,
                              "label selector \"%s\": unexpected \"%c\" at offset %zu", text, *p,
                              (size_t)(p - text));
            goto out;
        }
    }
    *out = sel;
    sel = NULL;
out:
    kiln_kube_selector_free(sel);
    return rc;
}

static bool in_values(const requirement *r, const char *v)
{
    for (size_t i = 0; i < r->nvalues; i++)
        if (strcmp(r->values[i], v) == 0)
            return true;
    return false;
}

bool kiln_kube_selector_matches(const kiln_kube_selector *sel, const json_t *labels)
{
    if (!sel)
        return true;
    for (size_t i = 0; i < sel->n; i++) {
        const requirement *r = &sel->reqs[i];
        const char *v = json_string_value(json_object_get(labels, r->key));
        bool ok;
        switch (r->op) {
        case OP_EQ:
            ok = v && strcmp(v, r->values[0]) == 0;
            break;
        case OP_IN:
            ok = v && in_values(r, v);
            break;
        /* != and notin also match objects without the label (labels.Parse). */
        case OP_NE:
            ok = !v || strcmp(v, r->values[0]) != 0;
            break;
        case OP_NOTIN:
            ok = !v || !in_values(r, v);
            break;
        case OP_EXISTS:
            ok = v != NULL;
            break;
        default:
            ok = v == NULL;
            break;
        }
        if (!ok)
            return false;
    }
    return true;
}
