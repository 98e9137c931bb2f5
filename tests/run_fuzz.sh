#!/bin/sh
# tests/run_fuzz.sh: runs every libFuzzer target in $B/fuzz (B defaults to build; `make fuzz`
# builds them, one per parser) for FUZZ_TIME seconds each (default 8: the suite's short
# run) or FUZZ_RUNS executions, whichever comes first, starting from a temporary copy of
# tests/fuzz/corpus_<name> (with tests/fuzz/<fuzzer>.dict when present) so that the
# repository is never modified. The corpus holds the seeds and every input that once
# crashed, hung or blew up a target (its regression inputs), so each run replays them
# first. Fails if any fuzzer finds a crash, leak, timeout or out-of-memory; the
# reproducer is then kept in $B/fuzz/artifacts/ (commit it to the corpus once fixed).
# A single allocation over 1 GB is a finding (-malloc_limit_mb=1024; no input of at most
# 64 KB needs one): a parser that trusts a size field then fails at once and always, not
# only when the sanitizer's quarantine happens to push the process over the RSS limit.
# Prints executions per target; FUZZ_REPORT=FILE also writes them there.
#
#   B=build-io FUZZ_TIME=300 sh tests/run_fuzz.sh
#   make fuzz-long     (FUZZ_TIME=7200 FUZZ_RUNS=10000000)
B=${B:-build}
T=${FUZZ_TIME:-8}
RUNS=${FUZZ_RUNS:-0}
status=0
found=0
[ -n "$FUZZ_REPORT" ] && : >"$FUZZ_REPORT"
for f in "$B"/fuzz/fuzz_*; do
    [ -f "$f" ] && [ -x "$f" ] || continue
    found=1
    name=$(basename "$f")
    seeds="tests/fuzz/corpus_${name#fuzz_}"
    # scratch in memory where there is a tmpfs: the file-based targets write every input
    # (and the store's fsyncs would otherwise dominate)
    scratch=${TMPDIR:-/tmp}
    [ -z "$TMPDIR" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && scratch=/dev/shm
    work=$(mktemp -d "$scratch/beard-fuzz.XXXXXX") || exit 1
    mkdir "$work/corpus"
    [ -d "$seeds" ] && cp "$seeds"/* "$work/corpus/" 2>/dev/null
    dict=""
    [ -f "tests/fuzz/$name.dict" ] && dict="-dict=tests/fuzz/$name.dict"
    runs=""
    [ "$RUNS" -gt 0 ] && runs="-runs=$RUNS"
    start=$(date +%s)
    if TMPDIR="$work" "$f" -max_total_time="$T" $runs -timeout=20 -rss_limit_mb=2560 -malloc_limit_mb=1024 -max_len=65536 $dict \
        -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" >"$work/log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
        line="ok   $name: ${execs:-?} executions in $(( $(date +%s) - start )) s, $(ls "$work/corpus" | wc -l) corpus inputs, no findings"
        echo "$line"
        [ -n "$FUZZ_REPORT" ] && echo "$line" >>"$FUZZ_REPORT"
    else
        echo "FAIL $name"
        [ -n "$FUZZ_REPORT" ] && echo "FAIL $name" >>"$FUZZ_REPORT"
        tail -n 40 "$work/log"
        mkdir -p "$B/fuzz/artifacts"
        for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* "$work"/slow-unit-*; do
            [ -f "$a" ] && cp "$a" "$B/fuzz/artifacts/$name-$(basename "$a")" &&
                echo "reproducer: $B/fuzz/artifacts/$name-$(basename "$a")"
        done
        status=1
    fi
    rm -rf "$work"
done
if [ $found -eq 0 ]; then
    echo "no fuzzers in $B/fuzz (build them with: make B=$B fuzz)"
    exit 1
fi
exit $status
