#!/bin/bash
# deps.sh - install what smtpipe needs to build (and, with --test, to test)
#
# Usage: scripts/deps.sh [--build|--test]
# Debian packages only, installed with apt-get when missing (run as root
# on a fresh Debian 12 machine). Quiet unless something fails.
set -euo pipefail

build_pkgs=(gcc make cmake pkg-config libc6-dev libgnutls28-dev libsecret-1-dev libcmocka-dev
    libcrypt-dev)
test_pkgs=(python3 swaks libnet-ssleay-perl libdigest-hmac-perl msmtp curl gnutls-bin openssl
    mailutils dbus-daemon dbus-bin gnome-keyring libsecret-tools clang-14 libclang-rt-14-dev
    llvm-14 valgrind groff-base mandoc procps xinetd systemd fail2ban python3-pytest strace
    gcovr)

want=("${build_pkgs[@]}")
[ "${1:-}" = --test ] && want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# python3 may come from elsewhere (pyenv); all the tests need is smtplib
if [ ${#missing[@]} -gt 0 ] && command -v python3 >/dev/null && python3 -c 'import smtplib' 2>/dev/null; then
    missing=("${missing[@]/python3}")
fi
read -r -a missing <<<"${missing[*]}"
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || { echo "deps.sh: missing ${missing[*]}; run as root" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    log=$(mktemp)
    echo "deps.sh: installing ${missing[*]}" >&2
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
        apt-get update -q >>"$log" 2>&1 || true
        apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1 \
            || { cat "$log" >&2; echo "deps.sh: apt-get install failed" >&2; exit 1; }
    fi
    rm -f "$log"
fi
if [ "${1:-}" = --test ]; then
    here=$(cd "$(dirname "$0")" && pwd)
    "$here/../tests/tools/clients.sh" >/dev/null
fi
