#!/usr/bin/env python3
"""Convert AEAD known-answer vectors into the line format tests/unit/test_aead.c reads.

Usage: convert.py OUTDIR   (writes OUTDIR/aead.txt)

Sources: Project Wycheproof's aes_gcm_test.json and chacha20_poly1305_test.json from
<repo>/../shared/vectors/wycheproof/ when present, else <repo>/tests/vectors/wycheproof/;
and NIST CAVS GCM files from python3-cryptography-vectors when installed.  Only 12-byte IVs
and 16-byte tags are kept (what the record layer uses); AES-192 has no suite and is skipped.

Output, one case per line, fields separated by one space, hex, '-' for empty:
    suite source id result key iv aad msg ct tag
suite is aes128gcm, aes256gcm or chacha20poly1305; result is valid or invalid.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
NIST_DIR = "/usr/lib/python3/dist-packages/cryptography_vectors/ciphers/AES/GCM"
AES_SUITES = {16: "aes128gcm", 32: "aes256gcm"}


def wycheproof_dir():
    shared = os.path.join(REPO, "..", "shared", "vectors", "wycheproof")
    if os.path.isfile(os.path.join(shared, "aes_gcm_test.json")):
        return shared
    return os.path.join(HERE, "wycheproof")


def hx(s):
    return s if s else "-"


def wycheproof(path, chacha):
    with open(path) as f:
        doc = json.load(f)
    out, skipped = [], 0
    for group in doc["testGroups"]:
        if group["ivSize"] != 96 or group["tagSize"] != 128:
            skipped += len(group["tests"])
            continue
        for t in group["tests"]:
            klen = len(t["key"]) // 2
            suite = "chacha20poly1305" if chacha else AES_SUITES.get(klen)
            if suite is None or (chacha and klen != 32):
                skipped += 1
                continue
            # Group sizes are declared per group; check each case anyway.
            if len(t["iv"]) != 24 or len(t["tag"]) != 32:
                skipped += 1
                continue
            if t["result"] not in ("valid", "invalid"):
                # "acceptable" cases are legal but discouraged inputs; none
                # exist for 96-bit IVs, and a new one should be looked at.
                sys.exit("convert.py: unexpected result %r in %s tcId %d" %
                         (t["result"], path, t["tcId"]))
            out.append((suite, "wycheproof", "tc%d" % t["tcId"], t["result"], t["key"], t["iv"],
                        t["aad"], t["msg"], t["ct"], t["tag"]))
    return out, skipped


def rsp_cases(path):
    """Yield (header dict, entry dict) for every entry of a CAVS .rsp file."""
    header, entry = {}, None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                if entry is not None:
                    yield header, entry
                    entry = None
                k, _, v = line.strip("[]").partition("=")
                if entry is None and header.get("_closed"):
                    header = {}
                header[k.strip()] = v.strip()
                continue
            header["_closed"] = True
            if line == "FAIL":
                entry["FAIL"] = True
                continue
            k, _, v = line.partition("=")
            k, v = k.strip(), v.strip()
            if k == "Count":
                if entry is not None:
                    yield header, entry
                entry = {}
            entry[k] = v
    if entry is not None:
        yield header, entry


def nist(path):
    out, skipped = [], 0
    name = os.path.basename(path).replace(".rsp", "")
    for header, e in rsp_cases(path):
        if header.get("IVlen") != "96" or header.get("Taglen") != "128":
            skipped += 1
            continue
        suite = AES_SUITES.get(len(e["Key"]) // 2)
        if suite is None:
            skipped += 1
            continue
        valid = not e.get("FAIL", False)
        tcid = "%s:%s/%s/%s/%s" % (name, header["PTlen"], header["AADlen"], e["Count"], len(out))
        out.append((suite, "nist", tcid, "valid" if valid else "invalid", e["Key"], e["IV"],
                    e["AAD"], e.get("PT", "") if valid else "", e["CT"], e["Tag"]))
    return out, skipped


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: convert.py OUTDIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    wdir = wycheproof_dir()
    cases = []
    for fname, chacha in (("aes_gcm_test.json", False), ("chacha20_poly1305_test.json", True)):
        got, skipped = wycheproof(os.path.join(wdir, fname), chacha)
        print("convert.py: %s: %d kept, %d skipped (IV/tag/key size)" % (fname, len(got), skipped))
        cases += got
    if os.path.isdir(NIST_DIR):
        for fname in ("gcmEncryptExtIV128.rsp", "gcmEncryptExtIV256.rsp", "gcmDecrypt128.rsp",
                      "gcmDecrypt256.rsp"):
            got, skipped = nist(os.path.join(NIST_DIR, fname))
            print("convert.py: %s: %d kept, %d skipped" % (fname, len(got), skipped))
            cases += got
    else:
        print("convert.py: %s missing: NIST vectors skipped (install python3-cryptography-vectors)"
              % NIST_DIR)
    counts = {}
    for c in cases:
        key = (c[0], c[1], c[3])
        counts[key] = counts.get(key, 0) + 1
    tmp = os.path.join(outdir, "aead.txt.tmp")
    with open(tmp, "w") as f:
        f.write("# suite source id result key iv aad msg ct tag (generated by convert.py)\n")
        for c in cases:
            f.write(" ".join(hx(x) for x in c) + "\n")
    os.replace(tmp, os.path.join(outdir, "aead.txt"))
    for k in sorted(counts):
        print("convert.py: %-17s %-10s %-7s %5d" % (k[0], k[1], k[2], counts[k]))
    print("convert.py: %d cases written to %s" % (len(cases), os.path.join(outdir, "aead.txt")))


if __name__ == "__main__":
    main()
