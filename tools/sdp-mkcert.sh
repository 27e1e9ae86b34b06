#!/usr/bin/env bash
# Make test certificates for the SDP handshake with the openssl CLI: a CA
# (made once per directory, then reused) and a leaf signed by it carrying
# the given DNS names and IP addresses as SANs.  P-256 keys throughout.
#
#   sdp-mkcert.sh [-n NAME] [-d DAYS] [-c CN] DIR [SAN ...]
#
#   DIR/ca.pem, DIR/ca.key      the CA (give ca.pem as ca_file)
#   DIR/NAME.pem, DIR/NAME.key  the leaf (cert_file / key_file); NAME: server
#   SAN                         a DNS name or an IPv4/IPv6 literal; several allowed
#   -d DAYS                     leaf validity (default 30); negative: already expired
#   -c CN                       subject CN (default: the first SAN, else NAME)
#
# Prints the leaf's SHA-256 fingerprint (hex, what a client pins) on stdout.
# Example: sdp-mkcert.sh /tmp/pki sdp.test 127.0.0.1 ::1
set -euo pipefail

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

name=server days=30 cn=
while getopts "n:d:c:h" o; do
  case $o in
    n) name=$OPTARG ;;
    d) days=$OPTARG ;;
    c) cn=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
dir=$1; shift
command -v openssl >/dev/null 2>&1 || { echo "sdp-mkcert.sh: openssl not found (apt-get install openssl)" >&2; exit 1; }
openssl version >/dev/null || { echo "sdp-mkcert.sh: openssl does not run" >&2; exit 1; }
[[ $name =~ ^[A-Za-z0-9._-]+$ ]] || { echo "sdp-mkcert.sh: bad name '$name'" >&2; exit 2; }
[[ $days =~ ^-?[0-9]+$ ]] || { echo "sdp-mkcert.sh: bad days '$days'" >&2; exit 2; }

sans=()
for s in "$@"; do
  if [[ $s =~ ^[0-9.]+$ || $s == *:* ]]; then
    sans+=("IP:$s")
  elif [[ $s =~ ^[A-Za-z0-9*.-]+$ ]]; then
    sans+=("DNS:$s")
  else
    echo "sdp-mkcert.sh: '$s' is neither a DNS name nor an IP address" >&2; exit 2
  fi
done
[ -n "$cn" ] || cn=${1:-$name}

mkdir -p "$dir"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -s "$dir/ca.pem" ] || [ ! -s "$dir/ca.key" ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 -subj "/CN=sdp test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.pem" 2>/dev/null
fi

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key" 2>/dev/null
openssl req -new -key "$dir/$name.key" -subj "/CN=$cn" -out "$tmp/leaf.csr" 2>/dev/null
{
  echo "basicConstraints=CA:FALSE"
  if [ ${#sans[@]} -gt 0 ]; then
    (IFS=,; echo "subjectAltName=${sans[*]}")
  fi
} >"$tmp/ext.cnf"

# `openssl x509 -days` takes only a positive count; an expired leaf is
# signed through `openssl ca`, which accepts explicit dates.
if [ "$days" -gt 0 ]; then
  openssl x509 -req -in "$tmp/leaf.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -CAserial "$tmp/ca.srl" -sha256 -days "$days" -extfile "$tmp/ext.cnf" -out "$dir/$name.pem" 2>/dev/null
else
  back=$(( -days + 1 ))
  start=$(date -u -d "-$((back + 30)) days" +%Y%m%d%H%M%SZ)
  end=$(date -u -d "-$((back > 1 ? back - 1 : 1)) days" +%Y%m%d%H%M%SZ)
  mkdir -p "$tmp/db"; : >"$tmp/db/index"; echo 01 >"$tmp/db/serial"
  cat >"$tmp/ca.cnf" <<EOF
[ca]
default_ca = c
[c]
database = $tmp/db/index
serial = $tmp/db/serial
new_certs_dir = $tmp/db
default_md = sha256
policy = p
copy_extensions = none
[p]
commonName = supplied
EOF
  openssl ca -batch -config "$tmp/ca.cnf" -cert "$dir/ca.pem" -keyfile "$dir/ca.key" -in "$tmp/leaf.csr" \
    -startdate "$start" -enddate "$end" -extfile "$tmp/ext.cnf" -notext -out "$dir/$name.pem" 2>/dev/null
fi
chmod 644 "$dir/ca.pem" "$dir/$name.pem"

openssl x509 -in "$dir/$name.pem" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1
