#!/bin/bash
# run.sh - build smtpipe and the benchmark's tools, then compare smtpipe
# with msmtpd side by side (bench/run.py). Usage: bench/run.sh [--quick]
# Never part of the test suite. Installs what it needs (scripts/deps.sh
# --test, which also unpacks msmtpd, smtp-source and smtp-sink).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/deps.sh" --test
out=$top/build-bench
cmake -S "$top" -B "$out" -DCMAKE_BUILD_TYPE=Release -DSMTPIPE_BUILD_TESTS=OFF >/dev/null
cmake --build "$out" -j"$(nproc)" >/dev/null
mkdir -p "$out/bench"
for t in sink spawn_limit bigclient sessions latency append_limit spool_limit prefork_limit; do
    cc -O2 -Wall -Wextra -D_GNU_SOURCE -o "$out/bench/$t" "$top/bench/$t.c"
done
chmod 755 "$out" "$out/bench"
# the servers run as nobody: their tools must not sit in /root
"$top/tests/tools/clients.sh" "$out/clients" >/dev/null
chmod -R a+rX "$out/clients"
BENCH_BIN=$out/bench BENCH_SMTPIPE=$out/smtpipe BENCH_CLIENTS=$("$top/tests/tools/clients.sh" "$out/clients") \
    exec python3 "$top/bench/run.py" "$@"
