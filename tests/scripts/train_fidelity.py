"""The training stage's acceptance checks that need PyTorch (run by `make train-fidelity`, not in CI):

1. fidelity: beard's mean test accuracy (from `beard train --json`) within --tolerance points of
   PyTorch's figure for the same recipe (tests/fixtures/train/reference.json, written by
   tests/scripts/train_reference.py);
3. the models beard saved load in PyTorch (torch.load + load_state_dict(strict=True) into the
   reference ConvNet) and give the test accuracy beard reported for them.

    /usr/bin/python3 tests/scripts/train_fidelity.py --beard-json OUT.json \\
        [--reference tests/fixtures/train/reference.json] [--tolerance 1.5] [--data ../shared/data]
Exits non-zero when a check fails.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_reference import load_test, make_net  # noqa: E402


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.environ.get("BEARD_SHARED", os.path.join(here, "..", "..", "..", "shared"))
    ap = argparse.ArgumentParser()
    ap.add_argument("--beard-json", required=True)
    ap.add_argument("--reference", default=os.path.join(here, "..", "fixtures", "train", "reference.json"))
    ap.add_argument("--tolerance", type=float, default=1.5)
    ap.add_argument("--data", default=os.path.join(shared, "data"))
    a = ap.parse_args()
    b = json.load(open(a.beard_json))
    r = json.load(open(a.reference))
    ok = True
    if r.get("arch", "ConvNet") != b["model"]:
        print(f"FAIL: beard trained {b['model']}, the reference is {r.get('arch', 'ConvNet')}")
        ok = False
    if b["epochs"] != r["epochs"]:
        print(f"warning: beard ran {b['epochs']} epochs, the reference {r['epochs']}")
    n3 = min(3, len(r["accuracies"]))
    r3 = sum(r["accuracies"][:n3]) / n3
    print(f"beard   {b['mean_accuracy']:.2f} +- {b['std_accuracy']:.2f}%  ({len(b['accuracies'])} seeds: "
          + ", ".join(f"{x:.2f}" for x in b["accuracies"]) + f"; {sum(b['seconds']) / len(b['seconds']):.1f}s per run, "
          f"{b['threads']} threads)")
    print(f"PyTorch {r['mean_accuracy']:.2f} +- {r['std_accuracy']:.2f}%  ({len(r['accuracies'])} seeds, "
          f"torch {r['torch']}; first {n3} seeds: {r3:.2f}%)")
    for name, ref in (("all reference seeds", r["mean_accuracy"]), (f"reference seeds 0-{n3 - 1}", r3)):
        d = b["mean_accuracy"] - ref
        good = abs(d) <= a.tolerance
        ok &= good
        print(f"  {'ok  ' if good else 'FAIL'} difference to {name}: {d:+.2f} points (tolerance {a.tolerance})")

    x, y = load_test(a.data, b.get("n_test", 0))
    for kind, path in b.get("saved", {}).items():
        want = b["best_accuracy"] if kind == "best" else b["accuracies"][b["final_run"]]
        net = make_net(b["model"])
        sd = torch.load(path, map_location="cpu")
        net.load_state_dict(sd, strict=True)
        net.eval()
        with torch.no_grad():
            correct = sum(int((net(x[i:i + 256]).argmax(1) == y[i:i + 256]).sum()) for i in range(0, len(y), 256))
        acc = 100.0 * correct / len(y)
        good = abs(acc - want) < 1e-9
        ok &= good
        print(f"  {'ok  ' if good else 'FAIL'} {kind} model {os.path.basename(path)} in PyTorch: {acc:.2f}% "
              f"(beard reported {want:.2f}%)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
