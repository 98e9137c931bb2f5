"""`make distill-fidelity-decoupled`: the decoupled methods end to end, beard next to our PyTorch
port of the official code (tests/scripts/decoupled_reference.py), on the CIFAR-10 subset in
../shared, then BEARD's evaluation of the students in both semantics.

    /usr/bin/python3 tests/scripts/decoupled_fidelity.py --beard build/beard --data ../shared/data \\
        --out DIR [--arch resnet18_modified|ConvNetBN] [--reference DIR/ref/reference.json]
        [settings as the reference]

1. the reference (unless --reference names a finished one): the teacher squeezed in PyTorch
   (or --teacher T.pth),
   each method's recover, SRe2L's relabel of a --student-arch student over --seeds, random real;
2. beard with the same teacher file and settings: `beard distill --method M --teacher T` per
   method (its image folder DIR/beard/M/{M}_CIFAR10_{arch}_{ipc}ipc/), `beard train
   --recipe sre2l-relabel --teacher ...` (--runs = number of seeds), on beard's images and
   on the reference's random real images;
3. `beard attack` (FGSM and PGD at eps 8/255, BEARD's parameters, untargeted) on the best
   student of every set, --semantics beard and pixel;
4. a Markdown table (DIR/table.md) and DIR/fidelity.json; the exit status is 1 when a method
   is more than --tolerance points from the reference, or not above random real.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, log):
    print("+", " ".join(cmd), flush=True)
    with open(log, "a") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=dict(os.environ, BEARD_NO_PROGRESS="1"))
    if r.returncode:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}; see {log}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--beard", default="build/beard")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", default="resnet18_modified", help="the teacher: resnet18_modified or ConvNetBN")
    ap.add_argument("--student-arch", default="ConvNet")
    ap.add_argument("--reference", default=None)
    ap.add_argument("--teacher", default=None, help="a squeezed teacher .pth of --arch for both sides (else squeezed)")
    ap.add_argument("--squeeze-epochs", type=int, default=5)
    ap.add_argument("--methods", nargs="*", default=["SRe2L", "CDA", "G-VBSM", "DELT"])
    ap.add_argument("--ipc", type=int, default=10)
    ap.add_argument("--sre2l-iterations", type=int, default=40)
    ap.add_argument("--cda-iterations", type=int, default=40)
    ap.add_argument("--gvbsm-iterations", type=int, default=60)
    ap.add_argument("--delt-iterations", type=int, default=80)
    ap.add_argument("--delt-round", type=int, default=20)
    ap.add_argument("--relabel-epochs", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tolerance", type=float, default=2.0)
    ap.add_argument("--attack-limit", type=int, default=0, help="test images attacked (0 = all)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    log = os.path.join(a.out, "log.txt")
    its = {"SRe2L": a.sre2l_iterations, "CDA": a.cda_iterations, "G-VBSM": a.gvbsm_iterations,
           "DELT": a.delt_iterations}
    if a.reference:
        ref_path = a.reference
    else:
        ref_dir = os.path.join(a.out, "ref")
        run([a.python, os.path.join(HERE, "decoupled_reference.py"), "--data", a.data, "--out", ref_dir, "--arch", a.arch,
             "--student-arch", a.student_arch, "--squeeze-epochs", str(a.squeeze_epochs), "--ipc", str(a.ipc),
             "--sre2l-iterations", str(a.sre2l_iterations), "--cda-iterations", str(a.cda_iterations),
             "--gvbsm-iterations", str(a.gvbsm_iterations), "--delt-iterations", str(a.delt_iterations),
             "--delt-round", str(a.delt_round), "--relabel-epochs", str(a.relabel_epochs),
             "--seeds", *[str(s) for s in range(a.seeds)], "--threads", str(a.threads),
             "--methods", *a.methods, "random", *(["--teacher", a.teacher] if a.teacher else [])], log)
        ref_path = os.path.join(ref_dir, "reference.json")
    ref = json.load(open(ref_path))
    teacher = ref["teacher"]
    res = {"reference": ref_path, "teacher": teacher, "teacher_accuracy": ref.get("teacher_accuracy"), "methods": {}}
    sets = [(m, os.path.join(a.out, "beard", m)) for m in a.methods] + [("random", ref["random"]["folder"])]
    for m, folder in sets:
        if m != "random":
            dj = os.path.join(a.out, "beard", f"distill_{m}.json")
            cmd = [a.beard, "distill", "--method", m, "--teacher", teacher, "--arch", a.arch, "--dataset", "cifar10",
                   "--data", a.data, "--ipc", str(a.ipc), "--iterations", str(its[m]), "--out", folder,
                   "--threads", str(a.threads), "--json", dj, "--checkpoint-every", "0", "--force", "--quiet"]
            if m == "DELT":
                cmd += ["--round-iterations", str(a.delt_round)]
            os.makedirs(folder, exist_ok=True)
            run(cmd, log)
            distilled = json.load(open(dj))
            folder = distilled["outputs"]["images"]
        save = os.path.join(a.out, "students", m)
        tj = os.path.join(a.out, f"train_{m}.json")
        run([a.beard, "train", "--data-file", folder, "--dataset", "cifar10", "--data", a.data, "--arch", a.student_arch,
             "--teacher", teacher, "--teacher-arch", a.arch, "--recipe", "sre2l-relabel", "--epochs",
             str(a.relabel_epochs), "--runs", str(a.seeds), "--seed", "0", "--method", m.replace("-", ""), "--ipc",
             str(a.ipc), "--save-path", save, "--json", tj, "--threads", str(a.threads), "--quiet"], log)
        t = json.load(open(tj))
        entry = {"beard": t["accuracies"], "beard_mean": t["mean_accuracy"], "beard_std": t["std_accuracy"],
                 "reference": ref[m]["accuracies"], "reference_mean": ref[m]["mean"], "reference_std": ref[m]["std"]}
        if m != "random":
            entry["recover_seconds_beard"] = distilled["seconds"]
            entry["recover_seconds_reference"] = ref[m]["recover_seconds"]
        best = t["saved"].get("best") or t["saved"]["final"]
        for sem in ("beard", "pixel"):
            aj = os.path.join(a.out, f"attack_{m}_{sem}.json")
            cmd = [a.beard, "attack", "--model", best, "--arch", a.student_arch, "--dataset", "cifar10", "--data", a.data,
                   "--attack", "FGSM,PGD", "--targeted", "no", "--semantics", sem, "--preset", "beard", "--json", aj,
                   "--threads", str(a.threads)]
            if a.attack_limit:
                cmd += ["--limit", str(a.attack_limit)]
            run(cmd, log)
            for r in json.load(open(aj))["results"]:
                entry[f"{r['attack']}_{sem}"] = r["accuracy"]
        res["methods"][m] = entry
        json.dump(res, open(os.path.join(a.out, "fidelity.json"), "w"), indent=1)
    rnd = res["methods"]["random"]["beard_mean"]
    fails = []
    lines = [f"| set | beard ({a.seeds} seeds) | PyTorch port ({a.seeds} seeds) | FGSM beard / pixel | PGD beard / pixel |",
             "| --- | --- | --- | --- | --- |"]
    for m, e in res["methods"].items():
        lines.append(f"| {m} | {e['beard_mean']:.2f} +- {e['beard_std']:.2f} | {e['reference_mean']:.2f} +- "
                     f"{e['reference_std']:.2f} | {e.get('FGSM_beard', float('nan')):.2f} / "
                     f"{e.get('FGSM_pixel', float('nan')):.2f} | {e.get('PGD_beard', float('nan')):.2f} / "
                     f"{e.get('PGD_pixel', float('nan')):.2f} |")
        if abs(e["beard_mean"] - e["reference_mean"]) > a.tolerance:
            fails.append(f"{m}: beard {e['beard_mean']:.2f} vs reference {e['reference_mean']:.2f}")
        if m != "random" and not e["beard_mean"] > rnd:
            fails.append(f"{m}: {e['beard_mean']:.2f} not above random real {rnd:.2f}")
    table = "\n".join(lines)
    open(os.path.join(a.out, "table.md"), "w").write(table + "\n")
    print(table)
    for f in fails:
        print("FAIL", f)
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
