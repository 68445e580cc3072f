/* devcluster/util.c: Status errors, times, uids, names, query strings. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "core/mem.h"
#include "core/utf8.h"
#include "core/yaml.h"
#include "devcluster/internal.h"

int64_t kiln_dc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kiln_dc_timestamp(char out[32])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void kiln_dc_uid(char out[37])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) {
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (unsigned char)rand();
    }
    /* RFC 4122 version 4, as kube-apiserver's uuid.NewUUID. */
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

void kiln_dc_reply_json(kiln_devcluster_response *resp, int status, const json_t *doc)
{
    kiln_buf_reset(&resp->body);
    char *s = json_dumps(doc, JSON_COMPACT);
    kiln_buf_puts(&resp->body, s ? s : "{}", NULL);
    free(s);
    resp->status = status;
    snprintf(resp->content_type, sizeof resp->content_type, "application/json");
}

void kiln_dc_status(kiln_devcluster_response *resp, int code, const char *reason, json_t *details,
                    const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Messages echo paths and names from the request; JSON needs UTF-8. */
    kiln_utf8_clean(msg);
    json_t *st =
        json_pack("{s:s,s:s,s:{},s:s,s:s,s:s,s:i}", "kind", "Status", "apiVersion", "v1",
                  "metadata", "status", "Failure", "message", msg, "reason", reason, "code", code);
    if (!st) /* a message jansson still refuses: keep the Status shape */
        st = json_pack("{s:s,s:s,s:{},s:s,s:s,s:s,s:i}", "kind", "Status", "apiVersion", "v1",
                       "metadata", "status", "Failure", "message", "invalid request", "reason",
                       reason, "code", code);
    if (details)
        json_object_set_new(st, "details", details);
    kiln_dc_reply_json(resp, code, st);
    json_decref(st);
}

void kiln_dc_api_version(const kiln_dc_resource *r, char *out, size_t n)
{
    if (r->group[0])
        snprintf(out, n, "%s/%s", r->group, r->version);
    else
        snprintf(out, n, "%s", r->version);
}

void kiln_dc_qualified(const kiln_dc_resource *r, char *out, size_t n)
{
    if (r->group[0])
        snprintf(out, n, "%s.%s", r->plural, r->group);
    else
        snprintf(out, n, "%s", r->plural);
}

json_t *kiln_dc_details(const kiln_dc_resource *r, const char *name)
{
    json_t *d = json_object();
    if (name)
        json_object_set_new(d, "name", json_string(name));
    if (r && r->group[0])
        json_object_set_new(d, "group", json_string(r->group));
    if (r)
        json_object_set_new(d, "kind", json_string(r->plural));
    return d;
}

static bool label_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '-' && i > 0 && i < n - 1))
            return false;
    }
    return true;
}

bool kiln_dc_valid_label_name(const char *s)
{
    return s && label_ok(s, strlen(s));
}

bool kiln_dc_valid_subdomain(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 253)
        return false;
    const char *p = s;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (!label_ok(p, len))
            return false;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void kiln_dc_percent_decode(char *s, bool plus_is_space)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '%' && hexval(r[1]) >= 0 && hexval(r[2]) >= 0) {
            *w++ = (char)(hexval(r[1]) * 16 + hexval(r[2]));
            r += 2;
        } else if (*r == '+' && plus_is_space) {
            *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

char *kiln_dc_query_get(const char *query, const char *name)
{
    if (!query)
        return NULL;
    size_t nlen = strlen(name);
    const char *p = query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        char *k = kiln_xstrndup(p, klen);
        kiln_dc_percent_decode(k, true);
        bool match = strlen(k) == nlen && memcmp(k, name, nlen) == 0;
        kiln_xfree(k);
        if (match) {
            char *v = eq ? kiln_xstrndup(eq + 1, len - klen - 1) : kiln_xstrdup("");
            kiln_dc_percent_decode(v, true);
            return v;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return NULL;
}

json_t *kiln_dc_parse_body(const kiln_devcluster_request *req, kiln_devcluster_response *resp)
{
    json_error_t je;
    if (!req->body || req->body_len == 0) {
        kiln_dc_status(resp, 400, "BadRequest", NULL, "the request body is empty");
        return NULL;
    }
    json_t *doc =
        json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    const char *ct = req->content_type ? req->content_type : "";
    if (!doc && (!strncmp(ct, "application/yaml", 16) ||
                 !strncmp(ct, "application/apply-patch+yaml", 28))) {
        /* YAML bodies (application/yaml, apply patches): exactly one document. */
        json_t *docs = NULL;
        kiln_err err = {0};
        if (kiln_yaml_load(&docs, req->body, req->body_len, "body", NULL, &err) < 0) {
            kiln_dc_status(resp, 400, "BadRequest", NULL, "error converting YAML to JSON: %s",
                           err.msg);
            return NULL;
        }
        if (json_array_size(docs) != 1) {
            json_decref(docs);
            kiln_dc_status(resp, 400, "BadRequest", NULL,
                           "expected exactly one YAML document in the body");
            return NULL;
        }
        doc = json_incref(json_array_get(docs, 0));
        json_decref(docs);
        return doc;
    }
    if (!doc) {
        kiln_dc_status(resp, 400, "BadRequest", NULL,
                       "the body of the request was in an unknown format - accepted media types "
                       "include: application/json, application/yaml (line %d column %d: %s)",
                       je.line, je.column, je.text);
        return NULL;
    }
    return doc;
}

char *kiln_dc_dump(const json_t *doc)
{
    char *s = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        abort();
    return s;
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void kiln_dc_base64(const unsigned char *in, size_t n, kiln_buf *out)
{
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        char q[4] = {b64chars[(v >> 18) & 63], b64chars[(v >> 12) & 63],
                     i + 1 < n ? b64chars[(v >> 6) & 63] : '=', i + 2 < n ? b64chars[v & 63] : '='};
        kiln_buf_append(out, q, 4, NULL);
    }
    if (!out->data)
        kiln_buf_puts(out, "", NULL);
}

int kiln_dc_unbase64(const char *in, kiln_buf *out)
{
    unsigned v = 0;
    int bits = 0;
    for (const char *p = in; *p && *p != '='; p++) {
        const char *c = strchr(b64chars, *p);
        if (!c || !*p)
            return KILN_EINVAL;
        v = (v << 6) | (unsigned)(c - b64chars);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            char ch = (char)((v >> bits) & 0xff);
            if (kiln_buf_append(out, &ch, 1, NULL) < 0)
                return KILN_ELIMIT;
        }
    }
    if (!out->data)
        kiln_buf_puts(out, "", NULL);
    return 0;
}

const char *kiln_dc_meta_str(const json_t *obj, const char *field)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), field));
}

bool kiln_dc_parse_bool(const char *s)
{
    static const char *truths[] = {"1", "t", "T", "TRUE", "true", "True"};
    for (size_t i = 0; s && i < sizeof truths / sizeof truths[0]; i++)
        if (!strcmp(s, truths[i]))
            return true;
    return false;
}
