#!/usr/bin/env bash
# Instructions per request of one or more builds of `vrules serve`, counted by valgrind's
# callgrind on the same load (the default policy on warm zone DNS, as in run.sh, or SPF as in
# ab-run.sh). On this
# machine the time per request drifts by tens of percent from minute to minute; the count
# of user-space instructions does not (two runs of one build agree to about 0.5%), so a
# change of a few percent shows here when ab-run.sh cannot tell it from the drift. It says
# nothing about the kernel's share (the socket calls), cache misses or lock waits: confirm
# a change in time with ab-run.sh.
#
# Usage: bench/policy/count-run.sh BIN [BIN ...]
#   BIN  release builds of vrules (each is copied without its debug sections: valgrind
#        3.19, Debian 12's, cannot read the DWARF 5 that Swift writes)
# Environment: REQUESTS (5000, counted after 3000 not counted), CONNECTIONS (16), MIX (postfix),
#              SPF and SPF_DNS (as in ab-run.sh: unset, the default policy; `one` or `distinct`,
#              bench/policy/spf.lua with the zone files (`zone`) or a Knot DNS started here,
#              asked with the cache (`on`, the default) or without (`off`)). Knot's own
#              instructions are not counted. KEEP (a directory): each build's callgrind
#              output is kept there as callgrind-NAME.out, for callgrind_annotate.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
[ $# -ge 1 ] || { sed -n '2,19p' "$0" >&2; exit 2; }
requests="${REQUESTS:-5000}"
connections="${CONNECTIONS:-16}"
mix="${MIX:-postfix}"
spf="${SPF:-}"
spf_dns="${SPF_DNS:-on}"
case "$spf" in ""|one|distinct) ;; *) echo "SPF: one or distinct, not '$spf'" >&2; exit 2 ;; esac
case "$spf_dns" in on|off|zone) ;; *) echo "SPF_DNS: on, off or zone, not '$spf_dns'" >&2; exit 2 ;; esac

command -v valgrind >/dev/null || apt_install valgrind
loadgen="$(build_loadgen)"
work="$(mktemp -d)"
server=""
pids=()
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

choose_workload "$work" "$spf" "$spf_dns"
echo "== instructions per request: $requests requests ($mix mix), $connections connections, $workload, $(date -u +%Y-%m-%dT%H:%MZ)"
for bin in "$@"; do
    strip --strip-debug -o "$work/vrules" "$bin"
    port="$(free_port)"
    # Instrumentation off until the warm-up is over; the counters are dumped after the
    # counted requests, before the server stops.
    (cd "$root" && exec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/callgrind.out" \
        "$work/vrules" serve "${serve[@]}" \
        --listen "127.0.0.1:$port" --log-level warning >"$work/serve.log" 2>&1) &
    server=$!
    for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    "$loadgen" --port "$port" --connections "$connections" --requests 3000 --mix fresh "${load[@]}" >/dev/null
    callgrind_control -i on "$server" >/dev/null 2>&1
    line="$("$loadgen" --port "$port" --connections "$connections" --requests "$requests" --mix "$mix" "${load[@]}" | head -1)"
    callgrind_control -i off "$server" >/dev/null 2>&1
    callgrind_control -d "$server" >/dev/null 2>&1
    [ "$(field unexpected "$line")" = 0 ] || { echo "unexpected answers from $bin: $line" >&2; exit 1; }
    kill "$server"; wait "$server" 2>/dev/null || true; server=""
    total="$(awk '/^totals:/ { print $2; exit }' "$work/callgrind.out.1")"
    echo "$bin: $((total / requests)) instructions per request"
    [ -n "${KEEP:-}" ] && cp "$work/callgrind.out.1" "$KEEP/callgrind-$(basename "$bin").out"
    rm -f "$work"/callgrind.out*
done
