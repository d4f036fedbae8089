# Helpers shared by the policy benchmarks (run.sh, spf-run.sh, memory-run.sh): sourced, not run.

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
