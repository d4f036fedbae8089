#!/usr/bin/env bash
# The test suite: installs what the tests need (Lua headers, Knot DNS, Unbound,
# Postfix) when missing, then builds and runs every test (the shipped rule tests
# among them).
#
# It runs in groups, so that timing-sensitive tests are not starved of the two
# cores: the resolver's tests (timeouts of a few hundred milliseconds, counted
# queries) one at a time; the other library tests; the policy server's tests one
# at a time (one keeps a core busy on purpose); the configuration tests (a fuzz
# run of 100,000 files takes a core for half a minute); the tests that drive the
# vrules binary (waiting on child processes occupies Swift's cooperative
# threads); the end-to-end tests with real Postfix and Knot; and the DNSSEC
# matrix (scripts/dnssec-zones.sh signs a private hierarchy, Knot serves it, Unbound
# forwards to it, and vrules' status for each question is compared with delv's,
# the independent validator). Last, the
# deployment test (scripts/test-deploy.sh): a release build with the Swift runtime
# linked statically (about 6 minutes on two cores), installed into a temporary
# DESTDIR and started from there.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_packages liblua5.4-dev libidn2-dev pkg-config knot knot-dnsutils unbound postfix golang-github-burntsushi-toml-dev \
  python3-spf python3-authres make systemd man-db groff-base bind9-dnsutils ldnsutils bind9-utils knot-dnssecutils procps
swift build --build-tests

# One group of tests, its output line by line (stdbuf: were a group to hang, its output shows
# how far it got) and bounded in time: past LIMIT seconds the processes still running are
# listed, each test binary gets SIGABRT (the Swift runtime prints every thread's backtrace)
# and the run fails, instead of waiting until CI gives up on it without a word.
group() {
  local limit=$1 pid waited=0
  shift
  stdbuf -oL -eL swift test --skip-build "$@" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    waited=$((waited + 1))
    if [ "$waited" -ge "$limit" ]; then
      echo "FAIL - tests: 'swift test $*' still running after $limit s; the processes:" >&2
      ps -eo pid,ppid,etime,stat,args --forest >&2 || true
      pkill -ABRT -f 'PackageTests.xctest' || true
      sleep 20
      pkill -KILL -f 'PackageTests.xctest' || true
      kill "$pid" 2>/dev/null || true
      exit 1
    fi
  done
  wait "$pid"
}
group 1200 --filter 'DNSResolverTests' --no-parallel "$@"
group 1200 --skip 'DNSResolverTests|CLITests|LintTests|IntegrationTests|PolicyTests|ConfigurationTests|DNSSECTests' "$@"
group 1200 --filter 'PolicyTests' --no-parallel "$@"
group 1200 --filter 'ConfigurationTests' "$@"
group 1200 --filter 'CLITests|LintTests' "$@"
group 600 --filter 'IntegrationTests' "$@"
group 600 --filter 'DNSSECTests' "$@"
scripts/test-deploy.sh
