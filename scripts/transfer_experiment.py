"""The transfer experiment of the README: MIST, Admix, MI-FGSM and DI-FGSM crafted on a
ConvNet surrogate, scored on target models of other architectures, success rates.

    /usr/bin/python3 scripts/transfer_experiment.py --surrogate S.pth --surrogate-arch ConvNet \
        --target T1.pth --target-arch LeNet --target T2.pth --target-arch AlexNet \
        [--data ../shared/data] [--limit 761] [--threads 2] [--semantics pixel] [--seed 0] \
        [--eps 8/255 --alpha 2/255 --steps 10 --decay 1] [--target-label NAME ...] \
        [--out DIR [--reuse]] [--beard build/beard]

Runs `beard attack` once per attack with --transfer-to the targets, untargeted, with one
budget for all four, given to each explicitly (eps 8/255, alpha 2/255, 10 steps, momentum
decay 1; DI-FGSM with decay 1 is M-DI2-FGSM, the momentum form the transfer literature
compares against; its resize_rate 0.9 and diversity_prob 0.5 are torchattacks'; Admix 5
scales x 3 add-ins and MIST 15 mixed copies per step are their defaults, so both take 15
gradients per step where MI-FGSM and DI-FGSM take one). Under --semantics beard, eps and
alpha are in normalised units, as BEARD passes them.

Prints a Markdown table: per attack, the surrogate's success rate (white box: of its
correctly classified images, the percent the examples fool) and each target's (of that
target's correctly classified test images, the percent the examples fool), and the
surrogate's gradient passes per image. Then the paper's ordering (MIST above Admix above
MI-FGSM) per target, with an exact two-sided McNemar test on each pair (the same images,
paired: the p-value that the two attacks fool the target equally often).

The control row, GN with std 0, adds no perturbation: it shows what the attack space's
[0, 1] clamp alone does (nothing under pixel semantics; under beard semantics BEARD's
clamp of the normalised tensor, which moves most pixels by far more than eps).

--out DIR keeps each attack's `beard attack --json` (per-sample) and the table there;
--reuse reads the JSON files already there and runs only the missing ones.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ATTACKS = ["MIFGSM", "DIFGSM", "Admix", "MIST"]
# the control: no perturbation, only the [0, 1] clamp of the attack space (nothing in
# pixel semantics; under beard semantics BEARD's clamp of the normalised tensor)
CONTROL = "GN(std=0)"
LABELS = {"MIFGSM": "MI-FGSM", "DIFGSM": "DI-FGSM (M-DI2-FGSM)", "Admix": "Admix", "MIST": "MIST",
          CONTROL: "control: the clamp alone (GN, std 0)"}
FILES = {CONTROL: "control_clamp"}


def mcnemar(a, b):
    """Exact two-sided McNemar test on paired 0/1 lists: (a only, b only, p-value)."""
    n01 = sum(1 for x, y in zip(a, b) if x and not y)
    n10 = sum(1 for x, y in zip(a, b) if y and not x)
    n = n01 + n10
    if n == 0:
        return n01, n10, 1.0
    k = min(n01, n10)
    p = 2.0 * sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return n01, n10, min(1.0, p)


def run_attack(a, atk, path):
    cmd = [a.beard, "attack", "--model", a.surrogate, "--arch", a.surrogate_arch, "--dataset", "cifar10",
           "--data", a.data, "--attack", atk, "--semantics", a.semantics, "--limit", str(a.limit),
           "--seed", str(a.seed), "--threads", str(a.threads), "--transfer-to", ",".join(a.target),
           "--transfer-arch", ",".join(a.target_arch), "--per-sample", "--json", path, "--quiet"]
    if atk != CONTROL:
        cmd += ["--eps", a.eps, "--alpha", a.alpha, "--steps", str(a.steps), "--decay", a.decay]
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--surrogate", required=True)
    ap.add_argument("--surrogate-arch", default="ConvNet")
    ap.add_argument("--target", action="append", required=True)
    ap.add_argument("--target-arch", action="append", required=True)
    ap.add_argument("--target-label", action="append", help="a column name per target (default: its architecture)")
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data"))
    ap.add_argument("--limit", type=int, default=761)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--semantics", default="pixel", choices=["pixel", "beard"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eps", default="8/255")
    ap.add_argument("--alpha", default="2/255")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--decay", default="1")
    ap.add_argument("--out", help="folder for each attack's JSON and the table (made if missing)")
    ap.add_argument("--reuse", action="store_true", help="read the JSON files in --out instead of running")
    ap.add_argument("--beard", default=os.path.join(HERE, "..", "build", "beard"))
    a = ap.parse_args()
    if len(a.target) != len(a.target_arch):
        sys.exit("transfer_experiment.py: give one --target-arch per --target")
    if a.target_label and len(a.target_label) != len(a.target):
        sys.exit("transfer_experiment.py: give one --target-label per --target, or none")
    if a.reuse and not a.out:
        sys.exit("transfer_experiment.py: --reuse reads the JSON files in --out: give --out")
    if a.out:
        os.makedirs(a.out, exist_ok=True)
    rows, seeds = {}, set()
    for atk in ATTACKS + [CONTROL]:
        if a.out:
            path = os.path.join(a.out, f"{a.semantics}_{FILES.get(atk, atk)}.json")
        else:
            path = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        if not (a.reuse and os.path.exists(path)):
            run_attack(a, atk, path)
        with open(path) as f:
            doc = json.load(f)
        if not a.out:
            os.unlink(path)
        r = doc["results"][0]
        if len(r["transfer"]) != len(a.target):
            sys.exit(f"transfer_experiment.py: {path} scores {len(r['transfer'])} targets, not {len(a.target)}")
        rows[atk] = r
        seeds.add(doc["seed"])
    # the budget as the runs recorded it, the same for all four
    budget = {}
    for key in ("eps", "alpha", "steps", "decay"):
        vals = {round(rows[atk]["params"][key], 8) for atk in ATTACKS}
        if len(vals) != 1:
            sys.exit(f"transfer_experiment.py: the attacks ran with different {key}: {sorted(vals)}")
        budget[key] = vals.pop()
    sems = {rows[atk]["semantics"] for atk in ATTACKS}
    if len(sems) != 1:
        sys.exit(f"transfer_experiment.py: the runs mix semantics {sorted(sems)}")

    def frac(v):
        k = v * 255
        return f"{k:.4g}/255" if abs(k - round(k)) < 1e-4 else f"{v:.6g}"

    n = rows[ATTACKS[0]]["n"]
    names = a.target_label or a.target_arch
    tcorrect = [sum(t["per_sample"]["clean_correct"]) for t in rows[ATTACKS[0]]["transfer"]]
    scorrect = sum(rows[ATTACKS[0]]["per_sample"]["clean_correct"])
    lines = []
    lines.append(f"Success rate (%) on {n} CIFAR-10 test images, {sems.pop()} semantics, untargeted, "
                 f"eps {frac(budget['eps'])}, alpha {frac(budget['alpha'])}, {budget['steps']:g} steps, "
                 f"decay {budget['decay']:g}, seed {','.join(str(x) for x in sorted(seeds))}; surrogate {a.surrogate_arch} "
                 f"({os.path.basename(a.surrogate)}, clean {rows[ATTACKS[0]]['clean_accuracy']:.2f}%, "
                 f"{scorrect} correct)\n")
    lines.append("| attack | gradients / image | surrogate (white box) | "
                 + " | ".join(f"{nm} ({c} correct)" for nm, c in zip(names, tcorrect)) + " |")
    lines.append("| --- | --- | --- | " + " | ".join("---" for _ in names) + " |")
    for atk in ATTACKS + [CONTROL]:
        r = rows[atk]
        lines.append(f"| {LABELS[atk]} | {r['backward_per_sample']:.0f} | {r['asr']:.2f} | "
                     + " | ".join(f"{t['asr']:.2f}" for t in r["transfer"]) + " |")
    lines.append("")
    lines.append("targets' clean accuracy: " + ", ".join(
        f"{nm} {t['clean_accuracy']:.2f}%" for nm, t in zip(names, rows[ATTACKS[0]]["transfer"])))
    lines.append("mean perturbation in pixel units, Linf / L2: " + ", ".join(
        f"{LABELS[k]} {rows[k]['mean_linf_pixel']:.4f} / {rows[k]['mean_l2_pixel']:.3f}" for k in ATTACKS + [CONTROL]))
    lines.append("surrogate time (s): " + ", ".join(f"{LABELS[k]} {rows[k]['seconds']:.1f}" for k in ATTACKS))
    lines.append("")

    def succ(atk, k):
        return rows[atk]["transfer"][k]["per_sample"]["success"]

    held = 0
    for k, nm in enumerate(names):
        m, ad, mi = (rows[x]["transfer"][k]["asr"] for x in ("MIST", "Admix", "MIFGSM"))
        ok = m > ad > mi
        held += ok
        p1 = mcnemar(succ("MIST", k), succ("Admix", k))
        p2 = mcnemar(succ("Admix", k), succ("MIFGSM", k))
        lines.append(f"- {nm}: MIST {m:.2f} {'>' if m > ad else '<=' } Admix {ad:.2f} "
                     f"{'>' if ad > mi else '<='} MI-FGSM {mi:.2f}: {'holds' if ok else 'does not hold'} "
                     f"(MIST vs Admix: {p1[0]} images fooled by MIST only, {p1[1]} by Admix only, McNemar p = {p1[2]:.3g}; "
                     f"Admix vs MI-FGSM: {p2[0]} / {p2[1]}, p = {p2[2]:.3g})")
    lines.append(f"\nthe paper's ordering MIST > Admix > MI-FGSM holds on {held} of {len(names)} targets")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if a.out:
        with open(os.path.join(a.out, f"table_{a.semantics}.md") + ".tmp", "w") as f:
            f.write(text)
        os.replace(os.path.join(a.out, f"table_{a.semantics}.md") + ".tmp", os.path.join(a.out, f"table_{a.semantics}.md"))


if __name__ == "__main__":
    main()
