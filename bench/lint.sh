#!/bin/sh
# Linter benchmark (target: 100 rule files checked in under one second).
# Generates 100 rule scripts, each with 20 rules and a shared module, and times
# `vrules check` on the directory. Usage: bench/lint.sh [path/to/vrules]
set -eu
cd "$(dirname "$0")/.."
VRULES=${1:-}
if [ -z "$VRULES" ]; then
    swift build -c release --product vrules >/dev/null
    VRULES=.build/release/vrules
fi
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
mkdir -p "$DIR/lib"
cp rules/lib/checks.lua "$DIR/lib/checks.lua"
i=1
while [ $i -le 100 ]; do
    {
        echo 'local checks = require "lib.checks"'
        echo 'return {'
        echo '  connect = {'
        j=1
        while [ $j -le 10 ]; do
            echo "    rule(\"iprev $j\", function(ctx)"
            echo '      local result = dns.iprev(ctx.client.ip)'
            echo '      if result.status == "fail" then return reject(replies.rdns_failed) end'
            echo '      if result.status == "temperror" then return defer(reply(451, "4.4.3", "try later")) end'
            echo '    end),'
            j=$((j + 1))
        done
        echo '  },'
        echo '  mail = {'
        j=1
        while [ $j -le 10 ]; do
            echo "    rule(\"route $j\", function(ctx)"
            echo '      if checks.is_domain_name(ctx.mail_from.domain) then'
            echo '        local route = dns.locate_mx(ctx.mail_from.domain)'
            echo '        if route.kind == "null" then return reject("550 5.7.27 null MX") end'
            echo '      end'
            echo '    end),'
            j=$((j + 1))
        done
        echo '  },'
        echo '}'
    } > "$DIR/policy_$i.lua"
    i=$((i + 1))
done
LINES=$(cat "$DIR"/policy_*.lua | wc -l)
START=$(date +%s.%N)
"$VRULES" check "$DIR"
END=$(date +%s.%N)
echo "vrules check: 100 rule files ($LINES lines, 2,000 rules) in $(echo "$END - $START" | bc) s (target: < 1 s)"
