#!/usr/bin/env bash
# The test suite: installs what the tests need (Lua headers, Knot DNS, Unbound,
# Postfix) when missing, then builds and runs every test (the shipped rule tests
# among them).
#
# It runs in three groups. Tests that drive the vrules binary wait on child
# processes, which occupies Swift's cooperative threads (two on a 2-core machine);
# run together with the resolver's and engine's timing tests they would starve
# them. So: the library tests, then the command-line tests, then the end-to-end
# tests with real Postfix and Knot.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_packages liblua5.4-dev pkg-config knot knot-dnsutils unbound postfix
swift build --build-tests
processes='CLITests|LintTests|IntegrationTests'
swift test --skip-build --skip "$processes" "$@"
swift test --skip-build --filter 'CLITests|LintTests' "$@"
swift test --skip-build --filter 'IntegrationTests' "$@"
