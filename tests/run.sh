#!/bin/sh
# tests/run.sh: runs each test program given on the command line, from the repository
# root, and fails if any of them fails. $BEARD names the CLI binary under test.
status=0
failed=""
for t in "$@"; do
    name=$(basename "$t")
    start=$(date +%s)
    if "$t"; then
        echo "ok   $name ($(( $(date +%s) - start ))s)"
    else
        echo "FAIL $name"
        status=1
        failed="$failed $name"
    fi
done
[ $status -eq 0 ] && echo "all test programs passed" || echo "failed:$failed"
exit $status
