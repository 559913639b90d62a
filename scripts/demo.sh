#!/bin/bash
# demo.sh - build smtpipe and run it on 127.0.0.1:2525 in the foreground
#
# Each message it accepts is appended to ./smtpipe-demo.mbox and logged
# on this terminal. Stop it with Ctrl-C.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/deps.sh" --build
log=$(mktemp)
# quiet when it works; the compiler's words when it does not
if ! { cmake -S "$top" -B "$top/build" -DSMTPIPE_BUILD_TESTS=OFF && cmake --build "$top/build" -j2; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "demo.sh: the build failed (above)" >&2
    exit 1
fi
rm -f "$log"
mbox=$PWD/smtpipe-demo.mbox
cat <<TXT
smtpipe listens on 127.0.0.1:2525; every message is appended to $mbox.
Send one from another terminal:
  python3 -c 'import smtplib; smtplib.SMTP("127.0.0.1", 2525).sendmail("me@example.org", ["you@example.org"], "Subject: hello\n\nIt works.\n")'
Then read it:  cat $mbox
TXT
exec "$top/build/smtpipe" --interface=127.0.0.1 --port=2525 --log=stderr --mailbox="$mbox"
