#!/usr/bin/env bash
# The deployment test: `make install` into a temporary DESTDIR, then checks what an
# operator gets. The binary links only system libraries and liblua5.4 (ldd); the
# systemd unit passes `systemd-analyze verify` and its sandbox scores "OK" or better
# in `systemd-analyze security`; the man pages cover every command; the installed
# binary, started as the unit's Type=notify starts it, says READY=1 once it serves policy
# requests with the installed configuration and rules, reloads through the unit's
# ExecReload (`vrules reload` on the control socket: RELOADING=1, then READY=1; a broken
# rule file fails it with the error and keeps the rules), pings the watchdog, and stops cleanly on
# SIGTERM (STOPPING=1); `vrules check` finds the installed rules clean; a second install
# keeps the operator's files.
#
# It needs the release build (`make build`, the step that takes minutes); run by
# scripts/test.sh after the Swift tests. Exit status 1 on the first failed check.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_packages liblua5.4-dev libidn2-dev pkg-config make systemd man-db groff-base

stage=$(mktemp -d /tmp/vrules-deploy.XXXXXX)
server_pid=""
listener_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  if [ -n "$listener_pid" ]; then kill "$listener_pid" 2>/dev/null || true; fi
  rm -rf "$stage"
}
trap cleanup EXIT

fail() { echo "FAIL - deploy: $*" >&2; exit 1; }
pass() { echo "ok - deploy: $*"; }

prefix=/usr/local
# The release build's progress shows (indented): it is the step that takes minutes.
make --no-print-directory install DESTDIR="$stage" PREFIX="$prefix" 2>&1 | sed -u 's/^/    /' \
  || fail "make install failed"
bin="$stage$prefix/bin/vrules"
unit="$stage$prefix/lib/systemd/system/vrules.service"
socket_unit="$stage$prefix/lib/systemd/system/vrules.socket"
mandir="$stage$prefix/share/man"
etc="$stage/etc/vrules"

# --- layout -----------------------------------------------------------------------
for f in "$bin" "$unit" "$socket_unit" "$etc/vrules.toml" "$etc/rules/main.lua" "$etc/rules/lib/checks.lua" \
         "$stage$prefix/share/vrules/vrules.toml" "$stage$prefix/share/vrules/rules/main.lua"; do
  [ -f "$f" ] || fail "missing after install: ${f#"$stage"}"
done
[ -x "$bin" ] || fail "the binary is not executable"
[ ! -e "$etc/rules/tests" ] || fail "rules/tests/ was installed into /etc/vrules (its fixtures are not)"
grep -q "^ExecStart=$prefix/bin/vrules serve .* --control /run/vrules/control.sock$" "$unit" \
  || fail "ExecStart does not run $prefix/bin/vrules serve with the control socket ExecReload asks"
pass "layout: binary, unit, man pages, /etc/vrules/{vrules.toml,rules/}, shipped copies in share/vrules"

# --- the Swift runtime is linked statically -----------------------------------------
# Allowed: glibc's libraries, the C++ runtime (libstdc++, libgcc_s: the Swift runtime
# is C++ and links them dynamically even with --static-swift-stdlib), liblua5.4, and
# libidn2 with its libunistring (internationalized names, IDNA2008).
ldd_out=$(ldd "$bin") || fail "ldd failed on the installed binary"
echo "$ldd_out" | sed 's/^/    /'
while read -r lib _; do
  case "$lib" in
    linux-vdso.so.*|/lib64/ld-linux-x86-64.so.*|/lib/ld-linux-aarch64.so.*|ld-linux*) ;;
    libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|libutil.so.*) ;;
    libstdc++.so.*|libgcc_s.so.*) ;;
    liblua5.4.so.*|libidn2.so.*|libunistring.so.*) ;;
    *) fail "ldd: unexpected library $lib (the Swift runtime must be static; allowed: glibc, libstdc++, libgcc_s, liblua5.4, libidn2, libunistring)" ;;
  esac
done <<<"$ldd_out"
if echo "$ldd_out" | grep -q "not found"; then fail "ldd: a library is not found"; fi
echo "$ldd_out" | grep -q "liblua5.4" || fail "ldd: liblua5.4 is not linked (expected the system Lua)"
pass "ldd: only system libraries, liblua5.4 and libidn2"

# --- man pages: one per command, generated from the command definitions -------------
# The commands come from the installed binary's own help (subcommands of subcommands
# too), so a new command without a page fails here.
subcommands_of() { "$bin" "$@" --help | awk '/^SUBCOMMANDS:/{s=1;next} s&&/^  [a-z]/{print $1}'; }
[ -f "$mandir/man1/vrules.1" ] || fail "missing man page vrules.1"
checked=()
check_page() {
  local page="$mandir/man1/vrules.$(IFS=.; echo "$*").1" rendered option
  [ -f "$page" ] || fail "missing man page for 'vrules $*' (${page#"$stage"})"
  rendered=$(LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$page" 2>"$stage/man.err" | col -b)
  [ ! -s "$stage/man.err" ] || { cat "$stage/man.err" >&2; fail "man -l: warnings on the page of 'vrules $*'"; }
  # Every long option in the command's --help appears in its page.
  for option in $("$bin" "$@" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
    [ "$option" = "--help" ] && continue
    grep -qF -- "$option" <<<"$rendered" || fail "the man page of 'vrules $*' lacks $option"
  done
  checked+=("vrules.$(IFS=.; echo "$*")")
}
commands=$(subcommands_of)
[ -n "$commands" ] || fail "could not read the subcommands from vrules --help"
for command in $commands; do
  check_page "$command"
  for sub in $(subcommands_of "$command"); do check_page "$command" "$sub"; done
done
pass "man pages: vrules(1) and ${#checked[@]} command pages match each command's --help (${checked[*]})"

# --- the systemd unit ---------------------------------------------------------------
for key in Type=notify WatchdogSec=30s DynamicUser=yes ProtectSystem=strict RuntimeDirectory=vrules NoNewPrivileges=yes \
           "ExecReload=$prefix/bin/vrules reload --control /run/vrules/control.sock"; do
  grep -qxF "$key" "$unit" || fail "the unit lacks $key"
done
# systemd-analyze verify works offline (no systemd as PID 1 needed). Whether it can run
# here is probed with a minimal valid unit first: only when that probe fails (no
# systemd package, or a container that refuses it) is the check skipped, with the reason.
skip_reason=""
if ! command -v systemd-analyze >/dev/null; then
  skip_reason="systemd-analyze is not installed (the systemd package is unavailable)"
else
  mkdir -p "$stage/probe"
  printf '[Unit]\nDescription=probe\n[Service]\nExecStart=/bin/true\n' >"$stage/probe/probe.service"
  if ! probe=$(systemd-analyze verify --man=no "$stage/probe/probe.service" 2>&1) || [ -n "$probe" ]; then
    skip_reason="systemd-analyze verify fails on a minimal valid unit here: $(echo "$probe" | head -1)"
  fi
fi
if [ -n "$skip_reason" ]; then
  echo "SKIP - deploy: systemd-analyze verify and security of the unit: $skip_reason"
else
  # verify checks that ExecStart's and ExecReload's binary exists and that Documentation= man pages
  # open: point both at the staged install.
  verify_unit="$stage/verify/vrules.service"
  mkdir -p "$stage/verify"
  sed "s|^\(Exec[A-Za-z]*\)=$prefix/bin/vrules|\1=$bin|" "$unit" >"$verify_unit"
  cp "$socket_unit" "$stage/verify/vrules.socket"
  MANPATH="$mandir" systemd-analyze verify "$verify_unit" "$stage/verify/vrules.socket" >"$stage/verify.log" 2>&1 \
    || { cat "$stage/verify.log" >&2; fail "systemd-analyze verify"; }
  [ ! -s "$stage/verify.log" ] || { cat "$stage/verify.log" >&2; fail "systemd-analyze verify printed warnings"; }
  exposure=$(systemd-analyze security --offline=true "$verify_unit" 2>&1 | grep 'Overall exposure level') \
    || fail "systemd-analyze security gave no score"
  echo "    $exposure"
  # 2.0 of 10 and below is systemd's "OK": the sandbox cannot be loosened unnoticed.
  systemd-analyze security --offline=true --threshold=20 "$verify_unit" >/dev/null 2>&1 \
    || fail "the unit's exposure is above 2.0: $exposure"
  pass "systemd-analyze verify of vrules.service and vrules.socket: clean; security: exposure at most 2.0"
fi

# --- vrules check of the installed configuration and rules ---------------------------
check_out=$(cd / && "$bin" check --config "$etc/vrules.toml" "$etc/rules") || { echo "$check_out" >&2; fail "vrules check of the installed rules"; }
[ -z "$check_out" ] || { echo "$check_out" >&2; fail "vrules check printed findings"; }
pass "vrules check --config /etc/vrules/vrules.toml /etc/vrules/rules: clean"

# The installed rules decide (not a default answer): an offline session through them.
run_out=$("$bin" run --config "$etc/vrules.toml" --rules "$etc/rules/main.lua" --zone examples/example.zone \
  --client-ip 192.0.2.66 --helo liar.example --mail-from m@good.example --rcpt b@implicit.example)
grep -q '^connect: reject 550 5.7.25' <<<"$run_out" || { echo "$run_out" >&2; fail "the installed rules did not reject a failed iprev"; }
pass "vrules run with the installed rules: failed iprev -> 550 5.7.25"

# --- vrules serve with the installed configuration ----------------------------------
# Ask one policy request on a connection; prints the answer's action line, or what went
# wrong. Runs in a command substitution: the SIGPIPE it ignores (a server that closes
# the connection at once) stays there.
policy_request() {
  local port=$1 client=$2 answer
  trap '' PIPE
  if exec 3<>"/dev/tcp/127.0.0.1/$port"; then
    if printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=%s\nclient_name=localhost\nhelo_name=localhost\nsender=a@example.org\nrecipient=b@example.org\ninstance=%s\n\n' \
         "$client" "deploy.$RANDOM" >&3; then
      IFS= read -r -t 10 answer <&3 || answer="(no answer: the connection was closed or reset)"
    else
      answer="(the connection was closed before the request was sent)"
    fi
    exec 3<&- 3>&-
  else
    answer="(cannot connect)"
  fi
  echo "$answer"
}
log="$stage/serve.log"
port=""
unprivileged=()
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  unprivileged=(setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs --bounding-set=-all --inh-caps=-all)
  chmod 0755 "$stage"   # mktemp -d makes it 0700; /etc and /usr are world-searchable on a host
  serve_as="uid 65534, no capabilities, no_new_privs"
else
  serve_as="uid $(id -u)"
fi
# The service manager's end of Type=notify: a datagram socket the server's uid may send
# to, each notification written as one line (its KEY=value lines joined by " | ").
notify_socket="$stage/notify.sock"
notify_log="$stage/notify.log"
: >"$notify_log"
python3 - "$notify_socket" "$notify_log" <<'PY' &
import os, socket, sys
listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
listener.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(listener.recv(4096).decode().rstrip("\n").replace("\n", " | ") + "\n")
PY
listener_pid=$!
for _ in $(seq 1 100); do [ -S "$notify_socket" ] && break; sleep 0.1; done
[ -S "$notify_socket" ] || fail "the notification listener did not start"
# Waits until the server sent a notification matching $1 (a grep pattern) $2 times in all.
wait_notified() {
  for _ in $(seq 1 150); do
    [ "$(grep -c -- "$1" "$notify_log")" -ge "$2" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# The unit's RuntimeDirectory=vrules (/run/vrules), owned by the user the server runs as.
run_dir="$stage/run/vrules"
mkdir -p "$run_dir"
[ ${#unprivileged[@]} -eq 0 ] || chown 65534:65534 "$run_dir"
for attempt in 1 2 3 4 5; do
  candidate=$((20000 + RANDOM % 30000))
  # From /, as systemd starts it (no WorkingDirectory=): nothing may depend on the source
  # tree. As root, under an unprivileged uid with no capabilities and no_new_privs, as
  # the unit's DynamicUser=, CapabilityBoundingSet= and NoNewPrivileges= run it: the
  # installed files must be readable by a user that owns none of them. The watchdog is
  # asked for every second (the unit's 30 s would make the check wait 15 s for a ping).
  (cd / && NOTIFY_SOCKET="$notify_socket" WATCHDOG_USEC=1000000 exec "${unprivileged[@]}" "$bin" serve \
     --config "$etc/vrules.toml" --rules "$etc/rules/main.lua" --listen "127.0.0.1:$candidate" \
     --control "$run_dir/control.sock") >"$log" 2>&1 &
  server_pid=$!
  # Started as systemd sees it: when the server says READY=1, not when the port accepts.
  if wait_notified '^READY=1' 1; then port=$candidate; break; fi
  kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; server_pid=""
  grep -q "cannot listen" "$log" || { cat "$log" >&2; fail "vrules serve did not start"; }
done
[ -n "$port" ] || { cat "$log" >&2; fail "vrules serve found no free loopback port"; }

answer=$(policy_request "$port" 127.0.0.1)
# (A server that sets a privileged socket option on each connection, as SO_DEBUG, resets
# every connection here and under the unit, though it works as root.)
[ "$answer" = "action=DUNNO" ] || { cat "$log" >&2; fail "policy request as $serve_as: expected action=DUNNO, got '$answer'"; }
pass "vrules serve (installed binary, config, rules; from /, as $serve_as) on 127.0.0.1:$port answers a policy request: $answer"
ready=$(grep '^READY=1' "$notify_log" | head -1)
[[ "$ready" == "READY=1 | STATUS=serving on 127.0.0.1:$port with "*" rule engines" ]] || { cat "$notify_log" >&2; fail "READY=1 without the status: '$ready'"; }
wait_notified '^WATCHDOG=1$' 1 || { cat "$notify_log" "$log" >&2; fail "no watchdog ping (WATCHDOG_USEC=1000000)"; }
pass "Type=notify: READY=1 once it listens ('$ready'), then watchdog pings"

# Reload as systemd does: the unit's ExecReload, as the server's user, with the staged
# binary and runtime directory in place of the installed paths.
reload=$(sed -n 's/^ExecReload=//p' "$unit")
reload_command=${reload//$prefix\/bin\/vrules/$bin}
reload_command=${reload_command//\/run\/vrules/$run_dir}
reloaded=$(cd / && "${unprivileged[@]}" $reload_command 2>&1) || { echo "$reloaded" "$(cat "$log")" >&2; fail "ExecReload ($reload) failed"; }
[ "$reloaded" = "vrules: the rules and the configuration were reloaded" ] || fail "ExecReload said '$reloaded'"
grep -q "rules reloaded" "$log" || { cat "$log" >&2; fail "ExecReload ($reload) did not reload the rules"; }
wait_notified '^READY=1 | STATUS=rules reloaded' 1 || { cat "$notify_log" >&2; fail "no READY=1 after the reload"; }
grep -q '^RELOADING=1 | MONOTONIC_USEC=[0-9]* | STATUS=reloading the rules (vrules reload)$' "$notify_log" \
  || { cat "$notify_log" >&2; fail "no RELOADING=1 before the reload's READY=1"; }
answer=$(policy_request "$port" 127.0.0.1)
[ "$answer" = "action=DUNNO" ] || { cat "$log" >&2; fail "after reload: expected action=DUNNO, got '$answer'"; }
pass "ExecReload ($reload) reloads (RELOADING=1, then READY=1) and says so; the server still answers"

# A rule file broken by an edit: ExecReload fails (so would `systemctl reload vrules`) with
# the error, and the running rules stay.
cp "$etc/rules/main.lua" "$stage/main.lua.good"
echo 'this is not Lua' >>"$etc/rules/main.lua"
status=0
refused=$(cd / && "${unprivileged[@]}" $reload_command 2>&1) || status=$?
cp "$stage/main.lua.good" "$etc/rules/main.lua"
[ "$status" -eq 1 ] || { echo "$refused" >&2; fail "ExecReload of a broken rule file exited with $status, not 1"; }
grep -q "main.lua:[0-9]*: " <<<"$refused" || { echo "$refused" >&2; fail "ExecReload of a broken rule file did not say why"; }
wait_notified '^READY=1 | STATUS=reload failed at .* (vrules reload), the running rules stay: ' 1 \
  || { cat "$notify_log" >&2; fail "no failed reload in the status"; }
answer=$(policy_request "$port" 127.0.0.1)
[ "$answer" = "action=DUNNO" ] || { cat "$log" >&2; fail "after a failed reload: expected action=DUNNO, got '$answer'"; }
pass "ExecReload of a broken rule file exits 1 with the error ($(grep -m1 'main.lua' <<<"$refused" | sed 's/^ *//')); the running rules still answer"
status_out=$(cd / && "${unprivileged[@]}" "$bin" status --control "$run_dir/control.sock" 2>&1) \
  || { echo "$status_out" >&2; fail "vrules status failed"; }
grep -q "^pid $server_pid, serving since .* on 127.0.0.1:$port with [0-9]* rule engines$" <<<"$status_out" \
  && grep -q '^last reload failed at .* (vrules reload), the running rules stay:$' <<<"$status_out" \
  || { echo "$status_out" >&2; fail "vrules status does not show the server and its failed reload"; }
pass "vrules status (as the server's user): $(head -1 <<<"$status_out"), and the failed reload"

kill -TERM "$server_pid"
for _ in $(seq 1 200); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$server_pid" 2>/dev/null; then
  kill -ABRT "$server_pid"; sleep 10   # the Swift runtime prints every thread's backtrace to the log
  cat "$log" >&2
  fail "vrules serve did not stop within 20 s of SIGTERM"
fi
status=0
wait "$server_pid" || status=$?
server_pid=""
[ "$status" -eq 0 ] || { cat "$log" >&2; fail "vrules serve exited with $status on SIGTERM"; }
grep -q '^STOPPING=1 | STATUS=stopping' "$notify_log" || { cat "$notify_log" >&2; fail "no STOPPING=1 on SIGTERM"; }
[ ! -e "$run_dir/control.sock" ] || fail "the control socket was left after SIGTERM"
pass "SIGTERM: vrules serve says STOPPING=1 and stops with status 0"

# --- socket activation, as vrules.socket starts it ----------------------------------
# systemd-socket-activate holds the listening socket and starts the installed binary at the
# first connection, passing the socket as vrules.socket does (LISTEN_FDS); the address is
# the socket unit's ListenStream with a free port, since 10040 may be taken here.
grep -qx 'ListenStream=127.0.0.1:10040' "$socket_unit" || fail "vrules.socket does not listen on the default policy address"
activated=$((20000 + RANDOM % 30000))
(cd / && exec "${unprivileged[@]}" systemd-socket-activate -l "127.0.0.1:$activated" "$bin" serve \
   --config "$etc/vrules.toml" --rules "$etc/rules/main.lua") >"$stage/activated.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 50); do grep -q "^Listening on" "$stage/activated.log" && break; sleep 0.1; done
answer=$(policy_request "$activated" 127.0.0.1)
[ "$answer" = "action=DUNNO" ] || { cat "$stage/activated.log" >&2; fail "socket activation: expected action=DUNNO, got '$answer'"; }
grep -q 'policy server listening on a socket from the service manager' "$stage/activated.log" \
  || { cat "$stage/activated.log" >&2; fail "socket activation: the passed socket was not the one served"; }
kill -TERM "$server_pid"; status=0; wait "$server_pid" || status=$?; server_pid=""
[ "$status" -eq 0 ] || { cat "$stage/activated.log" >&2; fail "socket activation: exit status $status on SIGTERM"; }
pass "socket activation (vrules.socket's way, by systemd-socket-activate): the installed binary serves the passed socket"

# --- a second install keeps the operator's files -------------------------------------
echo '# the operator was here' >>"$etc/vrules.toml"
echo '-- the operator was here' >>"$etc/rules/main.lua"
ln -s /nonexistent "$etc/rules/local.lua"
rm "$etc/rules/lib/checks.lua"
before=$(cat "$etc/vrules.toml" "$etc/rules/main.lua")
make --no-print-directory install-config DESTDIR="$stage" PREFIX="$prefix" >"$stage/reinstall.log" 2>&1 \
  || { cat "$stage/reinstall.log" >&2; fail "second make install-config failed"; }
[ "$before" = "$(cat "$etc/vrules.toml" "$etc/rules/main.lua")" ] || fail "a second install overwrote the operator's files"
[ -L "$etc/rules/local.lua" ] || fail "a second install replaced the operator's symbolic link"
[ -f "$etc/rules/lib/checks.lua" ] || fail "a second install did not restore a missing shipped module"
grep -q "kept $etc/vrules.toml" "$stage/reinstall.log" || fail "a second install did not say it kept vrules.toml"
pass "a second install keeps the operator's vrules.toml and rules, restores only missing files"

# --- a PREFIX the unit cannot hold is refused -----------------------------------------
for bad in relative/usr '/opt/a|b' "/opt/x'y" '/opt/a b' '/opt/`id`'; do
  if out=$(make --no-print-directory install-unit DESTDIR="$stage/bad" PREFIX="$bad" 2>&1); then
    fail "make install-unit accepted PREFIX='$bad'"
  fi
  grep -q "^make: BINDIR/PREFIX " <<<"$out" || { echo "$out" >&2; fail "PREFIX='$bad': no clear error"; }
  [ -z "$(find "$stage/bad" -name 'vrules.service*' 2>/dev/null)" ] || fail "PREFIX='$bad': a unit was written"
done
pass "a relative PREFIX, or one with characters a unit line cannot hold, is refused with an error"

# --- uninstall removes what went under PREFIX and keeps /etc/vrules --------------------
make --no-print-directory uninstall DESTDIR="$stage" PREFIX="$prefix" >/dev/null 2>&1 || fail "make uninstall failed"
left=$(find "$stage$prefix" -type f)
[ -z "$left" ] || fail "make uninstall left files under PREFIX: $left"
[ -f "$etc/vrules.toml" ] && [ -f "$etc/rules/main.lua" ] || fail "make uninstall removed the operator's /etc/vrules"
pass "make uninstall removes the binary, unit, man pages and shipped copies; /etc/vrules stays"

echo "deploy: all checks passed"
