#!/usr/bin/env bash
# Resolver benchmark: vrules' Swift resolver beside the Rust trust-dns resolver, on the same
# machine, against the same local Knot DNS, with the same workload:
#   cold   — COLD distinct names (a wildcard answers them), IN_FLIGHT lookups outstanding;
#   cached — one warm name asked again and again (ns per lookup).
# Needs the Debian packages knot, librust-trust-dns-resolver-dev, librust-tokio-dev (cargo).
# Usage: bench/run-resolver-bench.sh [COLD] [IN_FLIGHT]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cold="${1:-50000}"
in_flight="${2:-256}"

for tool in /usr/sbin/knotd cargo swift; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install knot cargo librust-trust-dns-resolver-dev librust-tokio-dev" >&2; exit 1; }
done
[ -d /usr/share/cargo/registry/trust-dns-resolver-0.22.0 ] || {
    echo "missing trust-dns-resolver crate: apt-get install librust-trust-dns-resolver-dev librust-tokio-dev" >&2; exit 1; }

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
*   A   192.0.2.1
ZONE
cat > "$work/knot.conf" <<CONF
server:
    rundir: "$work"
    listen: 127.0.0.1@$port
database:
    storage: "$work"
zone:
  - domain: bench.test
    file: "$work/bench.test.zone"
    zonefile-sync: -1
    journal-content: none
CONF

echo "building (release)..." >&2
swift build -c release --package-path "$here/resolver-swift" --scratch-path "$here/resolver-swift/.build" >&2
# Cargo finds .cargo/config.toml (the Debian directory source) from the working directory.
(cd "$here/resolver-rust" && cargo build --release --offline) >&2

/usr/sbin/knotd -c "$work/knot.conf" >"$work/knot.log" 2>&1 &
knot_pid=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done

echo "== resolver benchmark: $(nproc) cores, Knot $(/usr/sbin/knotd --version | awk '{print $NF}') on 127.0.0.1:$port, $cold cold lookups, $in_flight in flight"
"$here/resolver-swift/.build/release/ResolverBench" "$port" "$cold" "$in_flight"
"$here/resolver-rust/target/release/trust-dns-bench" "$port" "$cold" "$in_flight"
