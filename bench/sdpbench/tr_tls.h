/* sdp-bench: the TLS transport's entry points, shared with its kTLS variant
 * (ktls = 1: SSL_OP_ENABLE_KTLS, and connections without kTLS refused). */
#ifndef SDPBENCH_TR_TLS_H
#define SDPBENCH_TR_TLS_H

#include "transport.h"

struct tr_server *tls_server_start_v(int ktls, const char *host, uint16_t port, int cpu, char *err, size_t n);
uint16_t tls_server_port(struct tr_server *s);
void tls_server_stop(struct tr_server *s);
struct tr_conn *tls_connect_v(const struct transport *t, int ktls, const char *host, uint16_t port, char *err,
                              size_t n);
int tls_handshake_v(int ktls, const char *host, uint16_t port, double *us, char *err, size_t n);

#endif
