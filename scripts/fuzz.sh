#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, with AddressSanitizer) of the parsers that read what a
# peer, a DNS server or an operator sends: Sources/VrulesFuzz names each target and the
# properties it checks. Not part of the test suite (it runs for SECONDS); a finding is saved
# as .build-fuzz/findings/TARGET/crash-* (or timeout-*, oom-*), and replays with
#   swift run VrulesFuzz TARGET FILE
# which is how to turn it into a regression test in the target's own test suite.
#
# Usage: scripts/fuzz.sh TARGET [SECONDS] [-- LIBFUZZER_OPTIONS...]
#        scripts/fuzz.sh TARGET merge
#   TARGET   config, dns-message, dns-name, dnssec-chain, dnssec-key, lua-check, policy-request, policy-session,
#            rule-script, spf-record, test-file, toml or zone-file
#   SECONDS  how long to run (default 300)
#   merge    adds to the regression corpus (Tests/Fixtures/fuzz/TARGET, which the test suite
#            replays: FuzzCorpusTests) the inputs of .build-fuzz/corpus/TARGET that reach code
#            it does not (libFuzzer's -merge=1); commit what it adds
# The corpus grows in .build-fuzz/corpus/TARGET, seeded from the regression corpus and the
# repository's own examples.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
targets="config dns-message dns-name dnssec-chain dnssec-key lua-check policy-request policy-session rule-script spf-record test-file toml zone-file"
target="${1:-}"
[[ " $targets " == *" $target "* ]] || { sed -n '2,13p' "$0" >&2; exit 2; }
shift
seconds=300
merge=
if [ $# -gt 0 ] && [ "$1" = "merge" ]; then merge=1; shift; fi
if [ -z "$merge" ] && [ $# -gt 0 ] && [ "$1" != "--" ]; then seconds="$1"; shift; fi
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "SECONDS: a positive number, not '$seconds'" >&2; exit 2; }
if [ $# -gt 0 ] && [ "$1" = "--" ]; then shift; fi

scratch="$root/.build-fuzz"
swift build --product VrulesFuzz --scratch-path "$scratch" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xcc -fsanitize=fuzzer-no-link,address >&2
binary="$scratch/debug/VrulesFuzz"

corpus="$scratch/corpus/$target"
findings="$scratch/findings/$target"
regression="$root/Tests/Fixtures/fuzz/$target"
mkdir -p "$corpus" "$findings" "$regression"
if [ -n "$merge" ]; then
    before=$(find "$regression" -type f | wc -l)
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 VRULES_FUZZ_TARGET="$target" "$binary" -merge=1 \
        -max_len=4096 -timeout=10 -rss_limit_mb=4096 -detect_leaks=0 "$regression" "$corpus" >&2
    after=$(find "$regression" -type f | wc -l)
    echo "$regression: $before -> $after inputs (replay: swift build && .build/debug/VrulesFuzz $target $regression)"
    exit 0
fi
cp -n "$regression"/* "$corpus"/ 2>/dev/null || true
seed() { printf '%b' "$2" >"$corpus/seed-$1"; }
case "$target" in
dns-message)
    # Replies as a server sends them: an A answer with a compressed owner, MX with compressed
    # exchanges and EDNS, TXT with two strings, NXDOMAIN with an SOA.
    python3 - "$corpus" <<'PY'
import struct, sys, os
def name(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".") if l) + b"\0"
def msg(rcode, qname, qtype, answers, auth=b"", nauth=0, opt=False):
    h = struct.pack(">HHHHHH", 0x1234, 0x8180 | rcode, 1, len(answers), nauth, 1 if opt else 0)
    q = name(qname) + struct.pack(">HH", qtype, 1)
    body = b"".join(answers)
    o = b"\0" + struct.pack(">HHIH", 41, 1232, 0x8000, 0) if opt else b""
    return h + q + body + auth + o
ptr = b"\xc0\x0c"
out = sys.argv[1]
seeds = {
    "a": msg(0, "example.test", 1, [ptr + struct.pack(">HHIH", 1, 1, 300, 4) + bytes([192, 0, 2, 1])]),
    "mx": msg(0, "example.test", 15, [ptr + struct.pack(">HHIH", 15, 1, 300, 9) + struct.pack(">H", 10) + b"\x04mail" + ptr], opt=True),
    "txt": msg(0, "example.test", 16, [ptr + struct.pack(">HHIH", 16, 1, 300, 19) + b"\x0av=spf1 mx\x07 -all  "]),
    "nx": msg(3, "nx.example.test", 1, [], auth=ptr + struct.pack(">HHIH", 6, 1, 300, 22) + ptr + ptr + struct.pack(">IIIII", 1, 2, 3, 4, 5), nauth=1),
}
for k, v in seeds.items():
    open(os.path.join(out, "seed-" + k), "wb").write(v)
PY
    ;;
dnssec-chain)
    # Each question of the signed hierarchy unchanged, and with a change in the answer and in
    # a DNSKEY reply.
    for question in 0 1 2 3 4 5 6 7 8 9; do
        seed "q$question" "\\x0$question"
        seed "q$question-answer" "\\x0$question\\x00\\x00\\x40\\x01"
        seed "q$question-dnskey" "\\x0$question\\x03\\x00\\x60\\x80"
    done
    ;;
dnssec-key)
    # Keys of each family's size: RSA (exponent 65537, 1,024-bit modulus), P-256, Ed25519.
    python3 - "$corpus" <<'PY'
import os, sys
out = sys.argv[1]
rsa = bytes([3, 1, 0, 1]) + bytes([0xC5] * 128)
for name, algorithm, key, signature in [("rsa", 1, rsa, bytes(128)), ("p256", 4, bytes(range(64)), bytes(64)),
                                        ("ed25519", 6, bytes(range(32)), bytes(64))]:
    open(os.path.join(out, "seed-" + name), "wb").write(bytes([algorithm]) + key + b"\xff\x00" + signature + b"\xff\x00data")
PY
    ;;
policy-session)
    # One transaction of a client with forward-confirmed reverse DNS, stage by stage.
    common='request=smtpd_access_policy\nclient_address=192.0.2.10\nclient_name=mail.good.example\nhelo_name=mail.good.example\ninstance=7.1\n'
    seed session "${common}protocol_state=CONNECT\n\n${common}protocol_state=EHLO\n\n${common}protocol_state=MAIL\nsender=a@good.example\n\n${common}protocol_state=RCPT\nsender=a@good.example\nrecipient=b@implicit.example\n\n${common}protocol_state=END-OF-MESSAGE\nsender=a@good.example\nrecipient=b@implicit.example\n\n"
    seed bounce "${common}protocol_state=RCPT\nsender=\nrecipient=postmaster@nullmx.example\nsasl_username=u\nccert_subject=x\nencryption_protocol=TLSv1.3\n\n"
    ;;
policy-request)
    # The first byte sets the size of the pieces the stream is fed in.
    seed one '\x07request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.1\nhelo_name=mx.example\nsender=a@example.test\nrecipient=b@example.test\ninstance=1.2\n\n'
    seed two '\x03request=smtpd_access_policy\nprotocol_state=MAIL\r\nsender=\n\nrequest=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\n\n'
    ;;
rule-script)
    # Rule bodies (after an optional top-level part and a NUL): each verdict and reply form,
    # headers, DNS and SPF calls, and the hostile scripts of the sandbox's own tests.
    python3 - "$corpus" <<'PY'
import os, sys
out = sys.argv[1]
seeds = {
    "verdicts": 'if ctx.stage == "rcpt" then return reject("550 5.7.1 no " .. ctx.rcpt.address) end return accept()',
    "replies": 'return defer(reply(451, "4.7.1", ctx.helo or "x"))',
    "catalogue": 'if ctx.stage == "mail" then return reject(replies.spf_fail) end return next()',
    "headers": 'ctx.add_header("X-Stage", ctx.stage) ctx.add_header("X-Client", ctx.client.ip)',
    "vars": 'ctx.vars.n = (ctx.vars.n or 0) + 1 if ctx.vars.n > 3 then return defer() end',
    "dns": 'local a = dns.lookup(ctx.helo or "mail.good.example") local m = dns.locate_mx("good.example") local r = dns.iprev(ctx.client.ip) if r.status ~= "pass" then return reject() end',
    "spf": 'if ctx.stage == "mail" then local r = spf.check(ctx) ctx.add_header("Received-SPF", spf.received_header(r)) end',
    "authres": 'if ctx.stage == "data" then ctx.add_header("Authentication-Results", authres(ctx, { iprev = dns.iprev(ctx.client.ip) })) end',
    "toplevel": 'local seen = {}\nlocal function note(ip) seen[ip] = (seen[ip] or 0) + 1 end\n\0note(ctx.client.ip) log.info("seen", seen[ctx.client.ip])',
    "loop": 'while true do end',
    "pattern": 'return ("a"):rep(40):find(("a*"):rep(40) .. "b")',
    "concat": 'local s = "" for i = 1, 1e7 do s = s .. "abcdefgh" end',
    "recursion": 'local function f(n) return f(n + 1) + 1 end return f(1)',
    "memory": 'local t = {} for i = 1, 1e7 do t[i] = {} end',
    "error-object": 'error(setmetatable({}, { __tostring = function() while true do end end }))',
    "rawset": 'rawset(ctx, "helo", "x") setmetatable(replies, {})',
    "pcall": 'local ok, e = pcall(dns.lookup, nil) return reject(tostring(e))',
    "load": 'local f = load("return 1" .. ("+1"):rep(1000)) return f()',
    "gsub": 'return ("x"):rep(1000):gsub(".", function(c) return dns.lookup("a.example") end)',
    "header-crlf": 'ctx.add_header("X-A", "a\\r\\nInjected: yes")',
    "reply-crlf": 'return reject("550 5.7.1 a\\r\\n250 ok")',
}
for name, body in seeds.items():
    open(os.path.join(out, "seed-" + name), "wb").write(body.encode())
PY
    ;;
test-file)
    # The shipped test files, on the default policy (the target's default rules) and the
    # example zone (linked beside the file the target writes).
    for file in rules/tests/*.lua examples/tests/*.lua; do
        sed -e '/^ *rules = /d' -e 's|zone_file = "[^"]*"|zone_file = "example.zone"|' "$file" >"$corpus/seed-$(basename "$file")"
    done
    seed requests 'return { dry_run = false, tests = { { name = "r", request = { client_address = "192.0.2.10", instance = "1", helo_name = "mail.good.example" },\n  requests = { { protocol_state = "RCPT", sender = "a@good.example", recipient = "b@implicit.example", answer = "DUNNO" },\n    { protocol_state = "DATA", recipient_count = 1, answer = "DUNNO" }, { protocol_state = "VRFY", answer = "DUNNO" } } } } }'
    seed faults 'return { zone = "a.example. 300 IN A 192.0.2.1", faults = { ["b.example"] = "timeout" }, delay = "1ms",\n  tests = { { name = "t", client_ip = "192.0.2.1", helo = "a.example", mail_from = "x@b.example", rcpt = { "y@a.example" },\n    expect = { connect = "next", mail = "defer" }, vars = { x = "1" }, headers = { "X: y" } } } }'
    ;;
spf-record)
    seed plain 'v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx ptr include:r.test exists:%{ir}.%{l1r-}.t.test -all\0v=spf1 redirect=t.test'
    seed macros 'v=spf1 exp=t.test a:%{d2}.%{h}.%{o} mx:%{s}/24//64 -all\0v=spf1 ~all'
    seed sender 'v=spf1 exists:%{l}.%{h}.%{ir}.t.test exp=%{l1r+-}.t.test -all\0\0first.last+tag\0mx.client.example'
    ;;
lua-check)
    cp rules/main.lua rules/lib/*.lua bench/policy/spf.lua "$corpus/" 2>/dev/null || true
    ;;
config|toml)
    cp examples/*.toml "$corpus/" 2>/dev/null || true
    # Every TOML-looking example in the docs.
    python3 - "$corpus" docs/configuration.md README.md <<'PY'
import os, re, sys
out = sys.argv[1]
for path in sys.argv[2:]:
    for index, block in enumerate(re.findall(r"```(?:toml)?\n(.*?)```", open(path).read(), re.S)):
        if "[server" in block and "=" in block:
            open(os.path.join(out, "seed-%s-%d" % (os.path.basename(path), index)), "w").write(block)
PY
    seed inline 'a = { b = [1, 2.5, "c", 1979-05-27T07:32:00Z] }\n[[x.y]]\nz = """\nq"""\n'
    ;;
zone-file)
    cp examples/*.zone bench/policy/spf-zones/*.zone "$corpus/" 2>/dev/null || true
    ;;
dns-name)
    seed ascii 'Mail.Example.COM.'
    seed ulabel 'B\xc3\xbccher.example'
    seed escapes 'a\\065\\.b\\\\c\\032.example'
    seed root '.'
    ;;
esac

# The tokens of the input's language, which random byte changes seldom make, for the targets
# that read Lua.
case "$target" in
lua-check|rule-script|test-file) set -- -dict="$root/scripts/fuzz-dictionaries/lua.dict" "$@" ;;
esac

# LeakSanitizer is off: it reports Swift objects as leaked when the only reference to them is
# a multi-payload enum's payload, whose case is kept in the pointer's spare bits (an
# `IPAddress` held in a parsed SPF record, for one), so its findings are false.
echo "fuzzing $target for ${seconds}s; corpus $corpus, findings $findings" >&2
SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" VRULES_FUZZ_TARGET="$target" "$binary" "$corpus" -max_total_time="$seconds" -artifact_prefix="$findings/" \
    -max_len=4096 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 -detect_leaks=0 "$@"
