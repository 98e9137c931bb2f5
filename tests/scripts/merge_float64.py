"""Adds torchattacks' float64 perturbation sizes to the float32 reference rows (run by hand).

    python tests/scripts/merge_float64.py F64.json tests/fixtures/attacks/torchattacks_rest.json

F64.json is gen_attack_refs.py's output with --dtype float64 (EADL1 and EADEN on the same
images). Each of its rows goes into the fixture's row of the same attack, semantics and mode
as "l1_float64" (and "pred_float64"), after checking that both ran on the same images and
that every sample's success agrees. test_attack_fidelity measures torchattacks' own rounding
spread from it (float32 against float64) beside beard's two convolution paths.
"""
import json
import sys


def main():
    f64_path, fixture_path = sys.argv[1], sys.argv[2]
    f64 = json.load(open(f64_path))
    fix = json.load(open(fixture_path))
    rows = {(r["attack"], r["semantics"], r["targeted"]): r for r in fix["results"]}
    for r in f64["results"]:
        key = (r["attack"], r["semantics"], r["targeted"])
        if key not in rows:
            sys.exit(f"{key}: not in {fixture_path}")
        row = rows[key]
        if r["n"] != row["n"] or "l1" not in r or len(r["l1"]) != len(row["l1"]):
            sys.exit(f"{key}: the float64 run covers other images ({r['n']} against {row['n']})")
        if r["correct"] != row["correct"]:
            sys.exit(f"{key}: float32 and float64 disagree on some sample's success: not a rounding spread")
        row["l1_float64"], row["pred_float64"] = r["l1"], r["pred"]
        far = sum(abs(a - b) > 0.01 * max(b, 1e-9) for a, b in zip(row["l1"], r["l1"]))
        print(f"{key}: {far} of {len(r['l1'])} sizes more than 1% from float64")
    with open(fixture_path, "w") as f:
        json.dump(fix, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
