# Helpers shared by the policy benchmarks (run.sh, spf-run.sh, memory-run.sh, ab-run.sh,
# count-run.sh): sourced, not run.

apt_install() {
    echo "installing $* (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2 \
        || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2; }
}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}
# Builds the load generator (bench/policy/loadgen, linked statically like the server) and
# prints the path of its binary.
build_loadgen() {
    local dir
    dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/loadgen"
    swift build -c release --static-swift-stdlib --package-path "$dir" --scratch-path "$dir/.build" >&2
    echo "$dir/.build/release/PolicyLoad"
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# The value of `key=` in a load generator's line.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2" | head -1; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# CPU layout (LAYOUT): sets allowed_cpus (what this script may use), harness_cpus and
# server_cpus. `shared`: all three are every allowed CPU. `split`: the harness (this script and
# what it starts: Knot, the load generator) gets the first CPU, the servers the others; this
# shell is pinned to the harness's CPU, and servers must be started with
# `taskset -c "$server_cpus"`. Exits 2 for another value, or for `split` on one CPU.
cpu_layout() {   # shared|split
    case "$1" in shared|split) ;; *) echo "LAYOUT: shared or split, not '$1'" >&2; exit 2 ;; esac
    allowed_cpus="$(python3 -c 'import os; print(",".join(map(str, sorted(os.sched_getaffinity(0)))))')"
    harness_cpus="$allowed_cpus" server_cpus="$allowed_cpus"
    [ "$1" = split ] || return 0
    harness_cpus="${allowed_cpus%%,*}"
    server_cpus="${allowed_cpus#*,}"
    if [ "$server_cpus" = "$allowed_cpus" ]; then
        echo "LAYOUT=split needs two CPUs or more (this script may use $allowed_cpus)" >&2; exit 2
    fi
    taskset -pc "$harness_cpus" $$ >/dev/null
}
# How many CPUs a comma-separated list names.
cpu_count() { tr ',' '\n' <<<"$1" | grep -c .; }
# Writes DIR/knot.conf for a Knot DNS on 127.0.0.1:PORT serving pre-made zone files, one
# DOMAIN=FILE argument each: `knot_config DIR PORT example=DIR/example.zone ...`.
knot_config() {
    local dir="$1" port="$2" zone
    shift 2
    {
        printf 'server:\n    rundir: "%s"\n    listen: 127.0.0.1@%s\ndatabase:\n    storage: "%s"\nzone:\n' "$dir" "$port" "$dir"
        for zone in "$@"; do
            printf '  - domain: %s\n    file: "%s"\n    zonefile-sync: -1\n    journal-content: none\n' "${zone%%=*}" "${zone#*=}"
        done
    } >"$dir/knot.conf"
}
# The workload of ab-run.sh and count-run.sh: `choose_workload WORK SPF SPF_DNS` sets `serve` (the
# arguments of `vrules serve` but --listen), `load` (the load generator's arguments but the
# target and counts) and `workload` (a description). SPF empty: the default policy on zone
# files. SPF `one` or `distinct`: bench/policy/spf.lua on spf-run.sh's workload (one sender
# domain, or one per transaction), its DNS (SPF_DNS) the zone files in memory (`zone`) or a
# Knot DNS started here on a loopback port, asked with the resolver's cache (`on`) or
# without (`off`); Knot's pid is added to `pids`, for the caller to stop.
choose_workload() {
    local work="$1" spf="$2" spf_dns="$3" bench zones kport senders
    bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    zones="$bench/spf-zones"
    serve=(--zone examples/example.zone --rules rules/main.lua)
    load=()
    workload="the default policy on zone files"
    [ -n "$spf" ] || return 0
    serve=(--rules "$bench/spf.lua")
    if [ "$spf_dns" = zone ]; then
        serve+=(--zone "$zones/spf.example.zone" --zone "$zones/other.example.zone")
    else
        [ -x /usr/sbin/knotd ] || apt_install knot
        kport="$(free_port)"
        knot_config "$work" "$kport" "spf.example=$zones/spf.example.zone" "other.example=$zones/other.example.zone"
        /usr/sbin/knotd -c "$work/knot.conf" >"$work/knot.log" 2>&1 &
        pids+=("$!")
        wait_port "$kport"
        printf '[server.dns]\ntype = "custom"\nservers = ["127.0.0.1:%s"]\n' "$kport" >"$work/vrules.toml"
        [ "$spf_dns" = off ] && printf '\n[server.dns.options]\ncache_size = 0\n' >>"$work/vrules.toml"
        serve+=(--config "$work/vrules.toml")
    fi
    senders=spf.example
    [ "$spf" = distinct ] && senders='{t}.spf.example'
    load=(--client-ip 198.51.100.25 --client-name mx1.mail.other.example --helo mx1.mail.other.example
          --sender-domain "$senders" --accept 'PREPEND Received-SPF: pass *' --accept DUNNO)
    workload="SPF (bench/policy/spf.lua), sender domains: $spf, DNS: $spf_dns"
}
