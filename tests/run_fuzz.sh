#!/bin/sh
# tests/run_fuzz.sh: runs every libFuzzer target in $B/fuzz (B defaults to build; `make fuzz`
# builds them) for FUZZ_TIME seconds each (default 20), starting from a temporary copy of
# tests/fuzz/corpus_<name> (with tests/fuzz/<fuzzer>.dict when present) so that the
# repository is never modified. Fails if any fuzzer finds a crash, leak, timeout or
# out-of-memory; the reproducer is then kept in $B/fuzz/artifacts/.
#
#   B=build-io FUZZ_TIME=300 sh tests/run_fuzz.sh
B=${B:-build}
T=${FUZZ_TIME:-20}
status=0
found=0
for f in "$B"/fuzz/fuzz_*; do
    [ -f "$f" ] && [ -x "$f" ] || continue
    found=1
    name=$(basename "$f")
    seeds="tests/fuzz/corpus_${name#fuzz_}"
    work=$(mktemp -d "${TMPDIR:-/tmp}/beard-fuzz.XXXXXX") || exit 1
    mkdir "$work/corpus"
    [ -d "$seeds" ] && cp "$seeds"/* "$work/corpus/" 2>/dev/null
    dict=""
    [ -f "tests/fuzz/$name.dict" ] && dict="-dict=tests/fuzz/$name.dict"
    if "$f" -max_total_time="$T" -timeout=20 -rss_limit_mb=2560 -max_len=65536 $dict \
        -artifact_prefix="$work/" "$work/corpus" >"$work/log" 2>&1; then
        echo "ok   $name ($T s, $(ls "$work/corpus" | wc -l) inputs)"
    else
        echo "FAIL $name"
        tail -n 40 "$work/log"
        mkdir -p "$B/fuzz/artifacts"
        for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* "$work"/slow-unit-*; do
            [ -f "$a" ] && cp "$a" "$B/fuzz/artifacts/" && echo "reproducer: $B/fuzz/artifacts/$(basename "$a")"
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
