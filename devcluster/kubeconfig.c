/* devcluster/kubeconfig.c: the kubeconfig kiln dev writes, and the self-signed
 * certificate for --tls (OpenSSL: EC P-256 key, SAN 127.0.0.1 and localhost,
 * valid one year).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/mem.h"
#include "devcluster/internal.h"

static char *bio_string(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    return kiln_xstrndup(data, n > 0 ? (size_t)n : 0);
}

int kiln_dc_tls_selfsigned(char **cert_pem, char **key_pem, kiln_err *err)
{
    int rc = 0;
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    BIO *cb = NULL, *kb = NULL;
    EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
    if (!kctx || EVP_PKEY_keygen_init(kctx) <= 0 ||
        EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kctx, NID_X9_62_prime256v1) <= 0 ||
        EVP_PKEY_keygen(kctx, &key) <= 0) {
        rc = kiln_err_set(err, KILN_EIO, "cannot generate a TLS key");
        goto done;
    }
    x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"kiln-dev", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    const char *exts[][2] = {{"subjectAltName", "IP:127.0.0.1,DNS:localhost"},
                             {"basicConstraints", "critical,CA:TRUE"},
                             {"keyUsage", "critical,digitalSignature,keyCertSign"},
                             {"extendedKeyUsage", "serverAuth"}};
    for (size_t i = 0; i < 4; i++) {
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1]);
        if (!e) {
            rc = kiln_err_set(err, KILN_EIO, "cannot build certificate extension %s", exts[i][0]);
            goto done;
        }
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    if (!X509_sign(x, key, EVP_sha256())) {
        rc = kiln_err_set(err, KILN_EIO, "cannot sign the certificate");
        goto done;
    }
    cb = BIO_new(BIO_s_mem());
    kb = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(cb, x);
    PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL);
    *cert_pem = bio_string(cb);
    *key_pem = bio_string(kb);
done:
    BIO_free(cb);
    BIO_free(kb);
    X509_free(x);
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(kctx);
    return rc;
}

int kiln_dc_kubeconfig_write(kiln_devcluster *dc, const char *path, const char *ca_pem,
                             kiln_err *err)
{
    kiln_buf b;
    kiln_buf_init(&b, 1 << 20);
    kiln_buf_printf(&b, NULL,
                    "apiVersion: v1\n"
                    "kind: Config\n"
                    "current-context: kiln-dev\n"
                    "clusters:\n"
                    "- name: kiln-dev\n"
                    "  cluster:\n"
                    "    server: %s\n",
                    dc->url);
    if (ca_pem) {
        kiln_buf enc;
        kiln_buf_init(&enc, 1 << 20);
        kiln_dc_base64((const unsigned char *)ca_pem, strlen(ca_pem), &enc);
        kiln_buf_printf(&b, NULL, "    certificate-authority-data: %s\n", enc.data);
        kiln_buf_free(&enc);
    }
    kiln_buf_printf(&b, NULL,
                    "contexts:\n"
                    "- name: kiln-dev\n"
                    "  context:\n"
                    "    cluster: kiln-dev\n"
                    "    user: kiln-dev\n"
                    "    namespace: default\n"
                    "users:\n"
                    "- name: kiln-dev\n"
                    "  user:\n"
                    "    token: %s\n",
                    dc->token);
    /* Written beside the target and renamed, so a reader never sees half a file;
     * 0600 because it holds the token. */
    char *tmp = kiln_xasprintf("%s.tmp", path);
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, b.data, b.len) != (ssize_t)b.len || fsync(fd) < 0)
        rc = kiln_err_set(err, KILN_EIO, "%s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = kiln_err_set(err, KILN_EIO, "%s: %s", path, strerror(errno));
    if (rc < 0)
        unlink(tmp);
    kiln_xfree(tmp);
    kiln_buf_free(&b);
    return rc;
}
