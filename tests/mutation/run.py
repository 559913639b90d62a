#!/usr/bin/env python3
"""run.py - put one deliberate bug at a time into a copy of smtpipe and
check that the suite catches it

Usage: tests/mutation/run.py [--only N,M,...] [--jobs N] [--keep] [--list]

The tree is copied to a temporary directory and built there once
(tests on, RelWithDebInfo); the selections the mutations name are run
against the unmutated copy first and must all pass. Then each mutation
of mutations.py is applied alone: its snippet must occur exactly once
in its file (else "no longer applies"), the smtpipe binary and the
test binaries it needs are rebuilt, and its tests are run; a failing
test catches it. The file is restored before the next one. The last
line is "N of M mutations caught"; the exit status is 0 only when every
mutation was caught (1 otherwise, 2 when the baseline fails).

Run by hand, or by scripts/test.sh when SMTPIPE_MUTATION=1; not part
of ctest (a full run rebuilds about 35 times).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from mutations import MUTATIONS  # noqa: E402

TEST_TIMEOUT = 600


def copy_tree(dst):
    """The source tree without builds, VCS data and caches."""
    def ignore(d, names):
        skip = {".git", "fuzz-out", "__pycache__"}
        return [n for n in names if n in skip or (d == TOP and n.startswith("build"))]
    shutil.copytree(TOP, dst, ignore=ignore, symlinks=True)


def targets_for(tests):
    t = {"smtpipe"}
    for sel in tests:
        if sel.startswith("unit."):
            t.add(sel[len("unit."):])
        else:
            t.add("failsync")
    return sorted(t)


def build(tree, targets, jobs):
    r = subprocess.run(["cmake", "--build", os.path.join(tree, "build"), "-j%d" % jobs,
                        "--target"] + targets, capture_output=True, text=True)
    return r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def kill_leftovers(build_dir):
    """SIGKILL what a mutated binary left running (a session that spins
    or hangs outlives its test): every process whose executable is in
    this run's own build directory."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            exe = os.readlink("/proc/%s/exe" % p)
        except OSError:
            continue
        if exe.startswith(build_dir + os.sep):
            try:
                os.kill(int(p), 9)
            except OSError:
                pass


def run_selection(tree, sel):
    """True when the selection passes."""
    b = os.path.join(tree, "build")
    if sel.startswith("unit."):
        argv = ["ctest", "--test-dir", b, "--output-on-failure", "-R", "^%s$" % sel.replace(".", r"\.")]
        env = dict(os.environ)
    else:
        name, _, which = sel.partition(":")
        argv = [sys.executable, os.path.join(tree, "tests", "integration", name)]
        if which:
            argv.append(which)
        env = dict(os.environ, SMTPIPE=os.path.join(b, "smtpipe"),
                   SMTPIPE_FAILSYNC=os.path.join(b, "tests", "failsync"),
                   SMTPIPE_SOURCE_DIR=tree, SMTPIPE_BUILD_DIR=b, PYTHONDONTWRITEBYTECODE="1")
    try:
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=TEST_TIMEOUT,
                           cwd=b)
    except subprocess.TimeoutExpired:
        kill_leftovers(b)
        return False, "timed out after %d s" % TEST_TIMEOUT
    kill_leftovers(b)
    out = r.stdout + r.stderr
    if sel.startswith("unit.") and "No tests were found" in out:
        return False, "no such ctest test: " + sel
    return r.returncode == 0, out[-4000:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated mutation numbers (1-based)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the temporary tree")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument("--verbose", action="store_true", help="show the output of failing tests")
    args = ap.parse_args()

    chosen = list(enumerate(MUTATIONS, 1))
    if args.only:
        want = {int(x) for x in args.only.split(",")}
        chosen = [(i, m) for i, m in chosen if i in want]
    if args.list:
        for i, m in chosen:
            print("%2d %-20s %s  [%s]" % (i, m["file"], m["promise"], " ".join(m["tests"])))
        return 0

    tmp = tempfile.mkdtemp(prefix="smtpipe-mutation-")
    tree = os.path.join(tmp, "tree")
    try:
        copy_tree(tree)
        r = subprocess.run(["cmake", "-S", tree, "-B", os.path.join(tree, "build"),
                            "-DSMTPIPE_BUILD_TESTS=ON", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout + r.stderr)
            print("run.py: cmake failed")
            return 2
        alltargets = sorted({t for _, m in chosen for t in targets_for(m["tests"])})
        ok, out = build(tree, alltargets, args.jobs)
        if not ok:
            print(out)
            print("run.py: the unmutated tree does not build")
            return 2
        # the baseline: every selection passes before any mutation
        for sel in sorted({s for _, m in chosen for s in m["tests"]}):
            ok, out = run_selection(tree, sel)
            if not ok:
                print(out)
                print("run.py: baseline: %s fails without any mutation" % sel)
                return 2
        print("baseline: %d selections pass on the unmutated tree" %
              len({s for _, m in chosen for s in m["tests"]}), flush=True)

        caught, results = 0, []
        for i, m in chosen:
            t0 = time.time()
            # one mutation may need several edits (a promise held twice)
            edits = [(m["file"], m["find"], m["repl"])] + [tuple(e) for e in m.get("also", [])]
            origs, n = {}, 1
            for file, find, _ in edits:
                path = os.path.join(tree, file)
                if path not in origs:
                    with open(path) as f:
                        origs[path] = f.read()
                if origs[path].count(find) != 1:
                    n = origs[path].count(find)
            if n != 1:
                verdict, detail = "no longer applies", "snippet found %d times" % n
            else:
                texts = dict(origs)
                for file, find, repl in edits:
                    path = os.path.join(tree, file)
                    texts[path] = texts[path].replace(find, repl)
                for path, text in texts.items():
                    with open(path, "w") as f:
                        f.write(text)
                try:
                    ok, out = build(tree, targets_for(m["tests"]), args.jobs)
                    if not ok:
                        verdict, detail = "does not build", out
                    else:
                        verdict, detail = "SURVIVED", ""
                        for sel in m["tests"]:
                            passed, out = run_selection(tree, sel)
                            if not passed:
                                verdict, detail = "caught", "by " + sel
                                break
                finally:
                    for path, text in origs.items():
                        with open(path, "w") as f:
                            f.write(text)
            if verdict == "caught":
                caught += 1
            results.append((i, m, verdict))
            print("mutation %2d %-17s %-26s %s (%s; %.0f s)" % (
                i, verdict, m["file"], m["promise"], detail if verdict == "caught" else
                " ".join(m["tests"]), time.time() - t0), flush=True)
            if verdict != "caught" and args.verbose and detail:
                print(detail)
            if verdict == "no longer applies":
                print("mutation %d no longer applies" % i, flush=True)
        survivors = [(i, m) for i, m, v in results if v != "caught"]
        if survivors:
            print("not caught:")
            for i, m in survivors:
                print("  %2d %s: %s" % (i, m["file"], m["promise"]))
        print("%d of %d mutations caught" % (caught, len(results)))
        return 0 if caught == len(results) else 1
    finally:
        if args.keep:
            print("tree kept in " + tree, file=sys.stderr)
        else:
            shutil.rmtree(tmp, True)


if __name__ == "__main__":
    sys.exit(main())
