#!/usr/bin/env bash
# The main job, offline: four simulated SMTP sessions against the example zone and
# the default policy (rules/main.lua): one accepted, one rejected, one deferred, and the
# rejected one again in a dry run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_packages liblua5.4-dev libidn2-dev pkg-config
swift build --product vrules >/dev/null
exec examples/sessions.sh .build/debug/vrules
