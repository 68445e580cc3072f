/* devcluster/selector.c: label selectors (k=v, k!=v, k in (..), k notin (..),
 * k, !k; comma = AND) and field selectors (=, ==, != on a per-resource list of
 * fields; metadata.name and metadata.namespace work everywhere, as the API
 * conventions require).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "devcluster/internal.h"

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static void add_value(kiln_dc_req *q, const char *v)
{
    q->values = kiln_xrealloc(q->values, (q->nvalues + 1) * sizeof *q->values);
    q->values[q->nvalues++] = kiln_xstrdup(v);
}

static int parse_one(kiln_dc_selector *out, char *term, bool fields, kiln_err *err)
{
    term = trim(term);
    if (!*term)
        return kiln_err_set(err, KILN_EINVAL, "empty requirement");
    kiln_dc_req q = {0};
    char *op;
    if (!fields && term[0] == '!') {
        q.key = kiln_xstrdup(trim(term + 1));
        q.op = KILN_DC_SEL_NOTEXISTS;
    } else if ((op = strstr(term, "!=")) != NULL) {
        *op = '\0';
        q.key = kiln_xstrdup(trim(term));
        q.op = KILN_DC_SEL_NE;
        add_value(&q, trim(op + 2));
    } else if ((op = strstr(term, "==")) != NULL || (op = strchr(term, '=')) != NULL) {
        size_t skip = op[1] == '=' ? 2 : 1;
        *op = '\0';
        q.key = kiln_xstrdup(trim(term));
        q.op = KILN_DC_SEL_EQ;
        add_value(&q, trim(op + skip));
    } else if (!fields && (strstr(term, " in ") || strstr(term, " notin "))) {
        char *paren = strchr(term, '(');
        char *close = paren ? strrchr(paren, ')') : NULL;
        if (!paren || !close)
            return kiln_err_set(err, KILN_EINVAL, "%s: expected a list in parentheses", term);
        *close = '\0';
        *paren = '\0';
        char *space = strrchr(trim(term), ' ');
        if (!space)
            return kiln_err_set(err, KILN_EINVAL, "missing operator");
        q.op = !strcmp(trim(space), "in") ? KILN_DC_SEL_IN : KILN_DC_SEL_NOTIN;
        *space = '\0';
        q.key = kiln_xstrdup(trim(term));
        char *save = NULL;
        for (char *v = strtok_r(paren + 1, ",", &save); v; v = strtok_r(NULL, ",", &save))
            add_value(&q, trim(v));
    } else if (!fields) {
        q.key = kiln_xstrdup(term);
        q.op = KILN_DC_SEL_EXISTS;
    } else {
        return kiln_err_set(err, KILN_EINVAL, "invalid selector: '%s'; can't understand '%s'", term,
                            term);
    }
    if (!*q.key) {
        kiln_xfree(q.key);
        for (size_t i = 0; i < q.nvalues; i++)
            kiln_xfree(q.values[i]);
        kiln_xfree(q.values);
        return kiln_err_set(err, KILN_EINVAL, "empty key in selector");
    }
    out->reqs = kiln_xrealloc(out->reqs, (out->n + 1) * sizeof *out->reqs);
    out->reqs[out->n++] = q;
    return 0;
}

int kiln_dc_selector_parse(kiln_dc_selector *out, const char *text, bool fields, kiln_err *err)
{
    memset(out, 0, sizeof *out);
    if (!text || !*text)
        return 0;
    char *copy = kiln_xstrdup(text);
    int rc = 0;
    int depth = 0;
    char *start = copy;
    for (char *p = copy;; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')')
            depth--;
        if ((*p == ',' && depth == 0) || *p == '\0') {
            bool end = *p == '\0';
            *p = '\0';
            rc = parse_one(out, start, fields, err);
            if (rc < 0 || end)
                break;
            start = p + 1;
        }
    }
    kiln_xfree(copy);
    if (rc < 0)
        kiln_dc_selector_free(out);
    return rc;
}

void kiln_dc_selector_free(kiln_dc_selector *s)
{
    for (size_t i = 0; i < s->n; i++) {
        kiln_xfree(s->reqs[i].key);
        for (size_t j = 0; j < s->reqs[i].nvalues; j++)
            kiln_xfree(s->reqs[i].values[j]);
        kiln_xfree(s->reqs[i].values);
    }
    kiln_xfree(s->reqs);
    s->reqs = NULL;
    s->n = 0;
}

bool kiln_dc_selector_empty(const kiln_dc_selector *s)
{
    return s->n == 0;
}

static bool req_match(const kiln_dc_req *q, const char *have)
{
    switch (q->op) {
    case KILN_DC_SEL_EXISTS:
        return have != NULL;
    case KILN_DC_SEL_NOTEXISTS:
        return have == NULL;
    case KILN_DC_SEL_EQ:
        return have && !strcmp(have, q->values[0]);
    case KILN_DC_SEL_NE:
        return !have || strcmp(have, q->values[0]);
    case KILN_DC_SEL_IN:
    case KILN_DC_SEL_NOTIN: {
        bool found = false;
        for (size_t i = 0; have && i < q->nvalues; i++)
            if (!strcmp(have, q->values[i]))
                found = true;
        return q->op == KILN_DC_SEL_IN ? found : !found;
    }
    }
    return false;
}

bool kiln_dc_labels_match(const kiln_dc_selector *s, const json_t *obj)
{
    json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    for (size_t i = 0; i < s->n; i++) {
        const char *have = json_string_value(json_object_get(labels, s->reqs[i].key));
        if (!req_match(&s->reqs[i], have))
            return false;
    }
    return true;
}

static const char *field_value(const json_t *obj, const char *path, char *buf, size_t n)
{
    const json_t *cur = obj;
    char *copy = kiln_xstrdup(path);
    char *save = NULL;
    for (char *seg = strtok_r(copy, ".", &save); seg && cur; seg = strtok_r(NULL, ".", &save))
        cur = json_object_get(cur, seg);
    kiln_xfree(copy);
    if (json_is_string(cur))
        return json_string_value(cur);
    if (json_is_boolean(cur))
        return json_is_true(cur) ? "true" : "false";
    if (json_is_integer(cur)) {
        snprintf(buf, n, "%lld", (long long)json_integer_value(cur));
        return buf;
    }
    /* An absent field compares as the empty string, as the real field sets do. */
    return "";
}

bool kiln_dc_fields_match(const kiln_dc_selector *s, const json_t *obj)
{
    for (size_t i = 0; i < s->n; i++) {
        char buf[32];
        const char *have = field_value(obj, s->reqs[i].key, buf, sizeof buf);
        if (!req_match(&s->reqs[i], have))
            return false;
    }
    return true;
}

bool kiln_dc_fields_match_key(const kiln_dc_selector *s, const char *ns, const char *name,
                              bool *decided)
{
    *decided = true;
    for (size_t i = 0; i < s->n; i++) {
        const char *have;
        if (!strcmp(s->reqs[i].key, "metadata.name"))
            have = name;
        else if (!strcmp(s->reqs[i].key, "metadata.namespace"))
            have = ns;
        else {
            *decided = false;
            continue;
        }
        if (!req_match(&s->reqs[i], have))
            return false;
    }
    return true;
}

/* Per-resource field sets, as the built-in registries declare them. */
static const struct {
    const char *plural;
    const char *fields;
} field_sets[] = {
    {"pods", " spec.nodeName spec.restartPolicy spec.schedulerName spec.serviceAccountName "
             "spec.hostNetwork status.phase status.podIP status.nominatedNodeName "},
    {"events", " involvedObject.kind involvedObject.namespace involvedObject.name "
               "involvedObject.uid involvedObject.apiVersion involvedObject.resourceVersion "
               "involvedObject.fieldPath reason reportingComponent source type "},
    {"secrets", " type "},
    {"nodes", " spec.unschedulable "},
    {"namespaces", " status.phase "},
    {"jobs", " status.successful "},
    {"replicasets", " status.replicas "},
};

int kiln_dc_fields_check(const kiln_dc_selector *s, const kiln_dc_resource *r, kiln_err *err)
{
    for (size_t i = 0; i < s->n; i++) {
        const char *k = s->reqs[i].key;
        if (!strcmp(k, "metadata.name") || !strcmp(k, "metadata.namespace"))
            continue;
        bool ok = false;
        for (size_t j = 0; !r->is_crd && j < sizeof field_sets / sizeof field_sets[0]; j++) {
            if (strcmp(field_sets[j].plural, r->plural))
                continue;
            char pat[160];
            snprintf(pat, sizeof pat, " %s ", k);
            ok = strstr(field_sets[j].fields, pat) != NULL;
        }
        if (!ok)
            return kiln_err_set(err, KILN_EINVAL, "field label not supported: %s", k);
    }
    return 0;
}
