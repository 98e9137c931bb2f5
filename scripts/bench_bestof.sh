#!/bin/sh
# Best of N interleaved rounds of `beard bench` (this build, optionally another beard
# binary, and PyTorch through scripts/bench_torch.py), for a machine that other jobs
# load: every round is disturbed, the best one least, and interleaving gives each side
# the same windows. Prints images/s per pass and the ratios.
#
#   scripts/bench_bestof.sh ARCH BATCH THREADS ROUNDS
#   BEFORE=/path/to/other/beard TORCH=0 scripts/bench_bestof.sh ConvNet 32 2 4
#
# BEARD: the binary measured (default build/beard); BEFORE: a second one (say main's,
# built in a scratch clone), run from its own directory; TORCH=0 leaves PyTorch out.
set -e
[ $# -eq 4 ] || { echo "usage: $0 ARCH BATCH THREADS ROUNDS" >&2; exit 2; }
A=$1 B=$2 T=$3 N=$4
S=${BEARD:-build/beard} TORCH=${TORCH:-1}
O=$(mktemp -d)
trap 'rm -rf "$O"' EXIT
echo "$(date -u) $A batch $B, $T threads, $N rounds; load: $(cut -d' ' -f1-3 /proc/loadavg)"
i=0
while [ "$i" -lt "$N" ]; do
    "$S" bench --arch "$A" --batch "$B" --threads "$T" --seconds 1 --json "$O/s_$i.json" >/dev/null
    if [ -n "$BEFORE" ]; then
        (cd "$(dirname "$BEFORE")/.." && "$BEFORE" bench --arch "$A" --batch "$B" --threads "$T" --seconds 1 \
            --json "$O/m_$i.json" >/dev/null)
    fi
    if [ "$TORCH" != 0 ]; then
        /usr/bin/python3 scripts/bench_torch.py --arch "$A" --batch "$B" --threads "$T" --seconds 1 >"$O/t_$i.txt"
    fi
    i=$((i + 1))
done
echo "end; load: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$O" "$A" "$B" "$T" <<'PY'
import glob, json, sys
O, A, B, T = sys.argv[1:]
K = ("forward_ips", "forward_backward_ips", "train_step_ips")
def best(prefix):
    r = {}
    for f in glob.glob(f"{O}/{prefix}_*.json"):
        d = json.load(open(f))
        for k in K:
            r[k] = max(r.get(k, 0.0), d[k])
    return r
s, m, t = best("s"), best("m"), {}
for f in glob.glob(f"{O}/t_*.txt"):
    for line in open(f):
        if line.startswith("TORCH"):
            for k, x in zip(K, map(float, line.split()[1:4])):
                t[k] = max(t.get(k, 0.0), x)
print(f"{A} batch {B}, {T} threads, best of the rounds, images/s")
print(f"  {'pass':<18}{'beard':>9}{'before':>9}{'torch':>9}{'/before':>9}{'/torch':>9}")
for k, n in zip(K, ("forward", "forward+backward", "SGD train step")):
    row = f"  {n:<18}{s[k]:9.1f}" + (f"{m[k]:9.1f}" if m else f"{'-':>9}") + (f"{t[k]:9.1f}" if t else f"{'-':>9}")
    row += (f"{s[k] / m[k]:8.2f}x" if m else f"{'-':>9}") + (f"{s[k] / t[k]:8.2f}x" if t else f"{'-':>9}")
    print(row)
PY
