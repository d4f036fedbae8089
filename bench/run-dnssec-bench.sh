#!/usr/bin/env bash
# DNSSEC validation benchmark: vrules' resolver with validate = true beside the same resolver
# without it, against one Knot DNS that signs bench.test (ECDSA P-256, NSEC), in one run:
# cold lookups of distinct names that each have their own signature, cold lookups of names a
# wildcard answers (one signature behind them all), and cached lookups, for both.
# Needs the Debian package knot. Usage: [ALGORITHM=rsasha256] bench/run-dnssec-bench.sh [COLD] [IN_FLIGHT] [ROUNDS]
# ALGORITHM is Knot's name for the signing algorithm (default ecdsap256sha256; rsasha256 uses
# 2048-bit keys, ed25519 also works).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cold="${1:-20000}"
in_flight="${2:-64}"
rounds="${3:-5}"
algorithm="${ALGORITHM:-ecdsap256sha256}"
sizes=""
case "$algorithm" in rsa*) sizes="    ksk-size: 2048
    zsk-size: 2048";; esac

command -v /usr/sbin/knotd >/dev/null || { echo "missing knotd: apt-get install knot" >&2; exit 1; }

work="$(mktemp -d)"
knot_pid=""
cleanup() { [ -n "$knot_pid" ] && kill "$knot_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat > "$work/bench.test.zone" <<ZONE
\$ORIGIN bench.test.
\$TTL 3600
@   SOA ns.bench.test. hostmaster.bench.test. 1 3600 600 86400 60
@   NS  ns
ns  A   127.0.0.1
*.w A   192.0.2.1
ZONE
# One A record per cold lookup, for each of the two resolvers: every answer its own RRSIG.
python3 -c "
import sys
n = int(sys.argv[1])
for prefix in ('u', 'v'):
    for i in range(n + 1):
        print(f'{prefix}{i} A 192.0.2.2')
" "$cold" >> "$work/bench.test.zone"
cat > "$work/knot.conf" <<CONF
server:
    rundir: "$work"
    listen: 127.0.0.1@$port
database:
    storage: "$work"
policy:
  - id: bench
    algorithm: $algorithm
$sizes
zone:
  - domain: bench.test
    file: "$work/bench.test.zone"
    zonefile-sync: -1
    journal-content: all
    dnssec-signing: on
    dnssec-policy: bench
CONF

echo "building (release)..." >&2
swift build -c release --package-path "$here/dnssec-swift" --scratch-path "$here/dnssec-swift/.build" >&2

/usr/sbin/knotd -c "$work/knot.conf" >"$work/knot.log" 2>&1 &
knot_pid=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done

echo "== DNSSEC benchmark ($algorithm): $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), Knot $(/usr/sbin/knotd --version | awk '{print $NF}') on 127.0.0.1:$port, $cold cold lookups each, $in_flight in flight"
ALGORITHM="$algorithm" "$here/dnssec-swift/.build/release/DNSSECBench" "$port" "$cold" "$in_flight" "$rounds"
