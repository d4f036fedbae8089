#!/usr/bin/env bash
# The test suite: installs what the tests need (Lua headers, Knot DNS, Unbound,
# Postfix) when missing, then builds and runs every test (the shipped rule tests among them).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_packages liblua5.4-dev pkg-config knot knot-dnsutils unbound postfix
swift build --build-tests
swift test --skip-build "$@"
