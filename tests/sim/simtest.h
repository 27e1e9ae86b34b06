/* Assertions for simulator tests: every failure names the seed and how to
 * replay it. */
#ifndef SDP_SIM_SIMTEST_H
#define SDP_SIM_SIMTEST_H

#include <criterion/criterion.h>

#include "simhost.h"

#define SIM_CHECK(s, cond) cr_assert((cond), "%s is false; %s", #cond, sim_replay_hint(s))

#endif
