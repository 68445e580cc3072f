/* kube/transport_curl.h: how the libcurl transport drives its transfers, and
 * its counters.
 *
 * By default one I/O thread per transport runs a curl multi handle: callers'
 * threads hand it their request and wait, and over HTTP/2 every request and
 * watch to a host shares one connection as separate streams, as client-go
 * does. Streaming data (watches) is still handed to on_data on the caller's
 * own thread. HTTP/1.1 servers get several keep-alive connections through
 * the same path. kiln_kube_transport_curl_new (client.h) uses the defaults.
 */
#ifndef KILN_KUBE_TRANSPORT_CURL_H
#define KILN_KUBE_TRANSPORT_CURL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "kube/client.h"
#include "kube/config.h"

typedef enum kiln_kube_curl_mode {
    /* One I/O thread, HTTP/2 streams multiplexed (the default). */
    KILN_KUBE_CURL_MULTIPLEX = 0,
    /* One I/O thread, but a connection per concurrent request (tests). */
    KILN_KUBE_CURL_NO_MULTIPLEX,
    /* The caller's thread performs its own transfer; connections are reused
     * through a shared cache but never multiplexed, and TLS sessions are
     * not shared (the pre-multiplexing path; also chosen by
     * KILN_KUBE_CURL_MODE=per-thread in the environment). */
    KILN_KUBE_CURL_PER_THREAD,
} kiln_kube_curl_mode;

typedef struct kiln_kube_curl_opts {
    kiln_kube_curl_mode mode;
    long max_streams; /* HTTP/2 streams per connection before another opens; 0: 100 */
} kiln_kube_curl_opts;

/* As kiln_kube_transport_curl_new; opts may be NULL (defaults, and the
 * KILN_KUBE_CURL_MODE environment variable). */
int kiln_kube_transport_curl_new_opts(kiln_kube_transport *out, const kiln_kube_config *cfg,
                                      const kiln_kube_curl_opts *opts, kiln_err *err);

typedef struct kiln_kube_curl_stats {
    uint64_t requests; /* transfers finished (any outcome) */
    uint64_t connects; /* new connections they opened (CURLINFO_NUM_CONNECTS) */
    uint64_t pauses;   /* streams paused for a consumer that fell behind */
} kiln_kube_curl_stats;

/* Fills *out and returns true when t (borrowed) is a libcurl transport. */
bool kiln_kube_transport_curl_stats(const kiln_kube_transport *t, kiln_kube_curl_stats *out);

#endif
