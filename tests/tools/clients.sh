#!/bin/bash
# clients.sh - real SMTP peers for the tests, without installing an MTA
#
# Usage: eval "$(tests/tools/clients.sh [CACHE_DIR])"
# Unpacks Debian's postfix (smtp-source, smtp-sink) and msmtp-mta
# (msmtpd, the reference server) with apt-get download + dpkg -x into
# CACHE_DIR (default ~/.cache/smtpipe-clients): installing them would
# take over /usr/sbin/sendmail. Installs swaks, msmtp and curl with
# apt-get when missing (as root). Prints SWAKS= MSMTP= CURL= SMTP_SOURCE=
# SMTP_SINK= MSMTPD= lines. Tests run it in parallel: one at a time
# holds the cache (and apt's lock).
set -euo pipefail
cache=${1:-${SMTPIPE_CLIENTS:-$HOME/.cache/smtpipe-clients}}
mkdir -p "$cache/bin"
exec 9>"$cache/.lock"
flock 9
unpack() { # package, file that shows it is there
    [ -e "$cache/root/$2" ] && return 0
    local tmp
    tmp=$(mktemp -d)
    if ! (cd "$tmp" && apt-get download "$1" >/dev/null 2>&1); then
        apt-get update -q >/dev/null 2>&1 || true
        (cd "$tmp" && apt-get download "$1" >/dev/null 2>&1) \
            || { echo "clients.sh: cannot download $1" >&2; exit 1; }
    fi
    dpkg -x "$tmp"/*.deb "$cache/root"
    rm -rf "$tmp"
}
# the clients Debian installs cleanly, and the shared libraries the
# unpacked programs need
need=()
for p in swaks libnet-ssleay-perl libdigest-hmac-perl msmtp curl \
    libdb5.3 libicu72 libnsl2 libsasl2-2 libssl3 libsecret-1-0 libgsasl18 libgnutls30; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || { echo "clients.sh: missing ${need[*]}; install them as root" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
             --no-install-recommends "${need[@]}" >/dev/null; }
fi
unpack postfix usr/sbin/smtp-source
unpack msmtp-mta usr/bin/msmtpd
lib="$cache/root/usr/lib/postfix"
for p in smtp-source smtp-sink; do
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec %s "$@"\n' \
        "$lib" "$cache/root/usr/sbin/$p" >"$cache/bin/$p"
    chmod +x "$cache/bin/$p"
done
ln -sf "$cache/root/usr/bin/msmtpd" "$cache/bin/msmtpd"
for t in smtp-source smtp-sink; do
    if LD_LIBRARY_PATH=$lib ldd "$cache/root/usr/sbin/$t" | grep -q 'not found'; then
        echo "clients.sh: $t misses libraries" >&2; exit 1
    fi
done
echo "SWAKS=$(command -v swaks)"
echo "MSMTP=$(command -v msmtp)"
echo "CURL=$(command -v curl)"
echo "SMTP_SOURCE=$cache/bin/smtp-source"
echo "SMTP_SINK=$cache/bin/smtp-sink"
echo "MSMTPD=$cache/bin/msmtpd"
