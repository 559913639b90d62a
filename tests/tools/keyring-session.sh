#!/bin/bash
# keyring-session.sh - run a command beside a real, private Secret Service
#
# Usage: tests/tools/keyring-session.sh USER PASSWORD -- COMMAND [ARGS...]
# Starts a private D-Bus session bus (no auto-activation) and
# gnome-keyring-daemon (secrets component, unlocked) on it, with HOME
# and XDG dirs in a temporary directory; stores PASSWORD the way msmtp's
# manual says (secret-tool store --label=msmtpd host localhost service
# smtp user USER); runs COMMAND with DBUS_SESSION_BUS_ADDRESS set and
# KEYRING_PID naming the keyring daemon (a test may kill it to simulate a
# dead service); stops both daemons afterwards. Exit: COMMAND's status,
# or 3 when the keyring could not be set up.
# Packages: dbus-daemon dbus-bin gnome-keyring libsecret-tools.
set -u
[ $# -ge 4 ] && [ "$3" = -- ] || { echo "usage: $0 USER PASSWORD -- COMMAND..." >&2; exit 2; }
user=$1 pass=$2
shift 3
tmp=$(mktemp -d)
bus_pid='' kr_pid=''
cleanup() {
    [ -n "$kr_pid" ] && kill "$kr_pid" 2>/dev/null && wait "$kr_pid" 2>/dev/null
    [ -n "$bus_pid" ] && kill "$bus_pid" 2>/dev/null && wait "$bus_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
die() { echo "keyring-session.sh: $*" >&2; [ -f "$tmp/kr.log" ] && cat "$tmp/kr.log" >&2; exit 3; }
for t in dbus-daemon gnome-keyring-daemon secret-tool dbus-send; do
    command -v "$t" >/dev/null || die "$t is missing (scripts/deps.sh --test installs it)"
done
mkdir -p "$tmp/home" "$tmp/run" "$tmp/data" "$tmp/config" && chmod 700 "$tmp/run"
export HOME=$tmp/home XDG_RUNTIME_DIR=$tmp/run XDG_DATA_HOME=$tmp/data XDG_CONFIG_HOME=$tmp/config
cat >"$tmp/bus.conf" <<CONF
<busconfig>
  <type>session</type>
  <listen>unix:path=$tmp/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
CONF
dbus-daemon --config-file="$tmp/bus.conf" --nofork --nopidfile 2>"$tmp/bus.log" &
bus_pid=$!
export DBUS_SESSION_BUS_ADDRESS=unix:path=$tmp/bus
for _ in $(seq 100); do [ -S "$tmp/bus" ] && break; sleep 0.05; done
[ -S "$tmp/bus" ] || die "dbus-daemon did not start"
# --unlock reads the login keyring's own password on stdin (it must not
# be empty) and creates that keyring unlocked, as secret-tool's default.
printf '%s' keyring-of-the-tests >"$tmp/unlock"
gnome-keyring-daemon --foreground --unlock --components=secrets <"$tmp/unlock" >"$tmp/kr.log" 2>&1 &
kr_pid=$!
for _ in $(seq 200); do
    dbus-send --session --print-reply --dest=org.freedesktop.DBus / \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null \
        | grep -q 'boolean true' && break
    sleep 0.05
done
printf '%s' "$pass" | timeout 10 secret-tool store --label=msmtpd host localhost service smtp user "$user" \
    || die "secret-tool store failed"
got=$(timeout 10 secret-tool lookup host localhost service smtp user "$user") || die "secret-tool lookup failed"
[ "$got" = "$pass" ] || die "the keyring gave back a different password"
export KEYRING_PID=$kr_pid
"$@"
