/* core/hash.h: SHA-256 (OpenSSL) over bytes and over canonical JSON.
 *
 * The canonical form of a document is its compact JSON with keys sorted, so two
 * documents that differ only in key order hash the same; kiln stamps this hash on
 * every child it applies (kiln.dev/applied-hash) and skips re-applying when the
 * rendered object hashes the same.
 */
#ifndef KILN_CORE_HASH_H
#define KILN_CORE_HASH_H

#include <jansson.h>
#include <stddef.h>

#define KILN_SHA256_HEX_LEN 64

/* Writes 64 lowercase hex digits and a NUL into out. */
void kiln_sha256_hex(char out[KILN_SHA256_HEX_LEN + 1], const void *data, size_t len);
void kiln_sha256(unsigned char out[32], const void *data, size_t len);

/* SHA-256 of doc's canonical JSON (borrowed doc), as hex. A NULL doc, or one
 * kiln_json_canonical cannot write, hashes as the empty string. */
void kiln_hash_json(char out[KILN_SHA256_HEX_LEN + 1], const json_t *doc);

/* FNV-1a 64-bit, for hash tables and short stable suffixes (not for integrity). */
unsigned long long kiln_fnv1a64(const void *data, size_t len);

#endif
