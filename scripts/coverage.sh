#!/bin/bash
# coverage.sh - line and branch coverage of src/ by the test suite,
#               session processes included
#
# Usage: scripts/coverage.sh [CTEST ARGS...]   (e.g. -L unit, -R test_data)
# Builds build-coverage/ with -DSMTPIPE_COVERAGE=ON (--coverage, -O0;
# forked sessions dump their counters before _exit(), src/coverage.h),
# runs ctest there, and prints line and branch coverage per file of
# src/ with gcovr (Debian package gcovr). The table is also written to
# build-coverage/coverage.txt and, as Markdown, coverage.md. A failing
# test is reported and makes the exit status 1, but the figures are
# still printed. Environment: JOBS (default 2), BUILD (build dir).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=${JOBS:-2}
build=${BUILD:-$top/build-coverage}
command -v gcovr >/dev/null || { echo "coverage.sh: gcovr is missing (scripts/deps.sh --test)" >&2; exit 1; }

cmake -S . -B "$build" -DSMTPIPE_COVERAGE=ON -DSMTPIPE_BUILD_TESTS=ON -DSMTPIPE_WERROR=ON \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS="-O0" >/dev/null
cmake --build "$build" -j"$jobs" >/dev/null
find "$build" -name '*.gcda' -delete
# sessions of tests that drop root (--user) write their counters too:
# the directories open to all, and every counter file there already,
# empty (libgcov starts it afresh) and writable by all, since one made
# first by a root process (mode 0644) would shut out a daemon that has
# become nobody, and its counters would be lost
find "$build" -type d -name '*.dir' -exec chmod a+rwx {} +
find "$build" -name '*.gcno' -print0 | while IFS= read -r -d '' f; do
    : >"${f%.gcno}.gcda"
    chmod a+rw "${f%.gcno}.gcda"
done

status=0
ctest --test-dir "$build" --output-on-failure -j"$jobs" "$@" || status=1

json=$build/coverage.json
gcovr --root "$top" --object-directory "$build" --filter "$top/src/" \
    --exclude "$top/src/coverage.h" --json-summary-pretty --output "$json" "$build" >/dev/null
python3 - "$json" "$build/coverage.txt" "$build/coverage.md" <<'EOF'
import json
import sys

data = json.load(open(sys.argv[1]))
rows = sorted(data["files"], key=lambda f: f["filename"])


def pct(c, t):
    return "%5.1f%%" % (100.0 * c / t) if t else "    -"


txt = ["%-22s %13s %7s %13s %7s" % ("file", "lines", "", "branches", "")]
md = ["| file | lines | line % | branches | branch % |", "| --- | ---: | ---: | ---: | ---: |"]
for f in rows + [dict(data, filename="TOTAL")]:
    name = f["filename"]
    lc, lt = f["line_covered"], f["line_total"]
    bc, bt = f["branch_covered"], f["branch_total"]
    txt.append("%-22s %6d/%-6d %7s %6d/%-6d %7s" % (name, lc, lt, pct(lc, lt), bc, bt, pct(bc, bt)))
    md.append("| %s | %d/%d | %s | %d/%d | %s |" % (name, lc, lt, pct(lc, lt).strip(), bc, bt,
                                                  pct(bc, bt).strip()))
open(sys.argv[2], "w").write("\n".join(txt) + "\n")
open(sys.argv[3], "w").write("\n".join(md) + "\n")
print("\n".join(txt))
EOF
echo "coverage.sh: figures in $build/coverage.txt and coverage.md; gcovr --html-details for lines"
exit $status
