"""The transfer experiment of the README: MIST, Admix, MI-FGSM and DI-FGSM crafted on a
ConvNet surrogate, scored on target models of other architectures, success rates.

    /usr/bin/python3 scripts/transfer_experiment.py --surrogate S.pth --surrogate-arch ConvNet \
        --target T1.pth --target-arch ResNet18 --target T2.pth --target-arch VGG11 \
        [--data ../shared/data] [--limit 761] [--threads 2] [--semantics pixel] [--beard build/beard]

Runs `beard attack` once per attack with --transfer-to the targets (eps 8/255, alpha 2/255,
10 steps, decay 1, untargeted: the same budget for all four), and prints a Markdown table:
per attack, the surrogate's success rate (white box) and each target's (of the target's
correctly classified test images, the percent the examples fool), then whether the
paper's ordering (MIST above Admix above MI-FGSM on every target) holds.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ATTACKS = ["MIFGSM", "DIFGSM(decay=1)", "Admix", "MIST"]
LABELS = {"MIFGSM": "MI-FGSM", "DIFGSM(decay=1)": "DI-FGSM (M-DI2-FGSM, decay 1)", "Admix": "Admix", "MIST": "MIST"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--surrogate", required=True)
    ap.add_argument("--surrogate-arch", default="ConvNet")
    ap.add_argument("--target", action="append", required=True)
    ap.add_argument("--target-arch", action="append", required=True)
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data"))
    ap.add_argument("--limit", type=int, default=761)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--semantics", default="pixel")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--beard", default=os.path.join(HERE, "..", "build", "beard"))
    a = ap.parse_args()
    if len(a.target) != len(a.target_arch):
        sys.exit("give one --target-arch per --target")
    rows = {}
    for atk in ATTACKS:
        out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        cmd = [a.beard, "attack", "--model", a.surrogate, "--arch", a.surrogate_arch, "--dataset", "cifar10",
               "--data", a.data, "--attack", atk, "--semantics", a.semantics, "--limit", str(a.limit),
               "--seed", str(a.seed), "--threads", str(a.threads), "--transfer-to", ",".join(a.target),
               "--transfer-arch", ",".join(a.target_arch), "--json", out, "--quiet"]
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        with open(out) as f:
            r = json.load(f)["results"][0]
        os.unlink(out)
        rows[atk] = (r["asr"], [t["asr"] for t in r["transfer"]], r["clean_accuracy"],
                     [t["clean_accuracy"] for t in r["transfer"]])
    names = [f"{arch} ({os.path.basename(p)})" for p, arch in zip(a.target, a.target_arch)]
    print(f"Success rate (%) on {a.limit} CIFAR-10 test images, {a.semantics} semantics, eps 8/255, 10 steps, "
          f"surrogate {a.surrogate_arch} (clean {rows[ATTACKS[0]][2]:.2f}%)\n")
    print("| attack | surrogate (white box) | " + " | ".join(names) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in names) + " |")
    for atk in ATTACKS:
        s, ts, _, _ = rows[atk]
        print(f"| {LABELS[atk]} | {s:.2f} | " + " | ".join(f"{v:.2f}" for v in ts) + " |")
    print("\ntargets' clean accuracy: " + ", ".join(f"{n} {c:.2f}%" for n, c in zip(names, rows[ATTACKS[0]][3])))
    for k, n in enumerate(names):
        m, ad, mi = rows["MIST"][1][k], rows["Admix"][1][k], rows["MIFGSM"][1][k]
        print(f"{n}: MIST {m:.2f} > Admix {ad:.2f} > MI-FGSM {mi:.2f}: "
              f"{'holds' if m > ad > mi else 'does not hold'}")


if __name__ == "__main__":
    main()
