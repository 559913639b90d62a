#!/bin/bash
# keyring-session.sh - run a command beside a real, private Secret Service
#
# Usage: tests/tools/keyring-session.sh USER PASSWORD -- COMMAND [ARGS...]
#
# Starts a private D-Bus session bus (a minimal config: no service
# auto-activation, so nothing else can answer) and gnome-keyring-daemon
# (secrets component only, in the foreground, its login keyring created
# unlocked) on it, with HOME and the XDG dirs in a temporary directory.
# Stores PASSWORD the way msmtpd's manual says:
#     secret-tool store --label=msmtpd host localhost service smtp user USER
# reads it back, then runs COMMAND with DBUS_SESSION_BUS_ADDRESS set and
# KEYRING_PID naming the keyring daemon (a test may kill it: a dead
# service on a live bus). Both daemons are stopped by PID and reaped at
# the end; TERM or INT is passed on to COMMAND first.
#
# Environment:
#   KEYRING_ATTRS=network  store with the old network attributes instead
#                          (user USER server localhost protocol smtp)
#   KEYRING_LOCK=1         lock the login keyring before COMMAND runs
#
# Exit: COMMAND's status; 2 on usage; 3 when the keyring could not be set
# up (with the daemons' logs on stderr).
# Packages: dbus-daemon dbus-bin gnome-keyring libsecret-tools.
set -u
[ $# -ge 4 ] && [ "$3" = -- ] || { echo "usage: $0 USER PASSWORD -- COMMAND..." >&2; exit 2; }
user=$1 pass=$2
shift 3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/keyring-session.XXXXXX") || exit 3
bus_pid='' kr_pid='' cmd_pid=''

# stop - end one daemon of ours (by PID) and reap it
stop() {
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
cleanup() {
    stop "$kr_pid"
    stop "$bus_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

die() {
    echo "keyring-session.sh: $*" >&2
    for f in "$tmp"/*.log; do [ -s "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }; done
    exit 3
}

# has_owner NAME - true when NAME is owned on our bus
has_owner() {
    dbus-send --session --print-reply --dest=org.freedesktop.DBus / \
        org.freedesktop.DBus.NameHasOwner "string:$1" 2>/dev/null | grep -q 'boolean true'
}

for t in dbus-daemon dbus-send gnome-keyring-daemon secret-tool; do
    command -v "$t" >/dev/null || die "$t is missing (scripts/deps.sh --test installs it)"
done
mkdir -p "$tmp/home" "$tmp/run" "$tmp/data" "$tmp/config" && chmod 700 "$tmp/run" || die "no temp dir"
export HOME=$tmp/home XDG_RUNTIME_DIR=$tmp/run XDG_DATA_HOME=$tmp/data XDG_CONFIG_HOME=$tmp/config

# The bus: our own socket, no activation of anything, anyone may talk.
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
for _ in $(seq 200); do [ -S "$tmp/bus" ] && break; sleep 0.05; done
[ -S "$tmp/bus" ] || die "dbus-daemon did not start within 10 s"

# The keyring: --unlock reads the new login keyring's password on stdin
# (not empty) and leaves it unlocked; --foreground keeps it our child.
printf '%s' password-of-the-test-keyring >"$tmp/unlock"
gnome-keyring-daemon --foreground --unlock --components=secrets <"$tmp/unlock" \
    >"$tmp/keyring.log" 2>&1 &
kr_pid=$!
for _ in $(seq 200); do has_owner org.freedesktop.secrets && break; sleep 0.05; done
has_owner org.freedesktop.secrets || die "gnome-keyring-daemon did not own org.freedesktop.secrets within 10 s"

if [ "${KEYRING_ATTRS:-msmtp}" = network ]; then
    attrs=(user "$user" server localhost protocol smtp)
else
    attrs=(host localhost service smtp user "$user")
fi
printf '%s' "$pass" | timeout 10 secret-tool store --label=msmtpd "${attrs[@]}" \
    2>"$tmp/store.log" || die "secret-tool store failed"
got=$(timeout 10 secret-tool lookup "${attrs[@]}" 2>"$tmp/lookup.log") \
    || die "secret-tool lookup failed"
[ "$got" = "$pass" ] || die "the keyring gave back another password than it was given"

if [ "${KEYRING_LOCK:-0}" = 1 ]; then
    timeout 10 dbus-send --session --print-reply --dest=org.freedesktop.secrets \
        /org/freedesktop/secrets org.freedesktop.Secret.Service.Lock \
        array:objpath:/org/freedesktop/secrets/collection/login >"$tmp/lock.log" 2>&1 \
        || die "cannot lock the login keyring"
    # a locked keyring answers a lookup with nothing at all
    ! timeout 10 secret-tool lookup "${attrs[@]}" >/dev/null 2>&1 \
        || die "the keyring still gives the password out after Lock"
fi

# COMMAND in the background (stdin kept), so that TERM or INT reaches us
# at once and is passed on.
export KEYRING_PID=$kr_pid
trap 'kill -TERM "$cmd_pid" 2>/dev/null' TERM INT
"$@" <&0 &
cmd_pid=$!
while :; do
    wait "$cmd_pid"
    rc=$?
    kill -0 "$cmd_pid" 2>/dev/null || break # wait was cut short by a signal
done
exit "$rc"
