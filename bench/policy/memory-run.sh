#!/usr/bin/env bash
# Memory of `vrules serve` over a long run with network DNS: the default policy, its DNS
# asked of a Knot DNS on a loopback port (the example zone and its reverse zone), the
# Postfix mix from the load generator, RSS read before and after (and sampled during) the
# run. Twice: with the resolver's cache (default size) and with `cache_size = 0`, where
# every lookup goes to Knot and every DNS wait suspends a rule.
#
# Usage: bench/policy/memory-run.sh [REQUESTS]   (default 1000000 per run)
# Environment: CONNECTIONS (16), WARMUP (20000), VRULES_BIN (a release vrules; default: build
# it as run.sh does), KEEP_WORK=1.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
requests="${1:-1000000}"
connections="${CONNECTIONS:-16}"
warmup="${WARMUP:-20000}"

[ -x /usr/sbin/knotd ] || apt_install knot
work="$(mktemp -d /tmp/vrules-memory-run.XXXXXX)"
chmod 755 "$work"
knot_pid=""
vrules_pid=""
cleanup() {
    [ -n "$vrules_pid" ] && kill "$vrules_pid" 2>/dev/null || true
    [ -n "$knot_pid" ] && kill "$knot_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    if [ -n "${KEEP_WORK:-}" ]; then echo "work files kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

if [ -n "${VRULES_BIN:-}" ]; then
    vrules="$VRULES_BIN"
else
    (cd "$root" && swift build -c release --static-swift-stdlib --product vrules --scratch-path .build-bench >&2)
    vrules="$root/.build-bench/release/vrules"
fi
loadgen="$(build_loadgen)"

# The example zone's forward part and its IPv4 reverse zone, each a zone of its own for Knot.
awk '/^\$ORIGIN 2\.0\.192/ { exit } { print }' "$root/examples/example.zone" >"$work/example.zone"
{
    printf '$ORIGIN 2.0.192.in-addr.arpa.\n$TTL 300\n'
    printf '@ IN SOA ns.example. hostmaster.example. 1 3600 600 86400 300\n@ IN NS ns.example.\n'
    awk '/^\$ORIGIN 2\.0\.192/ { on = 1; next } /^\$ORIGIN/ { on = 0 } on { print }' "$root/examples/example.zone"
} >"$work/reverse.zone"
kport="$(free_port)"
knot_config "$work" "$kport" "example=$work/example.zone" "2.0.192.in-addr.arpa=$work/reverse.zone"
/usr/sbin/knotd -c "$work/knot.conf" >"$work/knot.log" 2>&1 &
knot_pid=$!
sleep 1
kill -0 "$knot_pid" || { cat "$work/knot.log" >&2; exit 1; }

echo "== vrules serve memory with network DNS (Knot on 127.0.0.1:$kport): $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), load average $(loadavg)"
run() {   # label cache-line
    local label="$1" cache="$2" vport line before after
    printf '[server.dns]\ntype = "custom"\nservers = ["127.0.0.1:%s"]\n[server.dns.options]\n%s\n' "$kport" "$cache" >"$work/$label.toml"
    vport="$(free_port)"
    (cd "$root" && exec "$vrules" serve --config "$work/$label.toml" --rules rules/main.lua \
        --listen "127.0.0.1:$vport" --log-level warning >"$work/$label.log" 2>&1) &
    vrules_pid=$!
    wait_port "$vport"
    "$loadgen" --port "$vport" --connections "$connections" --requests "$warmup" --mix postfix >/dev/null || true
    before="$(rss_kb "$vrules_pid")"
    line="$("$loadgen" --port "$vport" --connections "$connections" --requests "$requests" --mix postfix \
        --server-pid "$vrules_pid" --label "$label" | head -1)" || true
    after="$(rss_kb "$vrules_pid")"
    echo "$label: requests=$(field requests "$line") rps=$(field rps "$line") p99_ms=$(field p99_ms "$line") server_us_per_req=$(field server_us_per_req "$line") unexpected=$(field unexpected "$line") rss_before_kb=$before rss_after_kb=$after"
    echo "  RSS over the run (0..100 %, KiB): $(field rss_trace_kb "$line")"
    if grep -q -i -E "error|critical" "$work/$label.log"; then grep -i -E "error|critical" "$work/$label.log" | head -3; fi
    kill "$vrules_pid"; wait "$vrules_pid" 2>/dev/null || true
    vrules_pid=""
}
run cache "# the default cache"
run nocache "cache_size = 0"
