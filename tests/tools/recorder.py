#!/usr/bin/env python3
"""recorder.py - a delivery command that records what it was given.

Usage (as smtpipe's --command): recorder.py DIR [--exit N] [--sleep S]
[--signal SIG] [--noread] [--stdout TEXT] -- ARGS...
Writes DIR/NNNN.json (argv, SMTPIPE_SENDER) and DIR/NNNN.msg (stdin
bytes) for each delivery, then exits N (default 0), or sleeps, or kills
itself with a signal. Everything after "--" is recorded as argv too
(the template's "-f %F --" and the recipients smtpipe appended).
"""
import json
import os
import signal
import sys
import time


def main():
    # before this script opens anything: what the command inherited
    fds = sorted(int(x) for x in os.listdir("/proc/self/fd"))
    args = sys.argv[1:]
    outdir = args.pop(0)
    code, sleep, sig, noread, say = 0, 0.0, None, False, None
    while args and args[0] != "--" and args[0].startswith("--"):
        opt = args.pop(0)
        if opt == "--exit":
            code = int(args.pop(0))
        elif opt == "--sleep":
            sleep = float(args.pop(0))
        elif opt == "--signal":
            sig = int(args.pop(0))
        elif opt == "--noread":
            noread = True
        elif opt == "--stdout":
            say = args.pop(0)
    data = b"" if noread else sys.stdin.buffer.read()
    os.makedirs(outdir, exist_ok=True)
    # one number per delivery, taken atomically
    n = 0
    while True:
        try:
            fd = os.open(os.path.join(outdir, "%06d.json" % n), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            n += 1
    with open(os.path.join(outdir, "%06d.msg" % n), "wb") as f:
        f.write(data)
    with os.fdopen(fd, "w") as f:
        json.dump({"argv": sys.argv[1:], "sender_env": os.environ.get("SMTPIPE_SENDER"),
                   "fds": fds}, f)
    if say:
        print(say, flush=True)
        print(say + " (stderr)", file=sys.stderr, flush=True)
    if sleep:
        time.sleep(sleep)
    if sig:
        os.kill(os.getpid(), sig)
    sys.exit(code)


if __name__ == "__main__":
    main()
