/* sdp-bench: TLS 1.3 with the records in the kernel (kTLS), where the kernel
 * has it.  OpenSSL does the handshake and hands the keys over; detection is
 * the setsockopt(TCP_ULP, "tls") that kTLS needs on a connected socket. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream.h"
#include "tr_tls.h"

static const char *ktls_unavailable(char *why, size_t n)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), cfd = socket(AF_INET, SOCK_STREAM, 0), afd = -1;
    const char *res = NULL;
    if (lfd < 0 || cfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &l) != 0 || connect(cfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        (afd = accept(lfd, NULL, NULL)) < 0) {
        snprintf(why, n, "unavailable: cannot open a loopback TCP connection: %s", strerror(errno));
        res = why;
    } else if (setsockopt(cfd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) != 0) {
        snprintf(why, n, "unavailable: setsockopt(TCP_ULP, \"tls\"): %s", strerror(errno));
        res = why;
    }
    if (afd >= 0)
        close(afd);
    if (cfd >= 0)
        close(cfd);
    if (lfd >= 0)
        close(lfd);
    return res;
}

static struct tr_server *ktls_server_start(const char *host, uint16_t port, int cpu, char *err, size_t n)
{
    return tls_server_start_v(1, host, port, cpu, err, n);
}

static struct tr_conn *ktls_connect(const char *host, uint16_t port, char *err, size_t n)
{
    return tls_connect_v(&tr_ktls, 1, host, port, err, n);
}

static int ktls_handshake(const char *host, uint16_t port, double *us, char *err, size_t n)
{
    return tls_handshake_v(1, host, port, us, err, n);
}

const struct transport tr_ktls = {
    .name = "ktls",
    .label = "TLS 1.3 over TCP, records in the kernel (kTLS), AES-128-GCM",
    .unavailable = ktls_unavailable,
    .server_start = ktls_server_start,
    .server_port = tls_server_port,
    .server_stop = tls_server_stop,
    .connect = ktls_connect,
    .send = stream_send,
    .poll = stream_poll,
    .close = stream_close,
    .handshake = ktls_handshake,
};
