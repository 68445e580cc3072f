/* kube/internal.h: declarations shared by the files of kube/ only. */
#ifndef KILN_KUBE_INTERNAL_H
#define KILN_KUBE_INTERNAL_H

#include "kube/client.h"

/* Overwrites the calling thread's kiln_kube_last_status() (watch ERROR events). */
void kiln_kube_set_last_status(const kiln_kube_status *st);

/* A GET with its own Accept header; the answer's Content-Type is copied into
 * content_type (discovery picks the aggregated or legacy form by it). */
int kiln_kube_do_accept(json_t **out, char content_type[128], kiln_kube_client *c, const char *path,
                        const char *accept, kiln_err *err);

#endif
