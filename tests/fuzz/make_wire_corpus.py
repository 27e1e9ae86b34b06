#!/usr/bin/env python3
"""Write the seed corpus of the wire fuzzers: a few valid packets of each
type (docs/PROTOCOL.md section 3) into tests/fuzz/corpus/<fuzzer>/, one file
per packet, named by the SHA-1 of its bytes as libFuzzer names its own.

Usage: make_wire_corpus.py [CORPUS_DIR]   (default: the corpus/ next to this file)
Control tags are random-looking bytes: the decoders do not check them."""
import hashlib
import os
import sys

VERSION = 1
DATA, GRANT, RESEND, UNKNOWN, BUSY, NEED_ACK, ACK, CUTOFFS, HANDSHAKE = range(1, 10)
KEY_PHASE, RETRANSMIT, EARLY = 1, 2, 4
ID_MAX = (1 << 48) - 1


def be(n, size):
    return n.to_bytes(size, "big")


def hdr(ptype, flags, rpc_id):
    return bytes([VERSION << 4 | ptype, flags]) + be(rpc_id, 6)


def trailer(seq):
    tag = hashlib.sha256(be(seq, 8)).digest()[:16]
    return be(seq, 8) + tag


def wire_len(msg_len, rec_size):
    nrec = max(1, -(-msg_len // rec_size))
    return msg_len + 16 * nrec


def data(rpc_id, flags, msg_len, rec_size, offset, plen, unsched=None):
    wl = wire_len(msg_len, rec_size)
    assert offset + plen <= wl and plen >= 1
    unsched = wl if unsched is None else unsched
    payload = bytes((i * 7 + offset) & 0xFF for i in range(plen))
    return (hdr(DATA, flags, rpc_id) + be(msg_len, 4) + be(offset, 4) + be(unsched, 4)
            + be(rec_size, 2) + be(0, 2) + payload)


def grant(rpc_id, flags, offset, prio, seq):
    return hdr(GRANT, flags, rpc_id) + be(offset, 4) + bytes([prio, 0, 0, 0]) + trailer(seq)


def resend(rpc_id, flags, offset, length, prio, seq):
    return (hdr(RESEND, flags, rpc_id) + be(offset, 4) + be(length, 4) + bytes([prio, 0, 0, 0])
            + trailer(seq))


def empty_ctl(ptype, rpc_id, flags, seq):
    return hdr(ptype, flags, rpc_id) + trailer(seq)


def ack(flags, ids, seq):
    return (hdr(ACK, flags, 0) + bytes([len(ids)]) + bytes(7) + b"".join(be(i, 6) for i in ids)
            + trailer(seq))


def cutoffs(flags, values, seq):
    return (hdr(CUTOFFS, flags, 0) + bytes([len(values)]) + bytes(7)
            + b"".join(be(v, 4) for v in values) + trailer(seq))


def handshake(kind, conn_id, stream_offset, ack_offset, token, payload):
    return (hdr(HANDSHAKE, 0, 0) + bytes([kind, len(token)]) + be(len(payload), 2) + be(conn_id, 8)
            + be(stream_offset, 4) + be(ack_offset, 4) + token + payload)


PACKETS = {
    "data": [
        data(2, 0, 100, 64, 100, 32),
        data(ID_MAX, KEY_PHASE | RETRANSMIT | EARLY, 0, 1, 0, 16),
        data(3, RETRANSMIT, 1 << 30, 16384, 0, 1448, unsched=0),
        data(4, 0, 65536, 1, 65536 * 17 - 5, 5),
    ],
    "grant": [
        grant(2, 0, 5000, 5, 1),
        grant(ID_MAX, KEY_PHASE, 0xFFFFFFFF, 7, (1 << 64) - 1),
        grant(1, 0, 0, 0, 0),
    ],
    "resend": [
        resend(2, 0, 1000, 1448, 3, 77),
        resend(ID_MAX, KEY_PHASE, 0xFFFFFFFE, 1, 7, 1 << 56),
        resend(1, 0, 0, 0xFFFFFFFF, 0, 5),
    ],
    "unknown": [empty_ctl(UNKNOWN, 0x42, 0, 1), empty_ctl(UNKNOWN, ID_MAX, KEY_PHASE, 2)],
    "busy": [empty_ctl(BUSY, 0x43, KEY_PHASE, 2), empty_ctl(BUSY, 1, 0, 0)],
    "need_ack": [empty_ctl(NEED_ACK, 0x45, 0, 3), empty_ctl(NEED_ACK, ID_MAX, KEY_PHASE, 9)],
    "ack": [
        ack(0, [2], 9),
        ack(KEY_PHASE, [2, ID_MAX - 1], 10),
        ack(0, [2 * i for i in range(1, 9)], 11),
    ],
    "cutoffs": [
        cutoffs(0, [100], 1),
        cutoffs(KEY_PHASE, [100, 1000, 10000], 10),
        cutoffs(0, [0, 64, 512, 1500, 4096, 65536, 1 << 20, 0xFFFFFFFF], 12),
    ],
    "handshake": [
        handshake(1, 0x1122334455667788, 0, 7, b"TOKN", b"0123456789"),
        handshake(2, 0, 100, 200, b"", b"\x16\x03\x03" + bytes(40)),
        handshake(3, (1 << 64) - 1, 0, 0, bytes(range(128)), b""),
        handshake(4, 42, 0xFFFFFFFF, 0xFFFFFFFF, b"", b""),
    ],
}


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    everything = [p for pkts in PACKETS.values() for p in pkts]
    targets = {f"fuzz_wire_{name}": pkts for name, pkts in PACKETS.items()}
    targets["fuzz_wire_decode"] = everything
    targets["fuzz_wire_hdr"] = everything
    for target, pkts in sorted(targets.items()):
        d = os.path.join(top, target)
        os.makedirs(d, exist_ok=True)
        for old in os.listdir(d):  # regenerate from scratch: no stale seeds
            os.remove(os.path.join(d, old))
        for p in pkts:
            with open(os.path.join(d, hashlib.sha1(p).hexdigest()), "wb") as f:
                f.write(p)
        print(f"{target}: {len(pkts)} packets")


if __name__ == "__main__":
    main()
