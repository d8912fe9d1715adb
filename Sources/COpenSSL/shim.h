#pragma once
#include <string.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

/* Function-like macros of OpenSSL that Swift cannot import. */
static inline long fnhost_ssl_set_sni(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, (char *)name); }
static inline long fnhost_ssl_ctx_set_min_tls12(SSL_CTX *ctx) { return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION); }
static inline long fnhost_ssl_clear_auto_retry(SSL *ssl) { return SSL_clear_mode(ssl, SSL_MODE_AUTO_RETRY); }
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

// Message signing (FnHostSecurity). OPENSSL_free is a macro, so Swift cannot call it.
static inline void fnhost_openssl_free(void *p) { OPENSSL_free(p); }

// A PEM password callback that never prompts on a terminal: no password given, no key.
static inline int fnhost_pem_password(char *buf, int size, int rwflag, void *u) {
    (void)rwflag;
    if (u == NULL || size <= 0) return -1;
    size_t n = strlen((const char *)u);
    if (n > (size_t)size) return -1;
    memcpy(buf, u, n);
    return (int)n;
}

/// Reads a PEM private key from `bio`, decrypting it with `password` (NULL: none; an
/// encrypted key then fails instead of prompting).
static inline EVP_PKEY *fnhost_read_private_key(BIO *bio, const char *password) {
    return PEM_read_bio_PrivateKey(bio, NULL, fnhost_pem_password, (void *)password);
}
