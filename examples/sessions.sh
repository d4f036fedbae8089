#!/usr/bin/env bash
# Four sessions through the default policy, answered from examples/example.zone.
# Usage: examples/sessions.sh [path/to/vrules]
set -euo pipefail
cd "$(dirname "$0")/.."
vrules=${1:-vrules}

echo "### A well-configured sender: accepted"
"$vrules" run --zone examples/example.zone --client-ip 192.0.2.10 --helo mail.good.example \
  --mail-from alice@good.example --rcpt bob@implicit.example

echo
echo "### A client whose reverse DNS does not confirm: rejected at connect"
"$vrules" run --zone examples/example.zone --client-ip 192.0.2.66 --helo liar.example \
  --mail-from mallory@good.example --rcpt bob@implicit.example

echo
echo "### The DNS server times out on the sender's MX: deferred at mail"
"$vrules" run --zone examples/example.zone --client-ip 192.0.2.10 --helo mail.good.example \
  --mail-from alice@good.example --rcpt bob@implicit.example --fault good.example=timeout

echo
echo "### The same client in a dry run: the refusal answered DUNNO, the message marked"
"$vrules" run --zone examples/example.zone --client-ip 192.0.2.66 --helo liar.example \
  --mail-from mallory@good.example --rcpt bob@implicit.example --dry-run
