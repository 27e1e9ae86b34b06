/* An SDP echo server in a few dozen lines: answers every request with its
 * own bytes.  Usage: echo_server ADDR PORT SECRET_HEX (64 hex digits). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdp/sdp.h"

static int hex32(const char *h, uint8_t out[32])
{
    for (int i = 0; i < 32; i++)
        if (sscanf(h + 2 * i, "%2hhx", &out[i]) != 1)
            return -1;
    return strlen(h) == 64 ? 0 : -1;
}

int main(int argc, char **argv)
{
    uint8_t secret[32];
    if (argc != 4 || hex32(argv[3], secret) != 0) {
        fprintf(stderr, "usage: %s ADDR PORT SECRET_HEX\n", argv[0]);
        return 2;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    inet_pton(AF_INET, argv[1], &a.sin_addr);
    sdp_socket *s;
    int rc = sdp_open((struct sockaddr *)&a, sizeof(a), NULL, &s); /* inline mode: this thread drives it */
    if (rc == 0)
        rc = sdp_set_default_keys(s, SDP_CIPHER_AES128GCM, secret, secret);
    if (rc != 0) {
        fprintf(stderr, "echo_server: %s\n", sdp_strerror(rc));
        return 1;
    }
    for (;;) {
        struct sdp_msg m;
        if (sdp_recv(s, &m, -1) != 0)
            continue;
        if (m.kind == SDP_MSG_REQUEST && (rc = sdp_reply(s, &m, m.data, m.len)) != 0)
            fprintf(stderr, "echo_server: reply: %s\n", sdp_strerror(rc));
        sdp_release(s, &m);
    }
}
