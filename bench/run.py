#!/usr/bin/env python3
"""run.py - smtpipe and msmtpd side by side, interleaved, as ratios.

Usage: bench/run.sh [--quick]   (run.sh builds everything, then runs this)
Every case runs smtpipe and msmtpd alternately (A B A B ...) for ROUNDS
rounds and reports medians; the limits (what the unavoidable work costs)
and references (Postfix's smtp-sink) are measured in the same rounds.
Servers run as "nobody" when started as root. Never part of the tests.
"""
import math
import os
import platform
import pwd
import socket
import statistics
import subprocess
import sys
import tempfile
import time

QUICK = "--quick" in sys.argv
ROUNDS = 1 if QUICK else 5
B = os.environ["BENCH_BIN"]          # the benchmark's compiled tools
SMTPIPE = os.environ["BENCH_SMTPIPE"]
C = dict(l.split("=", 1) for l in os.environ["BENCH_CLIENTS"].splitlines() if "=" in l)
SINK = os.path.join(B, "sink")
NOBODY = pwd.getpwnam("nobody")
TMP = tempfile.mkdtemp(prefix="smtpipe-bench-")
# issue 18's opt-in: spare processes that serve up to 100 clients each
REUSE = ("--spare-sessions=4", "--session-reuse=100")
os.chmod(TMP, 0o777)


def as_nobody():
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY.pw_gid)
        os.setuid(NOBODY.pw_uid)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("port %d never opened" % port)


class Daemon:
    def __init__(self, kind, mailbox=None, extra=(), workers=1):
        self.kind = kind
        if kind == "prefork":  # the minimal server: one pre-forked process per client
            self.p = subprocess.Popen([os.path.join(B, "prefork_limit"), SINK, str(workers)],
                                      stdout=subprocess.PIPE, preexec_fn=as_nobody)
            self.port = int(self.p.stdout.readline())
        elif kind == "smtpipe":
            argv = [SMTPIPE, "--interface=127.0.0.1", "--port=0", "--max-message-size=200M",
                    "--max-sessions=64"] + list(extra)
            argv += [mailbox] if mailbox else ["--command=%s -f %%F --" % SINK]
            self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, preexec_fn=as_nobody)
            self.port = int(self.p.stdout.readline())
        elif kind == "msmtpd":
            self.port = free_port()
            self.p = subprocess.Popen([C["MSMTPD"], "--interface=127.0.0.1", "--port=%d" % self.port,
                                       "--command=%s -f %%F --" % SINK], preexec_fn=as_nobody)
            wait_port(self.port)
        else:  # smtp-sink: the reference that stores nothing
            self.port = free_port()
            self.p = subprocess.Popen([C["SMTP_SINK"], "-u", "nobody", "127.0.0.1:%d" % self.port, "256"])
            wait_port(self.port)

    def stop(self):
        self.p.terminate()
        self.p.wait()


def timed(argv):
    t = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=LIMIT_S)
    return time.monotonic() - t


def source_rate(port, msgs, sessions, per_session=False):
    argv = [C["SMTP_SOURCE"], "-s", str(sessions), "-m", str(msgs), "-l", "1024", "-f", "a@bench",
            "-t", "b@bench"] + (["-d"] if per_session else []) + ["127.0.0.1:%d" % port]
    return msgs / timed(argv)


def tool(name, *args):
    out = subprocess.run([os.path.join(B, name)] + [str(a) for a in args], check=True, timeout=LIMIT_S,
                         capture_output=True, text=True).stdout.split()
    return [float(x) for x in out]


LIMIT_S = 120  # no sample takes a tenth of this unless the server stalled
STALLS = []


def sample(what, fn, failed):
    """fn(), or the value `failed` (0 msg/s, infinite latency) and a note when the server
    stalled or broke the session: a stall is a result, and must not hang the run"""
    try:
        return fn()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        STALLS.append("%s: %s" % (what, type(e).__name__))
        print("bench: %s failed (%s); counted as %r" % (what, e, failed), file=sys.stderr)
        return failed


def pss_anon_kb(pid):
    total = 0
    pids = [pid] + [int(p) for p in open("/proc/%d/task/%d/children" % (pid, pid)).read().split()]
    for q in pids:
        with open("/proc/%d/smaps_rollup" % q) as f:
            for line in f:
                if line.startswith("Pss_Anon:"):
                    total += int(line.split()[1])
    return total


def memory(kind, extra=()):
    d = Daemon(kind, extra=extra)
    time.sleep(0.2)
    idle = pss_anon_kb(d.p.pid)
    with open("/proc/%d/status" % d.p.pid) as f:
        rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0]
    conns = []
    for _ in range(16):
        s = socket.create_connection(("127.0.0.1", d.port))
        s.recv(1024)
        s.sendall(b"EHLO bench\r\n")
        s.recv(4096)
        conns.append(s)
    time.sleep(0.3)
    busy = pss_anon_kb(d.p.pid)
    for s in conns:
        s.close()
    d.stop()
    return rss, idle, (busy - idle) / 16


def main():
    n1 = 200 if QUICK else 1000
    big = 20 if QUICK else 100
    lat = 100 if QUICK else 500
    r = {k: [] for k in ("s1", "s4", "sd", "m1", "m4", "md", "lim1", "lim2", "big_s", "big_m", "big_lim",
                         "sess_s", "sess_m", "sess_ref", "mbox_s", "mbox_sd", "mbox_ref", "append", "lat_s", "lat_m",
                         "pre1", "pre4", "pred", "pre_sess", "r1", "r4", "r_sess", "r_mbox", "r_lat")}
    for rnd in range(ROUNDS):
        for kind, a, b, c in (("smtpipe", "s1", "s4", "sd"), ("msmtpd", "m1", "m4", "md")):
            d = Daemon(kind)
            r[a].append(sample(kind + " case 1, 1 client", lambda: source_rate(d.port, n1, 1), 0.0))
            r[b].append(sample(kind + " case 1, 4 clients", lambda: source_rate(d.port, n1, 4), 0.0))
            r[c].append(sample(kind + " case 1, -d", lambda: source_rate(d.port, n1, 4, True), 0.0))
            d.stop()
        d = Daemon("smtpipe", extra=REUSE)
        r["r1"].append(sample("reuse case 1, 1 client", lambda: source_rate(d.port, n1, 1), 0.0))
        r["r4"].append(sample("reuse case 1, 4 clients", lambda: source_rate(d.port, n1, 4), 0.0))
        d.stop()
        # the minimal server, driven by the same client: as many workers as clients
        d = Daemon("prefork", workers=1)
        r["pre1"].append(sample("minimal server case 1, 1 client", lambda: source_rate(d.port, n1, 1), 0.0))
        d.stop()
        d = Daemon("prefork", workers=4)
        r["pre4"].append(sample("minimal server case 1, 4 clients", lambda: source_rate(d.port, n1, 4), 0.0))
        r["pred"].append(sample("minimal server case 1, -d", lambda: source_rate(d.port, n1, 4, True), 0.0))
        d.stop()
        r["lim1"].append(tool("spawn_limit", SINK, n1, 1)[0])
        r["lim2"].append(tool("spawn_limit", SINK, n1, 2)[0])
        for kind, key in (("smtpipe", "big_s"), ("msmtpd", "big_m")):
            d = Daemon(kind)
            r[key].append(sample(kind + " case 3", lambda: tool("bigclient", d.port, big)[0], 0.0))
            d.stop()
        sp = subprocess.Popen([os.path.join(B, "spool_limit"), SINK], stdout=subprocess.PIPE)
        r["big_lim"].append(tool("bigclient", int(sp.stdout.readline()), big)[0])
        sp.kill()
        sp.wait()
        for kind, key, extra in (("smtpipe", "sess_s", ()), ("msmtpd", "sess_m", ()), ("sink", "sess_ref", ()),
                                 ("prefork", "pre_sess", ()), ("smtpipe", "r_sess", REUSE)):
            d = Daemon(kind, workers=4, extra=extra)
            r[key].append(sample(kind + " case 4", lambda: tool("sessions", d.port, 4, 2 if QUICK else 5)[0],
                                 0.0))
            d.stop()
        box = os.path.join(TMP, "bench.mbox")
        d = Daemon("smtpipe", mailbox=box)
        r["mbox_s"].append(sample("smtpipe case 6", lambda: source_rate(d.port, n1, 4), 0.0))
        r["mbox_sd"].append(sample("smtpipe case 6, -d", lambda: source_rate(d.port, n1, 4, True), 0.0))
        d.stop()
        os.unlink(box)
        d = Daemon("smtpipe", mailbox=box, extra=REUSE)
        r["r_mbox"].append(sample("reuse case 6", lambda: source_rate(d.port, n1, 4), 0.0))
        d.stop()
        os.unlink(box)
        d = Daemon("sink")
        r["mbox_ref"].append(sample("smtp-sink case 6", lambda: source_rate(d.port, n1, 4), 0.0))
        d.stop()
        r["append"].append(tool("append_limit", os.path.join(TMP, "append.mbox"), n1)[0])
        os.unlink(os.path.join(TMP, "append.mbox"))
        for kind, key, extra in (("smtpipe", "lat_s", ()), ("msmtpd", "lat_m", ()), ("smtpipe", "r_lat", REUSE)):
            d = Daemon(kind, extra=extra)
            r[key].append(sample(kind + " case 7", lambda: tool("latency", d.port, lat), [math.inf] * 2))
            d.stop()
    med = {k: statistics.median(v) for k, v in r.items() if v and not isinstance(v[0], list)}
    lat_s = [statistics.median(x[i] for x in r["lat_s"]) for i in (0, 1)]
    lat_m = [statistics.median(x[i] for x in r["lat_m"]) for i in (0, 1)]
    lat_r = [statistics.median(x[i] for x in r["r_lat"]) for i in (0, 1)]
    # a process's anonymous PSS moves by a page from one start to the next (the stack's
    # random offset within its page decides whether a session's frames cross one more page
    # boundary), so each figure is the median of several daemons, alternating
    mems = {"s": [], "m": [], "r": []}
    for _ in range(3 if QUICK else 7):
        mems["s"].append(memory("smtpipe"))
        mems["m"].append(memory("msmtpd"))
        mems["r"].append(memory("smtpipe", REUSE))
    mem_s, mem_m, mem_r = ([statistics.median(x[i] for x in mems[k]) for i in (0, 1, 2)]
                           for k in ("s", "m", "r"))

    def pct(a, b):
        return "%.0f%%" % (100.0 * a / b) if b else "-"

    def met(ok):
        return "yes" if ok else "**no**"

    rows = [
        ("1. 1 KB, 1 session/msg, 1 client (msg/s)", med["s1"], med["m1"], med["lim1"],
         pct(med["s1"], med["lim1"]), pct(med["m1"], med["lim1"]), ">= 85%", met(med["s1"] >= 0.85 * med["lim1"])),
        ("1. 1 KB, 1 session/msg, 4 clients (msg/s)", med["s4"], med["m4"], med["lim2"],
         pct(med["s4"], med["lim2"]), pct(med["m4"], med["lim2"]), ">= 75%", met(med["s4"] >= 0.75 * med["lim2"])),
        ("1. 1 KB, many msgs/session, 4 clients (msg/s)", med["sd"], med["md"], med["lim2"],
         pct(med["sd"], med["lim2"]), pct(med["md"], med["lim2"]), "", ""),
        ("1. 1 session/msg, 1 client, against the minimal server", med["s1"], med["m1"], med["pre1"],
         pct(med["s1"], med["pre1"]), pct(med["m1"], med["pre1"]), ">= 85%", met(med["s1"] >= 0.85 * med["pre1"])),
        ("1. 1 session/msg, 4 clients, against the minimal server", med["s4"], med["m4"], med["pre4"],
         pct(med["s4"], med["pre4"]), pct(med["m4"], med["pre4"]), ">= 75%", met(med["s4"] >= 0.75 * med["pre4"])),
        ("1. many msgs/session, 4 clients, against the minimal server", med["sd"], med["md"], med["pred"],
         pct(med["sd"], med["pred"]), pct(med["md"], med["pred"]), ">= 95%", met(med["sd"] >= 0.95 * med["pred"])),
        ("3. %d MB message (MB/s)" % big, med["big_s"], med["big_m"], med["big_lim"],
         pct(med["big_s"], med["big_lim"]), pct(med["big_m"], med["big_lim"]), ">= 85%",
         met(med["big_s"] >= 0.85 * med["big_lim"])),
        ("4. EHLO+QUIT sessions/s, 4 clients", med["sess_s"], med["sess_m"], med["sess_ref"],
         pct(med["sess_s"], med["sess_ref"]), pct(med["sess_m"], med["sess_ref"]), ">= 40%",
         met(med["sess_s"] >= 0.40 * med["sess_ref"])),
        ("4. EHLO+QUIT, 4 clients, against the minimal server", med["sess_s"], med["sess_m"], med["pre_sess"],
         pct(med["sess_s"], med["pre_sess"]), pct(med["sess_m"], med["pre_sess"]), "", ""),
        ("6. mbox, 1 KB, 1 session/msg, 4 clients (msg/s)", med["mbox_s"], None, med["append"],
         pct(med["mbox_s"], med["append"]), "-", ">= 50%",
         met(med["mbox_s"] >= 0.50 * med["append"])),
        ("6. mbox, 1 KB, 4 sessions, many msgs each (msg/s)", med["mbox_sd"], None, med["append"],
         pct(med["mbox_sd"], med["append"]), "-", ">= 50%",
         met(med["mbox_sd"] >= 0.50 * med["append"])),
        ("6. 1 session/msg against smtp-sink (msg/s)", med["mbox_s"], None, med["mbox_ref"],
         pct(med["mbox_s"], med["mbox_ref"]), "-", "", ""),
        ("7. latency '.' to 250, p50 (ms)", lat_s[0], lat_m[0], None, "", "", "<= msmtpd",
         met(lat_s[0] <= lat_m[0])),
        ("7. latency '.' to 250, p99 (ms)", lat_s[1], lat_m[1], None, "", "", "< 2 ms", met(lat_s[1] < 2.0)),
        ("R. --session-reuse: 1 session/msg, 1 client, against the minimal server", med["r1"], med["m1"],
         med["pre1"], pct(med["r1"], med["pre1"]), pct(med["m1"], med["pre1"]), ">= 85%",
         met(med["r1"] >= 0.85 * med["pre1"])),
        ("R. --session-reuse: 1 session/msg, 4 clients, against the minimal server", med["r4"], med["m4"],
         med["pre4"], pct(med["r4"], med["pre4"]), pct(med["m4"], med["pre4"]), ">= 75%",
         met(med["r4"] >= 0.75 * med["pre4"])),
        ("R. --session-reuse: EHLO+QUIT sessions/s, 4 clients", med["r_sess"], med["sess_m"], med["sess_ref"],
         pct(med["r_sess"], med["sess_ref"]), pct(med["sess_m"], med["sess_ref"]), ">= 30%",
         met(med["r_sess"] >= 0.30 * med["sess_ref"])),
        ("R. --session-reuse: mbox, 1 session/msg, 4 clients (msg/s)", med["r_mbox"], None, med["append"],
         pct(med["r_mbox"], med["append"]), "-", ">= 60%", met(med["r_mbox"] >= 0.60 * med["append"])),
        ("R. --session-reuse: latency '.' to 250, p99 (ms)", lat_r[1], lat_m[1], None, "", "", "<= default",
         met(lat_r[1] <= lat_s[1] * 1.1)),
        ("R. --session-reuse: idle daemon anon PSS (kB)", mem_r[1], mem_m[1], None, "", "", "", ""),
        ("R. --session-reuse: anon PSS per extra session (kB, 16 open)", mem_r[2], mem_m[2], None, "", "",
         "<= msmtpd", met(mem_r[2] <= mem_m[2])),
        ("5. idle daemon RSS (kB)", mem_s[0], mem_m[0], None, "", "", "", ""),
        ("5. idle daemon anon PSS (kB)", mem_s[1], mem_m[1], None, "", "", "", ""),
        ("5. anon PSS per extra session (kB, 16 open)", mem_s[2], mem_m[2], None, "", "", "<= msmtpd",
         met(mem_s[2] <= mem_m[2])),
    ]

    def f(x):
        return "-" if x is None else ("%.1f" % x if x < 100 else "%.0f" % x if x < math.inf else "stalled")

    out = ["Run: `bash bench/run.sh%s` on %s, %d cores (nproc), %s; %d round(s), medians."
           % (" --quick" if QUICK else "", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), len(os.sched_getaffinity(0)),
              platform.platform(), ROUNDS), "",
           "| case | smtpipe | msmtpd | limit / reference | smtpipe ratio | msmtpd ratio | target | met |",
           "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for row in rows:
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s |"
                   % (row[0], f(row[1]), f(row[2]), f(row[3]), row[4], row[5], row[6], row[7]))
    out += ["", "Limits: case 1 = posix_spawn of the sink with the message on stdin (bench/spawn_limit.c, "
            "serial for 1 client, 2 workers for 4); case 3 = the same client against a minimal server that "
            "spools the decoded bytes and hands the file to the sink (bench/spool_limit.c); case 4 and 6 = "
            "Postfix's smtp-sink; case 6 = open, lock, append 1 KB, fsync (bench/append_limit.c). "
            "The minimal server (rows 'against the minimal server', issue 18's targets) = the same client "
            "against a server with canned replies that spools each message into an unlinked file and spawns "
            "the same sink with it, one pre-forked process per client, each serving one connection at a "
            "time (bench/prefork_limit.c). "
            "The clients (smtp-source, bench/*.c) share the same cores as the servers; the limits do not "
            "run a client. Rows 'R.' run smtpipe with %s (issue 18's opt-in: spare processes that "
            "each serve up to 100 clients one after another); the others with the defaults." % " ".join(REUSE)]
    if STALLS:
        out += ["", "Failed samples (counted as 0 msg/s or infinite latency): " + "; ".join(STALLS) + "."]
    text = "\n".join(out)
    print(text)
    # a smoke run must not replace the table of record
    dest = (os.path.join(os.path.dirname(B), "results-quick.md") if QUICK else
            os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.md"))
    with open(dest, "w") as fh:
        fh.write(text + "\n")


if __name__ == "__main__":
    main()
