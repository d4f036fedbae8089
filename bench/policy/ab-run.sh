#!/usr/bin/env bash
# Two builds of `vrules serve` compared on this noisy machine: both serve at once (the default
# policy on warm zone DNS, as in run.sh), and the load generator alternates between them in
# chunks, so that the machine's drift from minute to minute falls on both alike. Prints each
# chunk and, per build, the total requests/s and server CPU per request over all its chunks
# (and that CPU's split between user space and the kernel).
#
# The server started second runs slower here: the same binary on both sides came out at
# 0.80-0.99x the requests/s when started second (11-29), whichever side it was. So the servers are started
# BEFORE first for the first half of the rounds, then both are restarted, AFTER first, for
# the second half; the ratio of each half is printed beside the total, which cancels it.
#
# Usage: bench/policy/ab-run.sh BEFORE_BIN AFTER_BIN [ROUNDS] [REQUESTS]
#   BEFORE_BIN, AFTER_BIN  release builds of vrules
#   ROUNDS                 chunks per build (default 10, at least 2; the order alternates
#                          each round)
#   REQUESTS               requests per chunk, Postfix mix (default 30000)
# Environment: CONNECTIONS (16), MIX (postfix), SPF (unset: the default policy; `one` or
#              `distinct`: bench/policy/spf.lua on spf-run.sh's workload, one sender domain or
#              one per transaction), SPF_DNS (with SPF: `on`, the network resolver with its
#              cache, asking a Knot DNS this script starts on a loopback port; `off`, the same
#              with cache_size = 0; `zone`, the zone files in memory), LAYOUT (shared: every
#              process on every CPU; split: both servers on CPUs of their own, Knot and the load
#              generator on the first, as in spf-run.sh).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
[ $# -ge 2 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
before_bin="$1"
after_bin="$2"
rounds="${3:-10}"
requests="${4:-30000}"
connections="${CONNECTIONS:-16}"
mix="${MIX:-postfix}"
spf="${SPF:-}"
spf_dns="${SPF_DNS:-on}"
case "$spf" in ""|one|distinct) ;; *) echo "SPF: one or distinct, not '$spf'" >&2; exit 2 ;; esac
case "$spf_dns" in on|off|zone) ;; *) echo "SPF_DNS: on, off or zone, not '$spf_dns'" >&2; exit 2 ;; esac

loadgen="$(build_loadgen)"
# After the build, which should not be pinned to the harness's one CPU.
cpu_layout "${LAYOUT:-shared}"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# What each server serves, and what the load generator sends and expects.
choose_workload "$work" "$spf" "$spf_dns"

declare -A port pid seconds cpu user system
# Starts both servers in the order given (stopping any running), each warmed with 10,000
# requests before the next starts.
start_servers() {
    local side bin
    for side in before after; do
        [ -n "${pid[$side]:-}" ] || continue
        kill "${pid[$side]}" 2>/dev/null || true
        wait "${pid[$side]}" 2>/dev/null || true
    done
    for side in "$@"; do
        bin="${before_bin}"
        [ "$side" = after ] && bin="$after_bin"
        port[$side]="$(free_port)"
        (cd "$root" && exec taskset -c "$server_cpus" "$bin" serve "${serve[@]}" \
            --listen "127.0.0.1:${port[$side]}" --log-level warning >"$work/$side.log" 2>&1) &
        pid[$side]=$!
        pids+=("${pid[$side]}")
        wait_port "${port[$side]}"
        "$loadgen" --port "${port[$side]}" --connections "$connections" --requests 10000 --mix fresh "${load[@]}" >/dev/null || true
    done
}
for key in before after before,1 after,1 before,2 after,2; do
    seconds[$key]=0
    cpu[$key]=0
done
for side in before after; do
    user[$side]=0
    system[$side]=0
done
[ "$rounds" -ge 2 ] || { echo "ROUNDS: at least 2 (one per start order)" >&2; exit 2; }
start_servers before after
half=1

echo "== A/B: $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), load average $(loadavg); $rounds x $requests requests ($mix mix) each; $workload"
echo "rounds 1-$((rounds / 2)): before started first"
for round in $(seq "$rounds"); do
    if [ "$round" -eq $((rounds / 2 + 1)) ]; then
        start_servers after before
        half=2
        echo "rounds $round-$rounds: both restarted, after started first"
    fi
    order="before after"
    [ $((round % 2)) -eq 0 ] && order="after before"
    for side in $order; do
        line="$("$loadgen" --port "${port[$side]}" --connections "$connections" --requests "$requests" \
            --mix "$mix" --server-pid "${pid[$side]}" --label "$side" "${load[@]}" | head -1)"
        [ "$(field unexpected "$line")" = 0 ] || { echo "unexpected answers from $side: $line" >&2; exit 1; }
        echo "round $round $side rps=$(field rps "$line") p99_ms=$(field p99_ms "$line") server_us_per_req=$(field server_us_per_req "$line")"
        for key in "$side" "$side,$half"; do
            seconds[$key]="$(python3 -c "print(${seconds[$key]} + $(field seconds "$line"))")"
            cpu[$key]="$(python3 -c "print(${cpu[$key]} + $(field server_cpu_s "$line"))")"
        done
        # Per request in the chunk, weighted by its requests (every chunk has as many).
        user[$side]="$(python3 -c "print(${user[$side]} + $(field server_user_us_per_req "$line"))")"
        system[$side]="$(python3 -c "print(${system[$side]} + $(field server_sys_us_per_req "$line"))")"
    done
done
total=$((rounds * requests))
for side in before after; do
    python3 -c "print('$side: %.0f requests/s, %.1f µs server CPU per request (user %.1f, kernel %.1f)' % ($total / ${seconds[$side]}, ${cpu[$side]} * 1e6 / $total, ${user[$side]} / $rounds, ${system[$side]} / $rounds))"
done
for half in 1 2; do
    first=before
    [ "$half" = 2 ] && first=after
    python3 -c "print('  rounds with $first started first: after / before %.3f x the requests/s, %.3f x the CPU per request' % (${seconds[before,$half]} / ${seconds[after,$half]}, ${cpu[after,$half]} / ${cpu[before,$half]}))"
done
python3 -c "print('after / before: %.3f x the requests/s, %.3f x the CPU per request' % (${seconds[before]} / ${seconds[after]}, ${cpu[after]} / ${cpu[before]}))"
echo "load average at the end: $(loadavg)"
