#!/usr/bin/env python3
"""dirty_pages.py - which pages a session process has of its own, and what is on them.

Usage: python3 bench/dirty_pages.py SMTPIPE [OPTION...]

Starts SMTPIPE (with OPTION..., e.g. --spare-sessions=1) on a loopback port, opens one
session and says EHLO, then walks the session process's writable mappings in
/proc/PID/pagemap: a page that is present and exclusive to the process is one the session
wrote (or faulted in) after the fork. Pages of smtpipe's own .data/.bss are named by the
symbols on them (nm), the others by their mapping. Needs root (pagemap's flags). A static
that lands on a page of its own costs every session 4 kB: this is how session.c's
page-aligned struct was found (bench/profile.md). Never part of the tests.
"""
import collections
import socket
import struct
import subprocess
import sys
import time


def symbols(binary):
    """(address, size, name) of every data and bss symbol"""
    out = subprocess.run(["nm", "-S", "-n", binary], capture_output=True, text=True).stdout
    syms = []
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "bBdD":
            syms.append((int(f[0], 16), int(f[1], 16), f[3]))
    return syms


def own_pages(pid):
    """[(offset in the binary, or the mapping's name)] of pid's exclusive pages"""
    base, pages = None, []
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/pagemap" % pid, "rb") as pm:
        for line in maps:
            f = line.split()
            start, end = (int(x, 16) for x in f[0].split("-"))
            name = f[5] if len(f) > 5 else "anon"
            if base is None and name.endswith("smtpipe"):
                base = start - int(f[2], 16)
            if "w" not in f[1]:
                continue
            for page in range(start, end, 4096):
                pm.seek(page // 4096 * 8)
                v = struct.unpack("Q", pm.read(8))[0]
                if v >> 63 & 1 and v >> 56 & 1:  # present, exclusively mapped
                    own = base is not None and 0 <= page - base < 0x400000 and name in (
                        "anon", sys.argv[1]) or name.endswith("smtpipe")
                    pages.append(page - base if own else name)
    return pages


def main():
    binary = sys.argv[1]
    p = subprocess.Popen([binary, "--interface=127.0.0.1", "--port=0", "--command=/bin/true"]
                         + sys.argv[2:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        port = int(p.stdout.readline())
        s = socket.create_connection(("127.0.0.1", port))
        s.recv(1000)
        s.sendall(b"EHLO bench\r\n")
        s.recv(4000)
        time.sleep(0.3)  # the session is idle, waiting for its next command
        with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
            kids = [int(k) for k in f.read().split()]
        session = [k for k in kids if open("/proc/%d/wchan" % k).read() != "do_epoll_wait"][0]
        pages = own_pages(session)
        s.close()
    finally:
        p.terminate()
        p.wait()
    syms = symbols(binary)
    named = [o for o in pages if isinstance(o, int)]
    print("%d pages of the session's own" % len(pages))
    for off in named:
        on = [n for a, size, n in syms if a < off + 4096 and a + max(size, 1) > off]
        print("  smtpipe +%x: %s" % (off, " ".join(on[:10])))
    for name, n in sorted(collections.Counter(o for o in pages if isinstance(o, str)).items()):
        print("  %s: %d" % (name, n))


if __name__ == "__main__":
    main()
