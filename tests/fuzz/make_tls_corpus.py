#!/usr/bin/env python3
"""Write the seed corpus of fuzz_tls_server: real TLS 1.3 ClientHellos from
`openssl s_client` (plain, with the fuzzer's PSK, other suites and groups),
each prefixed by the fuzzer's chunking byte (0: whole, 7: 7-byte pieces)
and named by the SHA-1 of its bytes as libFuzzer names its own.

Usage: make_tls_corpus.py [CORPUS_DIR]   (default: corpus/fuzz_tls_server next to this file)"""
import hashlib
import os
import socket
import subprocess
import sys

PSK_HEX = bytes(range(32)).hex()  # the key in fuzz_tls_server.c
# s_client binds its PSK to SHA-256, and a libsdp server binds it to the
# hash of the client's first suite: put a SHA-256 suite first.
PSK = ["-psk_identity", "fuzz", "-psk", PSK_HEX,
       "-ciphersuites", "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"]
VARIANTS = [
    [],
    PSK,
    PSK[:4] + ["-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"],
    ["-ciphersuites", "TLS_AES_256_GCM_SHA384", "-groups", "P-256"],
    PSK + ["-groups", "P-384:X25519", "-no_middlebox"],
]


def client_hello(args):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3", "-quiet"] + args
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    conn, _ = srv.accept()
    conn.settimeout(5)
    data = b""
    # One record: 5-byte header, then its length.
    while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    conn.close()
    srv.close()
    proc.kill()
    proc.wait()
    return data


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_tls_server")
    os.makedirs(out, exist_ok=True)
    for i, args in enumerate(VARIANTS):
        hello = client_hello(args)
        if len(hello) < 50 or hello[0] != 22:
            sys.exit(f"no ClientHello from openssl s_client {' '.join(args)}")
        for prefix in (b"\x00", b"\x07") if i < 2 else (b"\x00",):
            blob = prefix + hello
            with open(os.path.join(out, hashlib.sha1(blob).hexdigest()), "wb") as f:
                f.write(blob)


if __name__ == "__main__":
    main()
