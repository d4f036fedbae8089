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
  python3-spf make systemd man-db groff-base bind9-dnsutils ldnsutils bind9-utils knot-dnssecutils
swift build --build-tests
swift test --skip-build --filter 'DNSResolverTests' --no-parallel "$@"
swift test --skip-build --skip 'DNSResolverTests|CLITests|LintTests|IntegrationTests|PolicyTests|ConfigurationTests|DNSSECTests' "$@"
swift test --skip-build --filter 'PolicyTests' --no-parallel "$@"
swift test --skip-build --filter 'ConfigurationTests' "$@"
swift test --skip-build --filter 'CLITests|LintTests' "$@"
swift test --skip-build --filter 'IntegrationTests' "$@"
swift test --skip-build --filter 'DNSSECTests' "$@"
scripts/test-deploy.sh
