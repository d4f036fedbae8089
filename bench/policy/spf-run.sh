#!/usr/bin/env bash
# SPF policy benchmark: `vrules serve` checking SPF (bench/policy/spf.lua) beside Debian's
# postfix-policyd-spf-python (`policyd-spf`, pyspf), the daemon operators run for SPF today.
# Same run, same load generator (bench/policy/loadgen, 16 connections, one request at a time
# per connection as Postfix's smtpd processes ask, LOADGEN_IO as in run.sh), same DNS data: one Knot DNS serving
# bench/policy/spf-zones/ answers both. The whole run happens in a private network namespace
# (unshare -n -m): Knot listens on 127.0.0.1 port 53 there (policyd-spf's DNS library, pydns,
# reads only `nameserver` lines from /etc/resolv.conf and always uses port 53), a private
# /etc/resolv.conf names it, and nothing can leave the machine or disturb the host's services.
#
# Usage: bench/policy/spf-run.sh [REQUESTS] [POLICYD_REQUESTS]
#   REQUESTS          vrules requests per mix and cache setting (default 100000)
#   POLICYD_REQUESTS  policyd-spf requests per mix (default 20000; it is slow)
# Environment: VRULES_BIN (a release vrules; default: build it as run.sh does, into
#              .build-bench), CONNECTIONS (16), MIXES ("postfix fresh"), DOMAINS ("one
#              distinct"), WARMUP (vrules, 5000), ROUNDS (3), KEEP_WORK=1, LOADGEN_IO (as in
#              run.sh), TRANSPORT (unix: the default, each server on a UNIX-domain socket,
#              as Debian documents policyd-spf behind Postfix's spawn(8) with
#              `check_policy_service unix:private/policyd-spf`; tcp: each on a loopback port),
#              ZONE_ROW (1: the default; 0 leaves out the zone-file reference below),
#              LAYOUT (shared: the default, every process on every CPU; split: the server
#              measured on CPUs of its own, Knot and the load generator on the first CPU; below).
#
# Four servers, all listening for the whole run; each row (sender domains, mix) measures the
# four back to back, ROUNDS times, and the ratios are given per round and as their median:
# the machine's speed drifts from minute to minute, and runs seconds apart see the same speed.
#   vrules, cache on     the resolver's cache at its default size: after the first check every
#                        answer comes from memory (as in production, for a popular domain)
#   vrules, cache off    `cache_size = 0`: no answer is kept, so every check asks Knot (a
#                        question identical to one in flight still shares its answer), the fair
#                        comparison with pyspf, which keeps no cache between checks
#   vrules, zone         a reference, not a configuration to compare: every answer read from
#                        spf-zones/ in memory (`vrules serve --zone`), no network and no kept
#                        results, every check evaluated in full: what the server's request
#                        costs when DNS costs nothing, the bound of the rows that ask Knot
#   policyd-spf          HELO_reject = No_Check (vrules' spf.check(ctx) checks the MAIL FROM
#                        identity only; checking HELO too would cost pyspf extra queries),
#                        Mail_From_reject = Fail, TempError_Defer = True: the decisions of
#                        spf.lua (pyspf reads a REFUSED or SERVFAIL answer as no record).
# Each sender passes SPF through the `mx` mechanism (5 DNS questions per check: TXT of the
# domain, TXT of the include, MX, A of both MX hosts). Sender domains (DOMAINS): `one`, every
# sender in spf.example (a popular domain: 16 connections ask about it at once, and vrules
# merges identical questions in flight even without a cache); `distinct`, each transaction's
# sender in a domain of its own (a wildcard under spf.example), the include and MX hosts shared.
# CPU layout (LAYOUT): `shared` lets the scheduler put every process on every CPU, so each row
# measures the server together with what Knot and the load generator take of the same cores
# (about 12 µs of generator CPU per request, a third of what vrules' cached request costs);
# `split` gives both servers the same CPUs of their own (all but the first, with `taskset`: vrules
# then runs one event loop per CPU it has), Knot and the generator the first CPU, so each row
# measures the servers and not the harness, as on a machine where the clients are elsewhere.
# Each server must also reject a sender from an unauthorised client with 550 5.7.23, proof that
# it really checks; the script exits 1 when a check fails or a run had unexpected answers.
# bench/policy/README.md explains each choice and the columns.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
requests="${1:-100000}"
policyd_requests="${2:-20000}"
connections="${CONNECTIONS:-16}"
mixes="${MIXES:-postfix fresh}"
domain_sets="${DOMAINS:-one distinct}"
warmup="${WARMUP:-5000}"
rounds="${ROUNDS:-3}"
transport="${TRANSPORT:-unix}"
case "$transport" in unix|tcp) ;; *) echo "TRANSPORT: unix or tcp, not '$transport'" >&2; exit 2 ;; esac
layout="${LAYOUT:-shared}"
case "$layout" in shared|split) ;; *) echo "LAYOUT: shared or split, not '$layout'" >&2; exit 2 ;; esac
for mix in $mixes; do
    case "$mix" in postfix|fresh|noeom) ;; *) echo "MIXES: postfix, fresh or noeom, not '$mix'" >&2; exit 2 ;; esac
done
for set in $domain_sets; do
    case "$set" in one|distinct) ;; *) echo "DOMAINS: one or distinct, not '$set'" >&2; exit 2 ;; esac
done
for number in "$requests" "$policyd_requests" "$connections" "$warmup" "$rounds"; do
    [[ "$number" =~ ^[1-9][0-9]*$ ]] || { echo "not a positive count: '$number'" >&2; exit 2; }
done

# --- outside the namespace: packages and binaries, then re-run inside ----------------------
if [ -z "${SPF_BENCH_INSIDE:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "run as root (network namespace, bind mount, port 53)" >&2; exit 1; }
    command -v swift >/dev/null || { echo "missing swift" >&2; exit 1; }
    command -v python3 >/dev/null || { echo "missing python3" >&2; exit 1; }
    command -v unshare >/dev/null || { echo "missing unshare (util-linux)" >&2; exit 1; }
    missing=()
    [ -x /usr/sbin/knotd ] && [ -x /usr/sbin/knotc ] || missing+=(knot)
    [ -x /usr/bin/policyd-spf ] || missing+=(postfix-policyd-spf-python)
    command -v socat >/dev/null || missing+=(socat)
    command -v ip >/dev/null || missing+=(iproute2)
    [ "${#missing[@]}" -eq 0 ] || apt_install "${missing[@]}"
    if [ -z "${VRULES_BIN:-}" ]; then
        echo "building vrules (release; set VRULES_BIN to use a built one)..." >&2
        (cd "$root" && swift build -c release --static-swift-stdlib --product vrules --scratch-path .build-bench >&2)
        VRULES_BIN="$root/.build-bench/release/vrules"
    fi
    [ -x "$VRULES_BIN" ] || { echo "VRULES_BIN=$VRULES_BIN is not an executable" >&2; exit 1; }
    echo "building the load generator (release)..." >&2
    LOADGEN_BIN="$(build_loadgen)"
    export VRULES_BIN LOADGEN_BIN SPF_BENCH_INSIDE=1
    exec unshare --net --mount --propagation private "$0" "$@"
fi

# --- inside: a private network namespace with its own loopback -----------------------------
ip link set lo up
# Everything this script starts from here runs on the harness's CPUs (Knot, the load generator),
# except the servers, started below with `taskset -c "$server_cpus"`.
cpu_layout "$layout"
vrules="$VRULES_BIN"
loadgen="$LOADGEN_BIN"
work="$(mktemp -d /tmp/vrules-spf-bench.XXXXXX)"
chmod 755 "$work"
server_pids=()
knot_pid=""
cleanup() {
    for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -n "$knot_pid" ] && kill "$knot_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    if [ -n "${KEEP_WORK:-}" ]; then echo "work files kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Knot's CPU so far (user + system), in clock ticks: the rows that ask it share the cores with it.
knot_ticks() { awk '{ print $14 + $15 }' "/proc/$knot_pid/stat"; }
ticks_per_second="$(getconf CLK_TCK)"
# Queries Knot has answered so far (UDP and TCP, from its statistics module).
knot_queries() {
    /usr/sbin/knotc -c "$work/knot.conf" stats mod-stats.request-protocol \
        | awk -F' = ' '{ n += $2 } END { print n + 0 }'
}
failures=0
fail_check() { echo "CHECK FAILED: $*"; failures=$((failures + 1)); }

pass_ip=198.51.100.25     # mx1.mail.other.example, spf.example's first MX: passes through the `mx` mechanism
fail_ip=192.0.2.200       # in no mechanism: `-all`
domain=spf.example
# The sender domain of a DOMAINS choice, for the load generator's --sender-domain.
sender_domain() { if [ "$1" = distinct ]; then echo "{t}.$domain"; else echo "$domain"; fi; }
vrules_port=10040
policyd_port=10041
# Where a server listens (TRANSPORT), as `vrules serve --listen`, socat and the load generator
# name it. `target` holds the load generator's arguments for the server being measured.
listen_address() {   # port name -> vrules' --listen
    if [ "$transport" = unix ]; then echo "unix:$work/$2.sock"; else echo "127.0.0.1:$1"; fi
}
loadgen_target() {   # port name -> the load generator's --port/--unix arguments
    if [ "$transport" = unix ]; then echo "--unix $work/$2.sock"; else echo "--port $1"; fi
}
wait_target() {   # port name
    if [ "$transport" = tcp ]; then wait_port "$1"; return; fi
    for _ in $(seq 200); do
        [ -S "$work/$2.sock" ] && return 0
        sleep 0.05
    done
    echo "nothing listens on $work/$2.sock" >&2
    return 1
}

# --- Knot on 127.0.0.1:53 -----------------------------------------------------------------
cp "$here/spf-zones/spf.example.zone" "$here/spf-zones/other.example.zone" "$work/"
cat >"$work/knot.conf" <<CONF
server:
    rundir: "$work"
    listen: 127.0.0.1@53
control:
    listen: "$work/knot.sock"
database:
    storage: "$work"
mod-stats:
  - id: queries
template:
  - id: default
    global-module: mod-stats/queries
zone:
  - domain: spf.example
    file: "$work/spf.example.zone"
    zonefile-sync: -1
    journal-content: none
  - domain: other.example
    file: "$work/other.example.zone"
    zonefile-sync: -1
    journal-content: none
CONF
/usr/sbin/knotd -c "$work/knot.conf" >"$work/knot.log" 2>&1 &
knot_pid=$!
wait_port 53
# policyd-spf (pydns) reads the name server from /etc/resolv.conf: a private one, in this
# namespace only.
printf 'nameserver 127.0.0.1\n' >"$work/resolv.conf"
chmod 644 "$work/resolv.conf"
mount --bind "$work/resolv.conf" /etc/resolv.conf

# One run of the load generator: its key=value line plus the load average and Knot's queries.
run_load() {   # label mix domains requests pid accept...
    local label="$1" mix="$2" set="$3" senders count="$4" pid="$5"
    senders="$(sender_domain "$set")"
    shift 5
    local accept=() pattern before queries ticks output line
    for pattern in "$@"; do accept+=(--accept "$pattern"); done
    before="$(loadavg)"
    queries="$(knot_queries)"
    ticks="$(knot_ticks)"
    # A non-zero exit (unexpected answers, closed connections) is reported in the figures.
    # shellcheck disable=SC2086 # $target is two words, the path has no spaces (mktemp)
    output="$("$loadgen" $target --connections "$connections" --requests "$count" --mix "$mix" --io "${LOADGEN_IO:-epoll}" \
        --server-pid "$pid" --label "$label" --client-ip "$pass_ip" --client-name mx1.mail.other.example \
        --helo mx1.mail.other.example --sender-domain "$senders" --prime "${accept[@]}")" || true
    line="$(head -1 <<<"$output")"
    if grep -q '^first_unexpected_action=' <<<"$output"; then
        echo "$label ($mix, $set): first unexpected answer: $(sed -n 's/^first_unexpected_action=//p' <<<"$output")" >&2
    fi
    queries=$(( $(knot_queries) - queries ))
    ticks=$(( $(knot_ticks) - ticks ))
    local knot_us
    knot_us="$(awk -v t="$ticks" -v hz="$ticks_per_second" -v n="$count" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')"
    echo "$line domains=$set dns_queries=$queries knot_us_per_req=$knot_us load_before=${before// /,}"
}
# The first answer to one RCPT from CLIENT_IP of a sender in SENDER_DOMAIN (default spf.example).
first_answer() {   # client_ip [sender_domain]
    # shellcheck disable=SC2086
    "$loadgen" $target --connections 1 --requests 1 --mix fresh --client-ip "$1" \
        --client-name mx1.mail.other.example --helo mx1.mail.other.example --sender-domain "${2:-$domain}" \
        --accept 'no answer is expected: print the first' | sed -n 's/^first_unexpected_action=//p' || true
}
# Checks that the server passes the passing client (with the server's own header), rejects the
# unauthorised one, and shows what it answers for a sender whose domain's name server refuses
# (Knot serves no unserved.example: REFUSED, an SPF temperror per RFC 7208 §4.4), checked
# against DEFER_PREFIX when one is given.
check_decisions() {   # name pass_prefix [defer_prefix]
    local name="$1" pass_prefix="$2" defer_prefix="${3:-}" answer
    answer="$(first_answer "$pass_ip")"
    echo "$name: client $pass_ip, sender @$domain -> $answer"
    [[ "$answer" == "$pass_prefix"* ]] || fail_check "$name did not pass $pass_ip with '$pass_prefix...'"
    answer="$(first_answer "$fail_ip")"
    echo "$name: client $fail_ip, sender @$domain -> $answer"
    [[ "$answer" == "550 5.7.23 "* ]] || fail_check "$name did not reject $fail_ip with 550 5.7.23"
    answer="$(first_answer "$pass_ip" unserved.example)"
    echo "$name: client $pass_ip, sender @unserved.example -> $answer"
    if [ -n "$defer_prefix" ]; then
        [[ "$answer" == "$defer_prefix"* ]] || fail_check "$name did not defer a temperror with '$defer_prefix...'"
    fi
}

echo "== SPF policy benchmark: $(cpu_count "$allowed_cpus") cores, $(date -u +%Y-%m-%dT%H:%MZ), load average $(loadavg), generator --io ${LOADGEN_IO:-epoll}"
if [ "$transport" = unix ]; then over="UNIX-domain sockets"; else over="loopback TCP"; fi
echo "   $connections connections over $over (TRANSPORT=$transport; private network namespace); Knot DNS on 127.0.0.1:53"
if [ "$layout" = split ]; then
    echo "   LAYOUT=split: the servers on CPU(s) $server_cpus, Knot and the load generator on CPU $harness_cpus"
else
    echo "   LAYOUT=shared: every process on every CPU ($allowed_cpus)"
fi
echo "   serving spf.example and other.example to both servers. Client $pass_ip,"
echo "   HELO mx1.mail.other.example, sender bounce-N-M@<domain> (one per transaction): SPF pass"
echo "   through 'mx' after ip4 and include (5 DNS questions per check). Sender domains: 'one' ="
echo "   all in spf.example; 'distinct' = one domain per transaction (t3-1f.spf.example, a wildcard)."
echo "   Mixes: 'postfix' = 4 RCPT requests (2 recipients x 2 restriction lists) + END-OF-MESSAGE"
echo "   per transaction, one SPF check per transaction; 'fresh' = RCPT + END-OF-MESSAGE, one"
echo "   check per 2 requests. Expected answers: the header once per transaction"
echo "   ('PREPEND Received-SPF: pass' / 'prepend Received-SPF: Pass'), then DUNNO / dunno."

# --- the servers, each on its own port, all up for the whole run ----------------------
# An idle server costs nothing; the measurements of one row follow each other within seconds,
# so a change in the machine's speed (it drifts by a third from minute to minute on a shared
# 2-core machine) falls on all alike, and ROUNDS rounds give a median.
declare -A lines targets pids
vrules_settings="on off"
[ "${ZONE_ROW:-1}" = 1 ] && vrules_settings="on off zone"
for cache in $vrules_settings; do
    case "$cache" in on) port=$vrules_port ;; off) port=$((vrules_port + 2)) ;; zone) port=$((vrules_port + 4)) ;; esac
    if [ "$cache" = zone ]; then
        dns=(--zone "$here/spf-zones/spf.example.zone" --zone "$here/spf-zones/other.example.zone")
    else
        {
            printf '[server.dns]\ntype = "custom"\nservers = ["127.0.0.1:53"]\n'
            [ "$cache" = off ] && printf '\n[server.dns.options]\ncache_size = 0\n'
        } >"$work/vrules-cache-$cache.toml"
        dns=(--config "$work/vrules-cache-$cache.toml")
    fi
    targets["vrules,$cache"]="$(loadgen_target "$port" "vrules-cache-$cache")"
    taskset -c "$server_cpus" "$vrules" serve "${dns[@]}" --rules "$here/spf.lua" \
        --listen "$(listen_address "$port" "vrules-cache-$cache")" --log-level warning >"$work/vrules-cache-$cache.log" 2>&1 &
    pids["vrules,$cache"]=$!
    server_pids+=("$!")
    target=${targets["vrules,$cache"]}
    wait_target "$port" "vrules-cache-$cache"
    # The zone files serve no unserved.example: NXDOMAIN, an SPF none, not a temperror.
    if [ "$cache" = zone ]; then
        check_decisions "vrules (zone files)" "PREPEND Received-SPF: pass "
    else
        check_decisions "vrules (cache $cache)" "PREPEND Received-SPF: pass " "451 4.7.24 "
    fi
    # shellcheck disable=SC2086
    "$loadgen" $target --connections "$connections" --requests "$warmup" --mix fresh \
        --client-ip "$pass_ip" --sender-domain "$domain" >/dev/null || true
done
cat >"$work/policyd-spf.conf" <<'CONF'
debugLevel = 0
TestOnly = 1
HELO_reject = No_Check
Mail_From_reject = Fail
PermError_reject = False
TempError_Defer = True
skip_addresses = 127.0.0.0/8,::ffff:127.0.0.0/104,::1
CONF
chmod 644 "$work/policyd-spf.conf"
# One policyd-spf process per connection, its stdin and stdout the connection itself (socat
# forks, then execs it with `nofork`: no relay process in between), as Postfix's spawn(8) runs it.
targets["policyd-spf,none"]="$(loadgen_target "$policyd_port" policyd-spf)"
if [ "$transport" = unix ]; then listener="UNIX-LISTEN:$work/policyd-spf.sock,fork"; else
    listener="TCP-LISTEN:$policyd_port,bind=127.0.0.1,reuseaddr,fork"; fi
taskset -c "$server_cpus" socat "$listener" "EXEC:/usr/bin/policyd-spf $work/policyd-spf.conf,nofork" \
    2>"$work/socat.log" &
pids["policyd-spf,none"]=$!
server_pids+=("$!")
target=${targets["policyd-spf,none"]}
wait_target "$policyd_port" policyd-spf
check_decisions "policyd-spf" "prepend Received-SPF: Pass "
echo "   (pyspf over pydns, as Debian ships it, reads a REFUSED or SERVFAIL answer as no record: 'none',"
echo "   where RFC 7208 says temperror; its TempError_Defer acts on timeouts and network errors only)"

# --- rounds: each row's servers back to back ----------------------------------------
for round in $(seq "$rounds"); do
    for set in $domain_sets; do
        for mix in $mixes; do
            for server in $(printf 'vrules,%s ' $vrules_settings) policyd-spf,none; do
                target=${targets[$server]}
                if [ "${server%%,*}" = vrules ]; then
                    line="$(run_load vrules "$mix" "$set" "$requests" "${pids[$server]}" 'PREPEND Received-SPF: pass *' DUNNO)"
                else
                    line="$(run_load policyd-spf "$mix" "$set" "$policyd_requests" "${pids[$server]}" \
                        'prepend Received-SPF: Pass *' dunno)"
                fi
                lines["$server,$set,$mix,$round"]="$line round=$round"
                echo "$line round=$round"
            done
        done
    done
done
for cache in $vrules_settings; do
    if grep -q -i -E "error|critical" "$work/vrules-cache-$cache.log"; then
        echo "vrules (cache $cache) logged errors:" >&2
        grep -i -E "error|critical" "$work/vrules-cache-$cache.log" | head -5 >&2
    fi
done

# --- table --------------------------------------------------------------------------------
row() {   # server cache line
    local line="$3" n q checks
    n="$(field requests "$line")"
    q="$(field dns_queries "$line")"
    # One check per transaction: the measured ones (one header each) and one per connection
    # for --prime, which Knot's counter includes.
    checks=$(( $(field accepted "$line" | cut -d/ -f1) + connections ))
    printf '| %-11s | %-5s | %-8s | %-7s | %5s | %8s | %7s | %6s | %6s | %7s | %6s | %6s | %5s | %11s | %3s | %4s |\n' "$1" "$2" \
        "$(field domains "$line")" "$(field mix "$line")" "$(field round "$line")" "$n" "$(field rps "$line")" \
        "$(field p50_ms "$line")" "$(field p99_ms "$line")" \
        "$(field server_us_per_req "$line")" "$(field knot_us_per_req "$line")" "$(field gen_us_per_req "$line")" \
        "$(awk -v q="$q" -v c="$checks" 'BEGIN { printf "%.2f", q / c }')" \
        "$(field accepted "$line")" "$(field unexpected "$line")" "$(field load_before "$line" | cut -d, -f1)"
    [ "$(field unexpected "$line")" = 0 ] && [ "$(field closed "$line")" = 0 ] \
        || fail_check "$1 (cache $2, $(field domains "$line"), $(field mix "$line")): $(field unexpected "$line") unexpected answers, $(field closed "$line") connections closed"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else printf "n/a" }'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "| server | cache | sender domains | mix | round | requests | req/s | p50 ms | p99 ms | server CPU µs/req | Knot CPU µs/req | generator CPU µs/req | DNS queries/check | headers/DUNNO answers | unexpected | load avg (1 min) before |"
echo "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for set in $domain_sets; do
    for mix in $mixes; do
        for round in $(seq "$rounds"); do
            for cache in $vrules_settings; do row vrules "$cache" "${lines["vrules,$cache,$set,$mix,$round"]}"; done
            row policyd-spf none "${lines["policyd-spf,none,$set,$mix,$round"]}"
        done
    done
done
echo
echo "vrules / policyd-spf, each round's runs back to back (median of $rounds rounds; then each round):"
for set in $domain_sets; do
  for mix in $mixes; do
    for cache in $vrules_settings; do
        rps="" cpu="" p99=""
        for round in $(seq "$rounds"); do
            p="${lines["policyd-spf,none,$set,$mix,$round"]}"
            v="${lines["vrules,$cache,$set,$mix,$round"]}"
            rps="$rps $(ratio "$(field rps "$v")" "$(field rps "$p")")"
            cpu="$cpu $(ratio "$(field server_us_per_req "$p")" "$(field server_us_per_req "$v")")"
            p99="$p99 $(field p99_ms "$v")/$(field p99_ms "$p")"
        done
        setting="cache $cache"
        [ "$cache" = zone ] && setting="answers from zone files (no network: a reference)"
        echo "$set domain(s), mix $mix, $setting: $(median <<<"$rps")x the requests/s (${rps# })," \
            "$(median <<<"$cpu")x less server CPU per request (${cpu# }); p99 ms vrules/policyd-spf:${p99}"
    done
  done
done
# What the rows on the network resolver could reach on this machine if every answer cost vrules nothing.
# Shared layout: a request costs the server's CPU, Knot's and the load generator's, and a
# saturated machine serves about cores / (their sum) requests a second. Split layout: the
# server's CPUs serve about their number / the server's CPU per request. Putting the zone-file
# row's server CPU (the same request, every answer in memory) in place of the row's own gives
# the requests/s of a DNS path that costs the server nothing, Knot's and the generator's part
# unchanged: arithmetic on the measured figures, not a measurement.
if [ "${ZONE_ROW:-1}" = 1 ]; then
    cores="$(cpu_count "$server_cpus")"
    if [ "$layout" = split ]; then
        harness=0 counted="the zone-file row's server CPU, or the row's own if lower"
    else
        harness=1 counted="the zone-file row's server CPU, or the row's own if lower, + the row's Knot and generator CPU"
    fi
    echo
    echo "CPU per request (median of $rounds rounds, µs: server / Knot / load generator), and for each row on the network"
    echo "resolver the bound if its DNS path cost the server nothing ($cores CPU(s) / ($counted),"
    echo "against policyd-spf's requests/s in the same round):"
    for set in $domain_sets; do
      for mix in $mixes; do
        for server in vrules,on vrules,off vrules,zone policyd-spf,none; do
            server_cpu="" knot_cpu="" gen_cpu="" bound=""
            for round in $(seq "$rounds"); do
                v="${lines["$server,$set,$mix,$round"]}"
                z="${lines["vrules,zone,$set,$mix,$round"]}"
                p="${lines["policyd-spf,none,$set,$mix,$round"]}"
                server_cpu="$server_cpu $(field server_us_per_req "$v")"
                knot_cpu="$knot_cpu $(field knot_us_per_req "$v")"
                gen_cpu="$gen_cpu $(field gen_us_per_req "$v")"
                # A row cheaper than the zone-file row (the cache keeps whole results) keeps its own CPU.
                bound="$bound $(awk -v c="$cores" -v z="$(field server_us_per_req "$z")" -v s="$(field server_us_per_req "$v")" \
                    -v k="$(field knot_us_per_req "$v")" -v g="$(field gen_us_per_req "$v")" -v p="$(field rps "$p")" -v h="$harness" \
                    'BEGIN { if (s < z) z = s; if (p > 0) printf "%.1f", c * 1e6 / (z + h * (k + g)) / p; else printf "n/a" }')"
            done
            text="$set domain(s), mix $mix, ${server/,/ cache }: $(median <<<"$server_cpu") / $(median <<<"$knot_cpu") / $(median <<<"$gen_cpu")"
            case "$server" in
                vrules,on|vrules,off) text="$text; with a DNS path that cost nothing: $(median <<<"$bound")x (${bound# })" ;;
            esac
            echo "${text/ cache none/}"
        done
      done
    done
fi
echo "load average at the end: $(loadavg)"
if [ "$failures" -gt 0 ]; then
    echo "$failures check(s) failed: the figures above are not valid" >&2
    exit 1
fi
