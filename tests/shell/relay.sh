#!/usr/bin/env bash
# sdp-relay: forwards both ways, and its impairments happen at about the
# configured rates with a fixed seed. $1 is the build directory.
set -euo pipefail
bin="$1/bin/sdp-relay"
exec python3 - "$bin" <<'PY'
import socket, subprocess, sys, time, json, threading
relay = sys.argv[1]

def run(args, n=2000, payload_len=100):
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    sport = srv.getsockname()[1]
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    lport = probe.getsockname()[1]
    probe.close()
    p = subprocess.Popen([relay, "--listen", f"127.0.0.1:{lport}", "--to", f"127.0.0.1:{sport}",
                          "--duration", "20"] + args, stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cli.settimeout(1.0)
    srv.settimeout(1.0)
    for s_ in (cli, srv):
        s_.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    got, back = [], [0]
    def server():
        try:
            while True:
                data, addr = srv.recvfrom(65536)
                got.append(data)
                srv.sendto(data, addr)  # echo back through the relay
        except socket.timeout:
            pass
    def client_rx():
        try:
            while True:
                cli.recvfrom(65536)
                back[0] += 1
        except socket.timeout:
            pass
    ts = [threading.Thread(target=server), threading.Thread(target=client_rx)]
    for t in ts: t.start()
    for i in range(n):
        cli.sendto(i.to_bytes(4, "big") + bytes([i & 0xff]) * (payload_len - 4), ("127.0.0.1", lport))
        if i % 20 == 19:
            time.sleep(0.001)  # stay well inside socket buffers
    for t in ts: t.join()
    back = back[0]
    p.terminate()
    stats = json.loads(p.communicate(timeout=10)[0].strip().splitlines()[-1])
    return got, back, stats

passed = 0
def check(cond, what):
    global passed
    if not cond:
        print("FAIL:", what); sys.exit(1)
    passed += 1
    print("ok:", what)

got, back, st = run([])
check(len(got) == 2000 and back == 2000, f"clean relay forwards both ways ({len(got)}, {back})")
got, back, st = run(["--drop", "0.1", "--seed", "7"])
check(1650 < len(got) < 1950, f"10% drop loses about a tenth ({len(got)} of 2000)")
check(st["dropped"] > 0 and st["seed"] == 7, "drops are counted and the seed reported")
got, back, st = run(["--dup", "1"], n=500)
check(len(got) == 1000, f"dup 1.0 doubles every datagram ({len(got)})")
got, back, st = run(["--corrupt", "1"], n=500)
bad = sum(1 for d in got if d[4:] != bytes([d[4]]) * (len(d) - 4) or int.from_bytes(d[:4], "big") >= 500)
check(bad > 400, f"corrupt 1.0 flips a bit in (nearly) every datagram ({bad})")
got, back, st = run(["--reorder", "0.2", "--seed", "3"], n=1000)
seq = [int.from_bytes(d[:4], "big") for d in got]
inv = sum(1 for a, b in zip(seq, seq[1:]) if b < a)
check(len(got) == 1000 and inv > 20, f"reorder 0.2 delivers all, out of order ({inv} inversions)")
print(f"relay: {passed} passed, 0 failed")
PY
