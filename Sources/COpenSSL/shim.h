#pragma once
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

/* Function-like macros of OpenSSL that Swift cannot import. */
static inline long fnhost_ssl_set_sni(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, (char *)name); }
static inline long fnhost_ssl_ctx_set_min_tls12(SSL_CTX *ctx) { return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION); }
static inline long fnhost_ssl_clear_auto_retry(SSL *ssl) { return SSL_clear_mode(ssl, SSL_MODE_AUTO_RETRY); }
