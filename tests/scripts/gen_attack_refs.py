"""torchattacks 3.5.1 reference figures for beard's attack-fidelity test (run by hand).

    python tests/scripts/gen_attack_refs.py --model BACON.pth --data DIR/test_batch.bin \
        --out tests/fixtures/attacks/torchattacks_bacon.json [--device cuda] [--only FGSM,PGD]

Runs every attack BEARD uses, with the parameters BEARD passes (Code/eva_utils.py: epoch()),
on the first --limit CIFAR-10 test images, in batches of 256 as BEARD's test loader does, in
both semantics and both targeted modes:
  beard: the model sees mean/std-normalised tensors and the attack clamps to [0, 1] in that
         space (what BEARD does by handing normalised data to torchattacks);
  pixel: the attack works on [0, 1] pixels and the model normalises internally.
Targeted runs use BEARD's targets (y + 1) % 10 via set_mode_targeted_by_label. Accuracy is
scored against the true labels. Besides the attacks BEARD runs, every other torchattacks 3.5.1
attack runs with its defaults (and a few deterministic variants that pin down the deterministic
part of a stochastic attack: TI-FGSM without input diversity, Jitter without noise, PGDRS with
noise_sd 0, ...). The query-hungry ones (JSMA, EAD, SparseFool, OnePixel, Pixle) run on the
first LIMIT images of their entry only: torchattacks takes seconds per image there on the CPU.
torch, numpy and Python's random are seeded with 0 before every batch. LGV collects its models
on the CIFAR-10 training images next to --data (data_batch_*.bin), in batches of 256. Results are appended to the JSON file as they finish, with
the per-sample correctness as a 0/1 string and the predicted classes as a digit string, so an interrupted run keeps what it did.

On a GPU, TF32 is switched off so that convolutions are computed in full float32.
"""
import argparse
import json
import os
import random
import sys
import time

import numpy as np
import torch
import torchattacks

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import ConvNet, Normalized  # noqa: E402

MEAN = [0.4914, 0.4822, 0.4465]
STD = [0.2023, 0.1994, 0.2010]


def load_cifar_train(folder):
    parts = [load_cifar_bin(os.path.join(folder, f"data_batch_{i}.bin"), None) for i in range(1, 6)
             if os.path.exists(os.path.join(folder, f"data_batch_{i}.bin"))]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def load_cifar_bin(path, limit):
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3073)[:limit]
    labels = torch.from_numpy(raw[:, 0].astype(np.int64))
    x = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy()).float().div(255)
    return x, labels


# name -> (constructor, supports targeted), exactly BEARD's parameters
def beard_attacks():
    return {
        "FGSM": (lambda m: torchattacks.FGSM(m, eps=8 / 255), True),
        "PGD": (lambda m: torchattacks.PGD(m, eps=8 / 255, alpha=2 / 225, steps=10, random_start=False), True),
        "PGD_L2": (lambda m: torchattacks.PGDL2(m, eps=128 / 255, alpha=15 / 255, steps=10, random_start=False), True),
        "CW": (lambda m: torchattacks.CW(m, c=1, kappa=0, steps=100, lr=0.01), True),
        "Deepfool": (lambda m: torchattacks.DeepFool(m, steps=50, overshoot=0.02), False),
        "AA": (lambda m: torchattacks.AutoAttack(m, eps=8 / 255, seed=0), False),
        "Square": (lambda m: torchattacks.Square(m, norm="Linf", eps=8 / 255, n_queries=5000, n_restarts=1,
                                                 p_init=0.8, seed=0, verbose=False, loss="margin",
                                                 resc_schedule=True), True),
        # torchattacks defaults for the attacks BEARD does not parameterise
        "BIM": (lambda m: torchattacks.BIM(m, eps=8 / 255, alpha=2 / 255, steps=10), True),
        "MIFGSM": (lambda m: torchattacks.MIFGSM(m, eps=8 / 255, alpha=2 / 255, steps=10, decay=1.0), True),
        "TPGD": (lambda m: torchattacks.TPGD(m, eps=8 / 255, alpha=2 / 255, steps=10), False),
        # APGD, APGD-T and FAB have no user-targeted mode in torchattacks 3.5.1 (APGD-T and
        # FAB multi-targeted pick their own target classes)
        "APGD": (lambda m: torchattacks.APGD(m, eps=8 / 255, steps=10, seed=0), False),
        "APGD_DLR": (lambda m: torchattacks.APGD(m, eps=8 / 255, steps=10, seed=0, loss="dlr"), False),
        "APGDT": (lambda m: torchattacks.APGDT(m, eps=8 / 255, steps=10, seed=0), False),
        "FAB": (lambda m: torchattacks.FAB(m, eps=8 / 255, steps=10, seed=0), False),
        "FAB_T": (lambda m: torchattacks.FAB(m, eps=8 / 255, steps=10, seed=0, multi_targeted=True), False),
        "SPSA": (lambda m: torchattacks.SPSA(m, eps=8 / 255), True),
    }


class DIFGSMPerImage(torchattacks.DIFGSM):
    """torchattacks' DIFGSM with its input diversity drawn for each image on its own (its own
    input_diversity called on one image at a time) instead of once for the whole batch: beard's
    scheme. Each image's transforms have the same distribution, so the expected accuracy is
    torchattacks'; a run's spread is that of independent per-image draws, not of ten
    batch-wide coin flips, so a few seeds pin the mean down."""

    def input_diversity(self, x):
        return torch.cat([torchattacks.DIFGSM.input_diversity(self, x[i:i + 1]) for i in range(len(x))])


# the attacks BEARD does not run, with torchattacks' defaults: name -> (constructor of
# (model, train loader), supports targeted, image limit or None)
def other_attacks():
    ta = torchattacks
    return {
        "VANILA": (lambda m, tl: ta.VANILA(m), False, None),
        "GN": (lambda m, tl: ta.GN(m), False, None),
        "RFGSM": (lambda m, tl: ta.RFGSM(m), True, None),
        "EOTPGD": (lambda m, tl: ta.EOTPGD(m), True, None),
        "EOTPGD_nors": (lambda m, tl: ta.EOTPGD(m, random_start=False), True, None),
        "FFGSM": (lambda m, tl: ta.FFGSM(m), True, None),
        "UPGD": (lambda m, tl: ta.UPGD(m), True, None),
        "UPGD_dlr": (lambda m, tl: ta.UPGD(m, loss="dlr"), True, None),
        "UPGD_margin": (lambda m, tl: ta.UPGD(m, loss="margin"), True, None),
        "DIFGSM": (lambda m, tl: ta.DIFGSM(m), True, None),
        "DIFGSM_perimage": (lambda m, tl: DIFGSMPerImage(m), True, None),
        "TIFGSM": (lambda m, tl: ta.TIFGSM(m), True, None),
        "TIFGSM_nodi": (lambda m, tl: ta.TIFGSM(m, diversity_prob=0.0), True, None),
        "Jitter": (lambda m, tl: ta.Jitter(m), True, None),
        "Jitter_det": (lambda m, tl: ta.Jitter(m, std=0.0, random_start=False), True, None),
        "NIFGSM": (lambda m, tl: ta.NIFGSM(m), True, None),
        "SINIFGSM": (lambda m, tl: ta.SINIFGSM(m), True, None),
        "VMIFGSM": (lambda m, tl: ta.VMIFGSM(m), True, None),
        "VNIFGSM": (lambda m, tl: ta.VNIFGSM(m), True, None),
        "PGDRS": (lambda m, tl: ta.PGDRS(m), True, None),
        "PGDRS_sd0": (lambda m, tl: ta.PGDRS(m, noise_sd=0.0), True, None),
        "PGDRSL2": (lambda m, tl: ta.PGDRSL2(m), True, None),
        "PGDRSL2_sd0": (lambda m, tl: ta.PGDRSL2(m, noise_sd=0.0), True, None),
        "PIFGSM": (lambda m, tl: ta.PIFGSM(m), False, None),
        "PIFGSMPP": (lambda m, tl: ta.PIFGSMPP(m), True, None),
        "MultiAttack": (lambda m, tl: ta.MultiAttack([
            ta.FGSM(m, eps=8 / 255),
            ta.PGD(m, eps=8 / 255, alpha=2 / 225, steps=10, random_start=False)]), False, None),
        "LGV": (lambda m, tl: ta.LGV(m, tl, verbose=False), False, None),
        "OnePixel": (lambda m, tl: ta.OnePixel(m), True, 64),
        "JSMA": (lambda m, tl: ta.JSMA(m), True, 16),
        "SparseFool": (lambda m, tl: ta.SparseFool(m), False, 32),
        "Pixle": (lambda m, tl: ta.Pixle(m), True, 32),
        "EADL1": (lambda m, tl: ta.EADL1(m), True, 32),
        "EADEN": (lambda m, tl: ta.EADEN(m), True, 32),
    }


def run_attack(make, model, x, y, targeted, device, batch=256, seed=0):
    atk = make(model)
    if targeted:
        atk.set_mode_targeted_by_label(quiet=True)
    correct, preds, norms = [], [], []
    t0 = time.time()
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch].to(device), y[i:i + batch].to(device)
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        adv = atk(xb, (yb + 1) % 10 if targeted else yb)
        with torch.no_grad():
            pred = model(adv).argmax(1)
        correct.append((pred == yb).cpu())
        preds.append(pred.cpu())
        d = (adv - xb).flatten(1).cpu().double()
        norms.append(torch.stack([(d != 0).sum(1).double(), d.abs().sum(1), d.norm(dim=1), d.abs().max(1)[0]], 1))
    secs = time.time() - t0
    return torch.cat(correct), secs, torch.cat(preds), torch.cat(norms)


# the attacks whose perturbation size is the result (minimum-norm and L0 attacks): their
# per-sample L0, L1, L2 and Linf norms (attack space) go into the fixture too
NORM_ATTACKS = {"EADL1", "EADEN", "JSMA", "SparseFool", "OnePixel", "Pixle"}


def patch_ead_float64():
    """EAD's adjust_best_result stores argmax(...).float() into its best-score tensors, which
    are float64 under a float64 default dtype (index_put refuses the mix): give it float32
    copies of the two score tensors and copy them back (the scores are small integers, exact
    in both). Everything else runs as torchattacks wrote it."""
    for cls in (torchattacks.EADL1, torchattacks.EADEN):
        orig = cls.adjust_best_result

        def adjust(self, adv, labels, output, cost, bestl1, bestscore, o_bestl1, o_bestscore, final, orig=orig):
            bs, obs = bestscore.float(), o_bestscore.float()
            orig(self, adv, labels, output, cost, bestl1, bs, o_bestl1, obs, final)
            bestscore.copy_(bs)
            o_bestscore.copy_(obs)

        cls.adjust_best_result = adjust


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True, help="CIFAR-10 test_batch.bin")
    ap.add_argument("--out", required=True)
    ap.add_argument("--limit", type=int, default=761)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", default="")
    ap.add_argument("--semantics", default="beard,pixel")
    ap.add_argument("--modes", default="targeted,untargeted")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                    help="model and images in this precision (float64: to measure how far torchattacks' own float32 "
                         "run is from exact arithmetic; torchattacks' internal tensors stay as it makes them)")
    ap.add_argument("--seeds", default="0",
                    help="comma-separated seeds: each setting runs once per seed (torch, numpy and random seeded with "
                         "it before every batch); the row's correct/pred are the first seed's, and with more than one "
                         "seed the row adds seeds and seed_accuracy (one accuracy per seed)")
    ap.add_argument("--train-weights", action="store_true",
                    help="keep requires_grad on the model's weights (torchattacks' own setting; the figures are the same)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    net = ConvNet(3, 10)
    net.load_state_dict(torch.load(a.model, map_location="cpu"))
    dt = torch.float64 if a.dtype == "float64" else torch.float32
    net.eval().to(a.device, dt)
    seeds = [int(s) for s in a.seeds.split(",")]
    xpix, y = load_cifar_bin(a.data, a.limit)
    mean = torch.tensor(MEAN).reshape(1, 3, 1, 1)
    std = torch.tensor(STD).reshape(1, 3, 1, 1)
    xnorm = (xpix - mean) / std  # in float32, then converted (the float32 run's inputs, exactly)
    xpix, xnorm = xpix.to(dt), xnorm.to(dt)
    # float64: torchattacks' own tensors (EAD's bounds and best norms, its one-hot) too
    torch.set_default_dtype(dt)
    if dt == torch.float64:
        patch_ead_float64()
    results = json.load(open(a.out)) if os.path.exists(a.out) else {"n": a.limit, "results": []}
    with torch.no_grad():
        clean = (net(xnorm.to(a.device)).argmax(1).cpu() == y)
    results["clean_accuracy"] = round(100.0 * clean.float().mean().item(), 4)
    results["torch"] = torch.__version__
    results["torchattacks"] = torchattacks.__version__
    done = {(r["attack"], r["semantics"], r["targeted"]) for r in results["results"]}
    attacks = {k: (lambda m, tl, f=f: f(m), t, None) for k, (f, t) in beard_attacks().items()}
    attacks.update(other_attacks())
    only = [s for s in a.only.split(",") if s]
    train_x, train_y = load_cifar_train(os.path.dirname(a.data))
    for name in only or list(attacks):
        make, can_target, limit = attacks[name]
        n = min(a.limit, limit or a.limit)
        for sem in a.semantics.split(","):
            model = net if sem == "beard" else Normalized(net).to(a.device, dt)
            x = (xnorm if sem == "beard" else xpix)[:n]
            tx = (train_x - mean) / std if sem == "beard" else train_x
            loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(tx, train_y), batch_size=256,
                                                 shuffle=True)
            for mode in a.modes.split(","):
                targeted = mode == "targeted"
                if targeted and not can_target:
                    continue
                if (name, sem, targeted) in done:
                    continue
                # the attacks need gradients with respect to the input only: without weight
                # gradients autograd skips their branch and computes the same input gradient
                # (the same predictions: checked on 17 settings); LGV trains copies of the model and needs them
                for p in net.parameters():
                    p.requires_grad_(a.train_weights or name == "LGV")
                accs, secs = [], 0.0
                for k, seed in enumerate(seeds):
                    ck, sk, pk, nk = run_attack(lambda m: make(m, loader), model, x, y[:n], targeted, a.device, seed=seed)
                    if k == 0:
                        c, pred, norms = ck, pk, nk
                    secs += sk
                    accs.append(100.0 * ck.float().mean().item())
                    print(f"{name:9s} {sem:5s} {'targeted' if targeted else 'untargeted':10s} acc {accs[-1]:6.2f}  "
                          f"seed {seed} ({sk:.1f}s)", flush=True)
                acc = accs[0]
                entry = {
                    "attack": name, "semantics": sem, "targeted": targeted, "accuracy": round(acc, 4),
                    "seconds": round(secs, 2), "device": a.device, "n": len(c),
                    "correct": "".join("1" if v else "0" for v in c.tolist()),
                    "pred": "".join(str(int(v)) for v in pred.tolist()),
                }
                if a.dtype != "float32":
                    entry["dtype"] = a.dtype
                if len(seeds) > 1:
                    entry["seeds"] = seeds
                    entry["seed_accuracy"] = [round(v, 4) for v in accs]
                if name in NORM_ATTACKS:
                    for k, key in enumerate(["l0", "l1", "l2", "linf"]):
                        entry[key] = [float("%.6g" % v) for v in norms[:, k].tolist()]
                results["results"].append(entry)
                with open(a.out, "w") as f:
                    json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
