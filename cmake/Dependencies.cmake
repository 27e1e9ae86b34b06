# Build dependencies; the Debian packages that provide them are listed once,
# in tools/deps.txt, and installed by tools/install-deps.sh.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBURING REQUIRED IMPORTED_TARGET liburing)
pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET libcrypto>=3.0 libssl>=3.0)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
find_package(Threads REQUIRED)
if(SDP_TESTS)
  pkg_check_modules(CRITERION REQUIRED IMPORTED_TARGET criterion)
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
endif()
