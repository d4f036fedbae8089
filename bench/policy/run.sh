#!/usr/bin/env bash
# Policy server benchmark: `vrules serve` (default policy rules/main.lua, warm zone DNS from
# examples/example.zone) beside postfwd (Debian's postfwd2) doing comparable rule work, both
# driven over loopback by the same load generator (bench/policy/loadgen, 16 connections, one
# request at a time per connection, as Postfix's smtpd processes ask; one generator thread
# waits on all of them with epoll unless LOADGEN_IO=threads).
#
# Usage: bench/policy/run.sh [REQUESTS] [POSTFWD_REQUESTS]
#   REQUESTS          vrules requests in the Postfix mix; vrules' RSS is read before and after
#                     them (default 1000000)
#   POSTFWD_REQUESTS  postfwd requests in the Postfix mix (default 50000; postfwd is slow)
# Environment: CONNECTIONS (16), FRESH_REQUESTS (vrules, 100000), POSTFWD_FRESH_REQUESTS (20000),
#              NOEOM_REQUESTS (vrules without END-OF-MESSAGE, 40000; 0 skips), WARMUP (20000),
#              SKIP_POSTFWD=1, KEEP_WORK=1, VRULES_BIN (a release vrules to use instead of
#              building one), LOADGEN_IO (epoll, or threads: a generator thread per connection).
# Mixes (see loadgen/Sources/PolicyLoad/main.swift): postfix = 4 RCPT requests (2 recipients x
# 2 restriction lists, identical pairs) + END-OF-MESSAGE per transaction; fresh = RCPT +
# END-OF-MESSAGE, all four stages' rules run on every RCPT; noeom = postfix without
# END-OF-MESSAGE, so vrules holds every transaction until its timeout (600 s) or bound (50,000).
#
# Needs swift, python3 (free port), and the Debian packages postfwd and knot (installed with
# apt-get when missing). postfwd's DNS items are answered by a Knot DNS on a loopback port
# serving the same example zone (plus a local DNSBL/RHSBL); postfwd2 runs in a private mount
# namespace (unshare -m) where /etc/resolv.conf names that Knot, so nothing leaves the machine
# and the host's resolver configuration is untouched.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
requests="${1:-1000000}"
postfwd_requests="${2:-50000}"
connections="${CONNECTIONS:-16}"
fresh_requests="${FRESH_REQUESTS:-100000}"
postfwd_fresh_requests="${POSTFWD_FRESH_REQUESTS:-20000}"
warmup="${WARMUP:-20000}"
noeom_requests="${NOEOM_REQUESTS:-40000}"

command -v swift >/dev/null || { echo "missing swift" >&2; exit 1; }
command -v python3 >/dev/null || { echo "missing python3" >&2; exit 1; }
if [ -z "${SKIP_POSTFWD:-}" ]; then
    [ -x /usr/sbin/postfwd2 ] || apt_install postfwd
    [ -x /usr/sbin/knotd ] || apt_install knot
    command -v unshare >/dev/null || { echo "missing unshare (util-linux)" >&2; exit 1; }
fi

work="$(mktemp -d /tmp/vrules-policy-bench.XXXXXX)"
chmod 755 "$work"
vrules_pid=""
knot_pid=""
postfwd_pid=""
cleanup() {
    [ -n "$vrules_pid" ] && kill "$vrules_pid" 2>/dev/null || true
    if [ -n "$postfwd_pid" ]; then
        kill "$postfwd_pid" 2>/dev/null || true   # the master takes its cache and policy daemons down
    fi
    [ -n "$knot_pid" ] && kill "$knot_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    if [ -n "${KEEP_WORK:-}" ]; then echo "work files kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# RSS of a process and all its descendants (postfwd: master, cache daemon, policy daemon, children).
tree_rss_kb() {
    local total=0 pid
    for pid in $(ps -e -o pid=,ppid= | awk -v root="$1" '
        { parent[$1] = $2 } END { for (p in parent) { q = p; while (q > 1) { if (q == root) { print p; break } q = parent[q] } } }'); do
        total=$((total + $(rss_kb "$pid" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

if [ -n "${VRULES_BIN:-}" ]; then
    vrules="$VRULES_BIN"
else
    echo "building vrules (release)..." >&2
    (cd "$root" && swift build -c release --static-swift-stdlib --product vrules --scratch-path .build-bench >&2)
    vrules="$root/.build-bench/release/vrules"
fi
echo "building the load generator (release)..." >&2
loadgen="$(build_loadgen)"

run_load() {   # label mix requests port pid [extra loadgen args]
    local label="$1" mix="$2" count="$3" port="$4" pid="$5"
    shift 5
    local before after line
    before="$(loadavg)"
    # A non-zero exit (unexpected answers, closed connections) is reported in the figures.
    line="$("$loadgen" --port "$port" --connections "$connections" --requests "$count" --mix "$mix" --io "${LOADGEN_IO:-epoll}" \
        --server-pid "$pid" --label "$label" "$@" | head -1)" || true
    after="$(loadavg)"
    echo "$line load_before=${before// /,} load_after=${after// /,}"
}

echo "== policy benchmark: $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), load average $(loadavg), generator --io ${LOADGEN_IO:-epoll}"
echo "   $connections connections over loopback; mix 'postfix': 4 RCPT requests per transaction"
echo "   (2 recipients x 2 restriction lists, identical pairs; rules run for the first of each pair)"
echo "   then END-OF-MESSAGE; 'fresh': RCPT (connect+helo+mail+rcpt rules) then END-OF-MESSAGE;"
echo "   'noeom': 'postfix' without END-OF-MESSAGE."
echo "   client 192.0.2.10 (mail.good.example, iprev pass), sender *@good.example, answers expected DUNNO (or PREPEND with a header of the default policy)."

# --- vrules -------------------------------------------------------------------------------
vport="$(free_port)"
(cd "$root" && exec "$vrules" serve --zone examples/example.zone --rules rules/main.lua \
    --listen "127.0.0.1:$vport" --log-level warning >"$work/vrules.log" 2>&1) &
vrules_pid=$!
wait_port "$vport"
# The subshell execs vrules, so $vrules_pid is the server itself.
"$loadgen" --port "$vport" --connections "$connections" --requests "$warmup" --mix fresh >/dev/null || true
v_rss_before="$(rss_kb "$vrules_pid")"
v_mix="$(run_load vrules postfix "$requests" "$vport" "$vrules_pid")"
v_rss_after="$(rss_kb "$vrules_pid")"
echo "$v_mix rss_before_kb=$v_rss_before rss_after_kb=$v_rss_after"
v_fresh="$(run_load vrules fresh "$fresh_requests" "$vport" "$vrules_pid")"
v_rss_end="$(rss_kb "$vrules_pid")"
echo "$v_fresh rss_after_kb=$v_rss_end"
v_noeom=""
if [ "$noeom_requests" -gt 0 ]; then
    # Transactions that never see END-OF-MESSAGE stay in memory (until 600 s or 50,000 of them).
    v_noeom_before="$(rss_kb "$vrules_pid")"
    v_noeom="$(run_load vrules noeom "$noeom_requests" "$vport" "$vrules_pid")"
    v_noeom_after="$(rss_kb "$vrules_pid")"
    echo "$v_noeom rss_before_kb=$v_noeom_before rss_after_kb=$v_noeom_after"
fi
if grep -q -i -E "error|critical" "$work/vrules.log"; then
    echo "vrules logged errors:" >&2
    grep -i -E "error|critical" "$work/vrules.log" | head -5 >&2
fi
kill "$vrules_pid" 2>/dev/null || true
wait "$vrules_pid" 2>/dev/null || true
vrules_pid=""

# --- postfwd ------------------------------------------------------------------------------
if [ -z "${SKIP_POSTFWD:-}" ]; then
    kport="$(free_port)"
    # The example zone (the part under example.) plus a local DNSBL and RHSBL, for Knot.
    sed -n '1,/^\$ORIGIN 2\.0\.192/p' "$root/examples/example.zone" | grep -v '^\$ORIGIN 2\.0\.192' >"$work/example.zone"
    cat >>"$work/example.zone" <<'ZONE'
; Local DNSBL (bl.example) and RHSBL (dbl.example) for postfwd: 192.0.2.66 and liar.example listed.
66.2.0.192.bl     IN A 127.0.0.2
liar.example.dbl  IN A 127.0.0.2
ZONE
    knot_config "$work" "$kport" "example=$work/example.zone"
    /usr/sbin/knotd -c "$work/knot.conf" >"$work/knot.log" 2>&1 &
    knot_pid=$!
    wait_port "$kport"
    printf 'nameserver 127.0.0.1\noptions port:%s\n' "$kport" >"$work/resolv.conf"
    cp "$here/postfwd.cf" "$work/postfwd.cf"
    chmod 644 "$work/resolv.conf" "$work/postfwd.cf"
    mkdir "$work/postfwd"
    chown nobody:nogroup "$work/postfwd"
    pport="$(free_port)"
    # Debian's default arguments (/etc/default/postfwd: --cache=600 --cache-rdomain-only
    # --cache-no-size), no logging (--perfmon; vrules logs only warnings).
    unshare -m sh -c "mount --bind '$work/resolv.conf' /etc/resolv.conf && exec /usr/sbin/postfwd2 -d \
        -f '$work/postfwd.cf' -i 127.0.0.1 -p $pport -u nobody -g nogroup \
        --pidfile '$work/postfwd/master.pid' --cache_port '$work/postfwd/cache.socket' \
        --cache=600 --cache-rdomain-only --cache-no-size --perfmon" 2>&1 | grep -v "Redundant argument" >&2 || true
    wait_port "$pport"
    postfwd_pid="$(cat "$work/postfwd/master.pid")"
    "$loadgen" --port "$pport" --connections "$connections" --requests 5000 --mix fresh >/dev/null || true
    p_rss_before="$(tree_rss_kb "$postfwd_pid")"
    p_mix="$(run_load postfwd postfix "$postfwd_requests" "$pport" "$postfwd_pid")"
    p_rss_after="$(tree_rss_kb "$postfwd_pid")"
    echo "$p_mix rss_before_kb=$p_rss_before rss_after_kb=$p_rss_after"
    p_fresh="$(run_load postfwd fresh "$postfwd_fresh_requests" "$pport" "$postfwd_pid")"
    echo "$p_fresh rss_after_kb=$(tree_rss_kb "$postfwd_pid")"
    # A listed client must be refused: proof that postfwd really asks its DNS.
    check="$("$loadgen" --port "$pport" --connections 1 --requests 1 --mix fresh --client-ip 192.0.2.66 \
        --client-name liar.example --helo liar.example --expect x | sed -n 's/^first_unexpected_action=//p' || true)"
    echo "postfwd check: client 192.0.2.66 -> $check"
fi

# --- table --------------------------------------------------------------------------------
row() {   # name mixline
    printf '| %-7s | %-7s | %9s | %9s | %7s | %7s | %7s | %6s | %6s | %5s | %s |\n' "$1" "$(field mix "$2")" \
        "$(field requests "$2")" "$(field rps "$2")" "$(field p50_ms "$2")" "$(field p99_ms "$2")" \
        "$(field rules_p99_ms "$2")" "$(field server_us_per_req "$2")" "$(field gen_us_per_req "$2")" \
        "$(field unexpected "$2")" "$(field load_before "$2" | cut -d, -f1)"
}
echo
echo "| server  | mix     |  requests |     req/s | p50 ms  | p99 ms  | p99 ms, rule-running requests | server CPU µs/req | generator CPU µs/req | unexpected answers | load avg (1 min) before |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
row vrules "$v_mix"
row vrules "$v_fresh"
[ -n "$v_noeom" ] && row vrules "$v_noeom"
if [ -z "${SKIP_POSTFWD:-}" ]; then
    row postfwd "$p_mix"
    row postfwd "$p_fresh"
fi
echo
echo "vrules RSS: $((v_rss_before / 1024)) MiB before, $((v_rss_after / 1024)) MiB after $(field requests "$v_mix") requests of the postfix mix ($((v_rss_end / 1024)) MiB after the fresh run too)"
echo "vrules RSS over the postfix run (0..100 %, KiB): $(field rss_trace_kb "$v_mix")"
if [ -n "$v_noeom" ]; then
    txns=$(( $(field requests "$v_noeom") / 4 ))
    echo "vrules RSS without END-OF-MESSAGE: $((v_noeom_before / 1024)) MiB -> $((v_noeom_after / 1024)) MiB over $txns transactions held, $(( (v_noeom_after - v_noeom_before) * 1024 / (txns > 0 ? txns : 1) )) bytes per held transaction"
fi
if [ -z "${SKIP_POSTFWD:-}" ]; then
    echo "postfwd RSS (all its processes): $((p_rss_before / 1024)) MiB before, $((p_rss_after / 1024)) MiB after $(field requests "$p_mix") requests"
fi
