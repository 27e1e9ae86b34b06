set(SDP_WARNINGS -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wpointer-arith -Wformat=2 -Wvla -Wno-unused-parameter)
if(SDP_WERROR)
  list(APPEND SDP_WARNINGS -Werror)
endif()
