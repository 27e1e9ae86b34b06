#!/usr/bin/env python3
"""Write the Wycheproof AES-GCM cases the module takes (12-byte IV, 16-byte tag,
AES-128 and AES-256) as lines the guest test reads:

    tcId result key iv aad msg ct tag      (hex, '-' for empty)

Usage: wycheproof_gcm.py aes_gcm_test.json OUT
"""
import json
import sys


def main():
    src, out = sys.argv[1], sys.argv[2]
    with open(src) as f:
        doc = json.load(f)
    n = 0
    with open(out, "w") as o:
        for g in doc["testGroups"]:
            if g["ivSize"] != 96 or g["tagSize"] != 128 or g["keySize"] not in (128, 256):
                continue
            for t in g["tests"]:
                if t["result"] not in ("valid", "invalid"):
                    continue
                f = [t["key"], t["iv"], t["aad"], t["msg"], t["ct"], t["tag"]]
                o.write(" ".join([str(t["tcId"]), t["result"]] + [x or "-" for x in f]) + "\n")
                n += 1
    print(f"wycheproof: {n} AES-GCM cases")


if __name__ == "__main__":
    main()
