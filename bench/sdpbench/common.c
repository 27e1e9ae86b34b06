/* sdp-bench: message format, content checks and small system helpers shared
 * by every transport. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "transport.h"

/* Messages are slices of one random buffer, so senders pay no cost to make
 * them and every transport sends the same bytes. */
#define PATTERN_SLACK 65536
static uint8_t *pattern;

void pattern_init(void)
{
    if (pattern)
        return;
    pattern = malloc((size_t)MSG_MAX + PATTERN_SLACK);
    if (!pattern) {
        perror("sdp-bench: pattern");
        exit(1);
    }
    uint64_t x = 0x243f6a8885a308d3ull;
    for (size_t i = 0; i < (size_t)MSG_MAX + PATTERN_SLACK; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(pattern + i, &x, 8);
    }
}

const uint8_t *pattern_for(uint64_t tag, int response)
{
    uint64_t h = (tag ^ (response ? 0x9e3779b97f4a7c15ull : 0)) * 0xff51afd7ed558ccdull;
    return pattern + (h >> 48) % (PATTERN_SLACK - 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void hdr_put(uint8_t *p, uint32_t magic, uint32_t resp_len, uint64_t tag)
{
    put32(p, magic);
    put32(p + 4, resp_len);
    put32(p + 8, (uint32_t)tag);
    put32(p + 12, (uint32_t)(tag >> 32));
}

void hdr_get(const uint8_t *p, struct msg_hdr *h)
{
    h->magic = get32(p);
    h->resp_len = get32(p + 4);
    h->tag = (uint64_t)get32(p + 8) | (uint64_t)get32(p + 12) << 32;
}

int msg_iov(struct iovec *iov, uint8_t hdrbuf[MSG_HDR], size_t len, uint32_t magic, uint32_t resp_len,
            uint64_t tag, int response)
{
    hdr_put(hdrbuf, magic, resp_len, tag);
    iov[0] = (struct iovec){hdrbuf, MSG_HDR};
    if (len <= MSG_HDR)
        return 1;
    iov[1] = (struct iovec){(void *)pattern_for(tag, response), len - MSG_HDR};
    return 2;
}

/* Compare three 64-byte windows of the body (start, middle, end) with the
 * pattern: cheap enough for 1 MiB messages, and a transport that skipped or
 * garbled bytes is caught. */
int msg_check(const uint8_t *p, size_t len, uint64_t tag, int response)
{
    if (len < MSG_HDR)
        return 0;
    size_t body = len - MSG_HDR;
    const uint8_t *want = pattern_for(tag, response);
    const uint8_t *got = p + MSG_HDR;
    size_t w = body < 64 ? body : 64;
    size_t offs[3] = {0, (body - w) / 2, body - w};
    for (int i = 0; i < 3; i++) {
        if (memcmp(got + offs[i], want + offs[i], w) != 0)
            return 0;
    }
    return 1;
}

uint32_t msg_serve(const uint8_t *req, size_t len, uint64_t *tag, uint32_t *resp_len)
{
    struct msg_hdr h = {0};
    if (len >= MSG_HDR)
        hdr_get(req, &h);
    *tag = h.tag;
    *resp_len = h.resp_len < MSG_HDR ? MSG_HDR : h.resp_len > MSG_MAX ? MSG_HDR : h.resp_len;
    if (h.magic != MAGIC_REQ || !msg_check(req, len, h.tag, 0)) {
        *resp_len = MSG_HDR;
        return MAGIC_BAD;
    }
    return MAGIC_RESP;
}

int msg_response_ok(const uint8_t *p, size_t len, size_t resp_len, uint64_t *tag)
{
    if (len < MSG_HDR)
        return 0;
    struct msg_hdr h;
    hdr_get(p, &h);
    *tag = h.tag;
    return h.magic == MAGIC_RESP && len == resp_len && h.resp_len == resp_len && msg_check(p, len, h.tag, 1);
}

int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int pin_self(int cpu)
{
    if (cpu < 0)
        return 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0 ? 0 : -1;
}

int set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

int addr4(const char *host, uint16_t port, void *out)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        struct addrinfo hints = {.ai_family = AF_INET}, *res = NULL;
        if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
            return -1;
        a.sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
        freeaddrinfo(res);
    }
    memcpy(out, &a, sizeof(a));
    return 0;
}

int local_addr_towards(const char *host, char *out, size_t n)
{
    struct sockaddr_in to, me;
    socklen_t l = sizeof(me);
    if (addr4(host, 9, &to) != 0)
        return -1;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        return -1;
    int rc = connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0 && getsockname(fd, (struct sockaddr *)&me, &l) == 0 &&
                     inet_ntop(AF_INET, &me.sin_addr, out, (socklen_t)n)
                 ? 0
                 : -1;
    close(fd);
    return rc;
}
