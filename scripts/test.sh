#!/bin/bash
# test.sh - install, build warning-free, and run the whole test suite
#
# Usage: scripts/test.sh [--quick]
# Stages: 1. dependencies (scripts/deps.sh --test); 2. a -Werror build
# and every ctest test (unit, integration with real clients, TLS,
# keyring, fuzz corpus); 3. (not with --quick) the same suite against
# an ASan+UBSan build, failing on any sanitizer report, even from a
# daemon whose own test passed; 4. (not with --quick) unit tests and a
# set of session tests under valgrind; 5. (not with --quick) a minute
# of libFuzzer on the session engine. With SMTPIPE_MUTATION=1, stage 2 is
# followed by tests/mutation/run.py (a deliberate bug at a time).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
quick=false
[ "${1:-}" = --quick ] && quick=true
jobs=${JOBS:-2}

# Every stage, in order; the summary at the end says of each whether it
# passed, failed or did not run, and how long it took.
all_stages=("dependencies" "build (-Werror) and test" "ASan+UBSan build and test"
    "valgrind: unit tests, the fuzz corpus, and sessions under memcheck" "fuzzing the engine for 60 s")
declare -A result=() took=()
current="" started=0
finish_stage() {
    [ -n "$current" ] || return 0
    result[$current]=$1
    took[$current]=$((SECONDS - started))
    current=""
}
stage() {
    finish_stage passed
    current=$*
    started=$SECONDS
    printf '\n==== %s\n' "$*"
}
summary() {
    local rc=$?
    finish_stage "$([ "$rc" -eq 0 ] && echo passed || echo FAILED)"
    printf '\n==== summary\n'
    for s in "${all_stages[@]}"; do
        if [ -n "${result[$s]:-}" ]; then
            printf '%-8s %4ss  %s\n' "${result[$s]}" "${took[$s]}" "$s"
        else
            printf '%-8s %4s   %s\n' "not run" "-" "$s"
        fi
    done
}
trap summary EXIT

stage "dependencies"
bash scripts/deps.sh --test

stage "build (-Werror) and test"
# tests ON explicitly: demo.sh configures the same build/ without them
cmake -S . -B build -DSMTPIPE_WERROR=ON -DSMTPIPE_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs" >/dev/null
ctest --test-dir build --output-on-failure --no-tests=error -j"$jobs"

if [ -n "${SMTPIPE_MUTATION:-}" ]; then
    stage "mutation tests (SMTPIPE_MUTATION is set)"
    python3 tests/mutation/run.py --jobs "$jobs"
fi

$quick && exit 0

stage "ASan+UBSan build and test"
reports=$top/build-asan/sanitizer-reports
san="-fsanitize=address,undefined -fno-sanitize-recover=all"
cmake -S . -B build-asan -DSMTPIPE_WERROR=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang-14 \
    -DCMAKE_C_FLAGS="$san -fno-omit-frame-pointer -g -O1" -DCMAKE_EXE_LINKER_FLAGS="$san" >/dev/null
cmake --build build-asan -j"$jobs" >/dev/null
rm -rf "$reports" && mkdir -p "$reports" && chmod 1777 "$reports"
export ASAN_OPTIONS="log_path=$reports/report:log_exe_name=1:detect_leaks=1:halt_on_error=1"
export UBSAN_OPTIONS="log_path=$reports/report:log_exe_name=1:print_stacktrace=1:halt_on_error=1"
ctest --test-dir build-asan --output-on-failure --no-tests=error -j"$jobs"
unset ASAN_OPTIONS UBSAN_OPTIONS
if [ -n "$(ls -A "$reports")" ]; then
    for f in "$reports"/*; do echo "----- $f"; head -n 40 "$f"; done
    echo "test.sh: sanitizer reports (above)" >&2
    exit 1
fi

stage "valgrind: unit tests, the fuzz corpus, and sessions under memcheck"
vglogs=$top/build/valgrind-logs
rm -rf "$vglogs" && mkdir -p "$vglogs" && chmod 1777 "$vglogs"
export SMTPIPE_VALGRIND_DIR=$vglogs
vg=(valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite "--log-file=$vglogs/unit.%p.log")
for t in build/tests/test_*; do
    "${vg[@]}" "$t" >"$vglogs/$(basename "$t").out" 2>&1 \
        || { cat "$vglogs/$(basename "$t").out"; echo "test.sh: $t failed under valgrind" >&2; exit 1; }
done
"${vg[@]}" build/tests/fuzz_replay tests/fuzz/corpus >/dev/null
ctest --test-dir build --output-on-failure --no-tests=error -j"$jobs" \
    -R 'test_smtp_basic|test_data|test_delivery|test_pipelining|test_mockmta|test_inetd|test_tls_starttls'
unset SMTPIPE_VALGRIND_DIR
# Every process logged to its own file; valgrind's error lines start
# with ==PID== (its "--PID--" lines are warnings, e.g. about pidfd_open,
# which valgrind 3.19 does not know: smtpipe then polls waitpid).
# valgrind's notes about syscalls and ioctls it has no wrapper for (a pty's
# TIOCGPTPEER in the prompt test) are not errors in our code.
vg_errors() {
    cat "$vglogs"/*.log 2>/dev/null | grep '^==[0-9]*==' \
        | grep -v -E 'Warning: noted but unhandled ioctl|could cause spurious value errors|README_MISSING_SYSCALL_OR_IOCTL'
}
if [ -n "$(vg_errors)" ]; then
    vg_errors | head -n 80
    echo "test.sh: valgrind found errors (above)" >&2
    exit 1
fi

stage "fuzzing the engine for 60 s"
bash tests/fuzz/run.sh 60 "$top/build-fuzz"
