# The quick start: `make demo` (the main job) and `make check` (every test).
# Both install missing Debian packages first (tools/deps.txt), then build with CMake.
BUILD ?= build
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 15
CMAKE_ARGS ?=

.PHONY: all deps build demo check sanitize fuzz clean

all: build

deps:
	@bash tools/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	./$(BUILD)/bin/sdp-bench

# Includes the kernel shim's tests in a qemu guest (SDP_KSHIM_TESTS=0 skips them).
check: build
	cd $(BUILD) && SDP_KSHIM_TESTS=$${SDP_KSHIM_TESTS:-1} ctest --output-on-failure -j$(JOBS)

# ASan + UBSan build of every test.
sanitize: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSDP_SANITIZE=ON -DSDP_WERROR=ON $(CMAKE_ARGS)
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp UBSAN_OPTIONS=print_stacktrace=1 SDP_KSHIM_TESTS=0 ctest --output-on-failure -j$(JOBS)

# libFuzzer targets (clang-14), each run for FUZZ_SECONDS.
fuzz: deps
	CC=clang-14 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSDP_FUZZ=ON -DSDP_WERROR=ON $(CMAKE_ARGS)
	cmake --build build-fuzz -j$(JOBS)
	bash tools/run-fuzzers.sh build-fuzz/bin $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) build-asan build-fuzz
