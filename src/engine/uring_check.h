/* Sanitizer builds only: ASan cannot see the kernel read or write user
 * memory, so before each submit we check that every address a pending SQE
 * hands to the kernel is addressable, as liburing's own sanitizer build
 * does.  Compiled to nothing otherwise. */
#ifndef SDP_ENGINE_URING_CHECK_H
#define SDP_ENGINE_URING_CHECK_H

#include <liburing.h>

#ifdef SDP_SANITIZE
void sdp_uring_check_sqes(struct io_uring *ring);
#else
static inline void sdp_uring_check_sqes(struct io_uring *ring)
{
    (void)ring;
}
#endif

#endif
