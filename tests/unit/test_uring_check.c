/* The sanitizer build's io_uring address check: a send whose buffer was
 * freed must be caught before the kernel touches it (ASan cannot see the
 * kernel's accesses).  Without sanitizers the check compiles to nothing
 * and these tests skip. */
#include <criterion/criterion.h>
#ifdef SDP_SANITIZE
#include <sanitizer/asan_interface.h>
#endif
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "engine/uring.h"
#include "engine/uring_check.h"

#ifdef SDP_SANITIZE
static void prep_send(struct io_uring *ring, struct msghdr *m, struct iovec *iov, void *buf, size_t len)
{
    memset(m, 0, sizeof(*m));
    iov->iov_base = buf;
    iov->iov_len = len;
    m->msg_iov = iov;
    m->msg_iovlen = 1;
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    cr_assert_not_null(sqe);
    io_uring_prep_sendmsg(sqe, -1, m, 0);
}

Test(uring_check, poisoned_send_buffer_aborts, .signal = SIGABRT)
{
    struct io_uring ring;
    cr_assert_eq(sdp_uring_init(&ring, 8, 0, NULL), 0);
    struct msghdr m;
    struct iovec iov;
    char *buf = malloc(128);
    /* What a freed or out-of-bounds buffer looks like to ASan. */
    __asan_poison_memory_region(buf + 64, 64);
    prep_send(&ring, &m, &iov, buf, 100);
    sdp_uring_check_sqes(&ring); /* must abort */
}

Test(uring_check, live_buffers_pass)
{
    struct io_uring ring;
    cr_assert_eq(sdp_uring_init(&ring, 8, 0, NULL), 0);
    struct msghdr m;
    struct iovec iov;
    char *buf = malloc(100);
    prep_send(&ring, &m, &iov, buf, 100);
    sdp_uring_check_sqes(&ring);
    free(buf);
    io_uring_queue_exit(&ring);
}
#else
Test(uring_check, needs_sanitizer_build)
{
    cr_skip_test("the io_uring address check exists only in the sanitizer build (make sanitize)");
}
#endif
