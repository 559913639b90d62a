#!/usr/bin/env python3
"""ab.py - two smtpipe binaries side by side on the per-session cases.

Usage: BENCH_BIN=DIR BENCH_CLIENTS="$(tests/tools/clients.sh DIR)" \\
       python3 bench/ab.py A_SMTPIPE B_SMTPIPE [ROUNDS]
(run.sh's build leaves BENCH_BIN in build-bench/bench.) Cases: one 1 KB message
per session with 1 and 4 clients (smtp-source), EHLO+QUIT with 4 clients
(bench/sessions). Each round runs A and B on every case, alternating which goes
first; each daemon runs under `perf stat` (it follows the forked sessions and
their delivery commands), which gives CPU time and page faults per session (and
/proc/PID/schedstat the daemon's own share: accept, fork, reap): on
shared cores these move much less than rates do. A daemon started and stopped
with no client is measured too, and its cost taken off. Prints medians and
B/A. Never part of the tests.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

B = os.environ["BENCH_BIN"]
C = dict(l.split("=", 1) for l in os.environ["BENCH_CLIENTS"].splitlines() if "=" in l)
SINK = os.path.join(B, "sink")
TMP = tempfile.mkdtemp(prefix="smtpipe-ab-")
N = 600  # messages per sample
SECONDS = 2  # EHLO+QUIT sample


def daemon_ns(perf_pid):
    """CPU time of the daemon process alone (not its sessions), from schedstat"""
    with open("/proc/%d/task/%d/children" % (perf_pid, perf_pid)) as f:
        pid = int(f.read().split()[0])  # setpriv exec'd smtpipe
    with open("/proc/%d/schedstat" % pid) as f:
        return int(f.read().split()[0])


def run_case(binary, case):
    """one daemon under perf stat through one case: (rate, sessions, cpu ms, faults, daemon ms)"""
    stat = os.path.join(TMP, "stat")
    argv = ["perf", "stat", "-x,", "-e", "task-clock,page-faults", "-o", stat, "--",
            "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", binary,
            "--interface=127.0.0.1", "--port=0", "--max-message-size=200M", "--max-sessions=64",
            "--command=%s -f %%F --" % SINK]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE)
    port = int(p.stdout.readline())
    rate, n = 0.0, 0
    t = time.monotonic()
    if case in ("1 client", "4 clients"):
        s = 1 if case == "1 client" else 4
        subprocess.run([C["SMTP_SOURCE"], "-s", str(s), "-m", str(N), "-l", "1024", "-f", "a@bench",
                        "-t", "b@bench", "127.0.0.1:%d" % port], check=True, timeout=120,
                       stdout=subprocess.DEVNULL)
        n, rate = N, N / (time.monotonic() - t)
    elif case == "EHLO+QUIT":
        out = subprocess.run([os.path.join(B, "sessions"), str(port), "4", str(SECONDS)], check=True,
                             timeout=120, capture_output=True, text=True).stdout.split()
        rate, n = float(out[0]), int(out[1])
    time.sleep(0.1)  # the last session reaps its command and exits
    own = daemon_ns(p.pid) / 1e6
    subprocess.run(["pkill", "-TERM", "-P", str(p.pid)], check=False)  # setpriv exec'd smtpipe
    p.wait(timeout=60)
    v = {}
    with open(stat) as f:
        for line in f:
            x = line.strip().split(",")
            if len(x) > 3 and x[0] and x[0][0].isdigit():
                v[x[2]] = float(x[0])
    return rate, n, v["task-clock"], v["page-faults"], own


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    bins = {"A": sys.argv[1], "B": sys.argv[2]}
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    cases = ("1 client", "4 clients", "EHLO+QUIT")
    res = {(k, c): [] for k in bins for c in cases}
    for rnd in range(rounds):
        order = ("A", "B") if rnd % 2 == 0 else ("B", "A")
        for c in cases:
            for k in order:
                _, _, cpu0, pf0, own0 = run_case(bins[k], "idle")
                rate, n, cpu, pf, own = run_case(bins[k], c)
                res[(k, c)].append((rate, (cpu - cpu0) * 1000 / n, (pf - pf0) / n, (own - own0) * 1000 / n))
        print("round %d of %d done" % (rnd + 1, rounds), file=sys.stderr)
    print("A = %s, B = %s; %d rounds, medians; CPU and page faults of the daemon, its sessions and "
          "their commands, per session" % (bins["A"], bins["B"], rounds))
    print()
    print("| case | rate A | rate B | B/A | CPU us A | CPU us B | B/A | faults A | faults B "
          "| daemon us A | daemon us B |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c in cases:
        a = [statistics.median(x[i] for x in res[("A", c)]) for i in range(4)]
        b = [statistics.median(x[i] for x in res[("B", c)]) for i in range(4)]
        print("| %s | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f | %.1f | %.1f | %.0f | %.0f |"
              % (c, a[0], b[0], b[0] / a[0], a[1], b[1], b[1] / a[1], a[2], b[2], a[3], b[3]))


if __name__ == "__main__":
    main()
