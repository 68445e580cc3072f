#include "core/hash.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/mem.h"

void kiln_sha256(unsigned char out[32], const void *data, size_t len)
{
    unsigned int n = 0;
    /* EVP_Digest fails only when OpenSSL cannot allocate a context; there is
     * no useful hash to return then, and a wrong one would be worse. */
    if (!EVP_Digest(data ? data : "", len, out, &n, EVP_sha256(), NULL) || n != 32)
        abort();
}

void kiln_sha256_hex(char out[KILN_SHA256_HEX_LEN + 1], const void *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    kiln_sha256(md, data, len);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[KILN_SHA256_HEX_LEN] = '\0';
}

void kiln_hash_json(char out[KILN_SHA256_HEX_LEN + 1], const json_t *doc)
{
    char *text = kiln_json_canonical(doc);
    /* NULL doc (or one too deep to write) hashes as the empty string, which no
     * JSON value's canonical form equals. */
    kiln_sha256_hex(out, text ? text : "", text ? strlen(text) : 0);
    kiln_xfree(text);
}

unsigned long long kiln_fnv1a64(const void *data, size_t len)
{
    const unsigned char *p = data;
    unsigned long long h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}
