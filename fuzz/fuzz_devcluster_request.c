/* fuzz/fuzz_devcluster_request.c: the dev cluster's request handling (path
 * routing, query parsing, selectors, bodies, patches, apply, CRD schemas).
 *
 * Input: "METHOD\nPATH\nQUERY\nCONTENT-TYPE\nACCEPT\nBODY...". Every input
 * must produce a response with a status code and, for errors, a Status body.
 * Fault injection (/kiln/...) is skipped: it can sleep on purpose.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devcluster/devcluster.h"

static kiln_devcluster *dc;
static unsigned runs;

static const char *field(char **cur, char *end)
{
    char *start = *cur;
    char *nl = memchr(start, '\n', (size_t)(end - start));
    if (!nl) {
        *cur = end;
        return start;
    }
    *nl = '\0';
    *cur = nl + 1;
    return start;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    if (!dc || ++runs % 500 == 0) {
        kiln_devcluster_stop(dc);
        kiln_devcluster_options o = {.history = 64, .max_body = 1 << 16, .no_kubelet = true};
        if (kiln_devcluster_new(&dc, &o, NULL) < 0)
            abort();
    }
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *cur = buf, *end = buf + size;
    kiln_devcluster_request req = {0};
    req.method = field(&cur, end);
    req.path = field(&cur, end);
    req.query = field(&cur, end);
    req.content_type = field(&cur, end);
    req.accept = field(&cur, end);
    req.body = cur;
    req.body_len = (size_t)(end - cur);
    req.user_agent = "fuzz/1.0";
    req.loopback = true;
    if (!strncmp(req.path, "/kiln", 5)) {
        free(buf);
        return 0;
    }
    kiln_devcluster_response resp;
    kiln_devcluster_response_init(&resp);
    kiln_devcluster_handle(dc, &req, &resp);
    if (resp.status < 100 || resp.status > 599)
        abort();
    if (resp.status >= 400 && (!resp.body.data || !strstr(resp.body.data, "\"kind\":\"Status\"")))
        abort();
    if (resp.watch) {
        char out[4096];
        kiln_devcluster_watch_read(dc, resp.watch, out, sizeof out, 0);
    }
    kiln_devcluster_response_free(dc, &resp);
    free(buf);
    return 0;
}
