"""Wall time of an attack in torchattacks 3.5.1 against beard's, on the CPU, same threads.

    /usr/bin/python3 scripts/bench_attacks_torch.py --attack AutoAttack --limit 64 --threads 2 \
        [--semantics beard|pixel] [--beard build/beard] [--model BACON.pth] [--data DIR]
    /usr/bin/python3 scripts/bench_attacks_torch.py --attack new --threads 2   # the 25 others, a table

Runs the attack with BEARD's parameters (the fixture's, tests/scripts/gen_attack_refs.py)
on the first --limit CIFAR-10 test images, untargeted unless --targeted, in one batch of
--batch images (BEARD: 256), with torch.set_num_threads(--threads), then the same through
`beard attack` with --threads, and prints both times, accuracies and the ratio. The last
line is machine-readable:
    BENCH <attack> <semantics> <n> <threads> <torch s> <beard s> <torch acc> <beard acc> <ratio>
          <torch CPU s> <beard CPU s>
beard's time is the attack's own (its JSON "seconds", scoring included, as BEARD times it);
torch's the same span (attack call plus one forward pass to score). CPU times (all threads;
beard's whole process, loading included) help on a shared machine, where wall times move
with the load. --no-beard skips beard.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torchattacks

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "scripts"))
from torch_models import ConvNet, Normalized  # noqa: E402

MEAN = [0.4914, 0.4822, 0.4465]
STD = [0.2023, 0.1994, 0.2010]
SHARED = os.environ.get("BEARD_SHARED", os.path.join(HERE, "..", "..", "shared"))


# beard name -> (torchattacks constructor with BEARD's / the fixture's parameters, beard preset)
ATTACKS = {
    "FGSM": (lambda m: torchattacks.FGSM(m, eps=8 / 255), "beard"),
    "PGD": (lambda m: torchattacks.PGD(m, eps=8 / 255, alpha=2 / 225, steps=10, random_start=False), "beard"),
    "PGDL2": (lambda m: torchattacks.PGDL2(m, eps=128 / 255, alpha=15 / 255, steps=10, random_start=False), "beard"),
    "CW": (lambda m: torchattacks.CW(m, c=1, kappa=0, steps=100, lr=0.01), "beard"),
    "DeepFool": (lambda m: torchattacks.DeepFool(m, steps=50, overshoot=0.02), "beard"),
    "AutoAttack": (lambda m: torchattacks.AutoAttack(m, eps=8 / 255, seed=0), "beard"),
    "Square": (lambda m: torchattacks.Square(m, norm="Linf", eps=8 / 255, n_queries=5000, n_restarts=1, p_init=0.8,
                                             seed=0, verbose=False, loss="margin", resc_schedule=True), "beard"),
    "APGD": (lambda m: torchattacks.APGD(m, eps=8 / 255, steps=10, seed=0), "torchattacks"),
    "APGDT": (lambda m: torchattacks.APGDT(m, eps=8 / 255, steps=10, seed=0), "torchattacks"),
    "FAB": (lambda m: torchattacks.FAB(m, eps=8 / 255, steps=10, seed=0), "torchattacks"),
    "SPSA": (lambda m: torchattacks.SPSA(m, eps=8 / 255), "beard"),
}

# the rest of torchattacks 3.5.1, with its defaults (beard preset torchattacks); the
# per-attack image count keeps the slow torchattacks runs (seconds per image) bearable
TA = torchattacks
NEW = {
    "VANILA": (lambda m: TA.VANILA(m), 256), "GN": (lambda m: TA.GN(m), 256),
    "RFGSM": (lambda m: TA.RFGSM(m), 64), "EOTPGD": (lambda m: TA.EOTPGD(m), 64),
    "FFGSM": (lambda m: TA.FFGSM(m), 64), "UPGD": (lambda m: TA.UPGD(m), 64),
    "NIFGSM": (lambda m: TA.NIFGSM(m), 64), "SINIFGSM": (lambda m: TA.SINIFGSM(m), 64),
    "VMIFGSM": (lambda m: TA.VMIFGSM(m), 64), "VNIFGSM": (lambda m: TA.VNIFGSM(m), 64),
    "DIFGSM": (lambda m: TA.DIFGSM(m), 64), "TIFGSM": (lambda m: TA.TIFGSM(m), 64),
    "Jitter": (lambda m: TA.Jitter(m), 64), "PGDRS": (lambda m: TA.PGDRS(m), 64),
    "PGDRSL2": (lambda m: TA.PGDRSL2(m), 64), "PIFGSM": (lambda m: TA.PIFGSM(m), 64),
    "PIFGSMPP": (lambda m: TA.PIFGSMPP(m), 64), "JSMA": (lambda m: TA.JSMA(m), 2),
    "EADL1": (lambda m: TA.EADL1(m), 16), "EADEN": (lambda m: TA.EADEN(m), 16),
    "SparseFool": (lambda m: TA.SparseFool(m), 4), "OnePixel": (lambda m: TA.OnePixel(m), 8),
    "Pixle": (lambda m: TA.Pixle(m), 8),
    "MultiAttack": (lambda m: TA.MultiAttack([TA.FGSM(m, eps=8 / 255), TA.PGD(m, eps=8 / 255, alpha=2 / 225, steps=10,
                                                                               random_start=False)]), 64),
    "LGV": (lambda m: TA.LGV(m, train_loader(m), verbose=False), 64),
}
for k, (f, n) in NEW.items():
    ATTACKS[k] = (f, "beard" if k == "MultiAttack" else "torchattacks")
UNTARGETED_ONLY = {"VANILA", "GN", "PIFGSM", "SparseFool", "MultiAttack", "LGV"}
TRAIN = {}


def train_loader(model):
    # LGV's training split: the CIFAR-10 training batches beside --data, in the model's input
    # space (normalised for beard semantics; the Normalized wrapper takes pixels)
    a = TRAIN["args"]
    xs, ys = [], []
    for i in range(1, 6):
        p = os.path.join(a.data, f"data_batch_{i}.bin")
        if os.path.exists(p):
            x, y = load_cifar_bin(p, None)
            xs.append(x), ys.append(y)
    x, y = torch.cat(xs), torch.cat(ys)
    if a.semantics == "beard":
        x = (x - torch.tensor(MEAN).reshape(1, 3, 1, 1)) / torch.tensor(STD).reshape(1, 3, 1, 1)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=256, shuffle=True)


def load_cifar_bin(path, limit):
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3073)[:limit]
    labels = torch.from_numpy(raw[:, 0].astype(np.int64))
    x = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy()).float().div(255)
    return x, labels


def run_torch(a):
    torch.set_num_threads(a.threads)
    net = ConvNet(3, 10)
    net.load_state_dict(torch.load(a.model, map_location="cpu"))
    net.eval()
    xpix, y = load_cifar_bin(os.path.join(a.data, "test_batch.bin"), a.limit)
    if a.semantics == "beard":
        model = net
        x = (xpix - torch.tensor(MEAN).reshape(1, 3, 1, 1)) / torch.tensor(STD).reshape(1, 3, 1, 1)
    else:
        model, x = Normalized(net).eval(), xpix
    atk = ATTACKS[a.attack][0](model)
    if a.targeted:
        atk.set_mode_targeted_by_label(quiet=True)
    correct, t0, c0 = 0, time.perf_counter(), time.process_time()
    for i in range(0, len(x), a.batch):
        xb, yb = x[i:i + a.batch], y[i:i + a.batch]
        torch.manual_seed(0)
        adv = atk(xb, (yb + 1) % 10 if a.targeted else yb)
        with torch.no_grad():
            correct += (model(adv).argmax(1) == yb).sum().item()
    return time.perf_counter() - t0, time.process_time() - c0, 100.0 * correct / len(x)


def run_beard(a):
    out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    cmd = [a.beard, "attack", "--model", a.model, "--dataset", "cifar10", "--data", a.data, "--attack", a.attack,
           "--targeted", "yes" if a.targeted else "no", "--semantics", a.semantics, "--preset", ATTACKS[a.attack][1],
           "--limit", str(a.limit), "--batch", str(a.batch), "--threads", str(a.threads), "--json", out]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
    with open(out) as f:
        r = json.load(f)
    os.unlink(out)
    r = r["results"][0]
    return r["seconds"], cpu, r["accuracy"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--attack", required=True, choices=sorted(ATTACKS) + ["new"],
                    help="an attack, or 'new': each of the 25 attacks beyond BEARD's set in turn, with its own "
                         "image count (--limit caps it), and a Markdown table at the end")
    ap.add_argument("--limit", type=int, default=64)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--semantics", default="beard", choices=["beard", "pixel"])
    ap.add_argument("--targeted", action="store_true")
    ap.add_argument("--model",
                    default=os.path.join(SHARED, "beard/model_pool/BACON_ConvNet_CIFAR10_50_None_0.6995.pth"))
    ap.add_argument("--data", default=os.path.join(SHARED, "data/cifar-10-batches-bin"))
    ap.add_argument("--beard", default=os.path.join(HERE, "..", "build", "beard"))
    ap.add_argument("--no-beard", action="store_true")
    a = ap.parse_args()
    TRAIN["args"] = a
    if a.attack == "new":
        rows, limit = [], a.limit
        for name, (_, n) in NEW.items():
            a.attack, a.limit = name, min(n, limit)
            a.targeted = False
            ts, tc, acc_t = run_torch(a)
            bs, bc, acc_b = run_beard(a)
            print(f"BENCH {name} {a.semantics} {a.limit} {a.threads} {ts:.3f} {bs:.3f} {acc_t:.2f} {acc_b:.2f} "
                  f"{ts / bs:.3f} {tc:.3f} {bc:.3f}", flush=True)
            rows.append((name, a.limit, ts, bs, tc, bc))
        print(f"\n| attack | images | torchattacks | beard | ratio (wall) | ratio (CPU) |\n| --- | --- | --- | --- | --- | --- |")
        for name, n, ts, bs, tc, bc in rows:
            print(f"| {name} | {n} | {ts:.2f} s | {bs:.2f} s | {ts / bs:.2f}x | {tc / bc:.2f}x |")
        return
    what = f"{a.attack} ({a.semantics}, {'targeted' if a.targeted else 'untargeted'}, {a.limit} images, " \
           f"{a.threads} threads)"
    ts, tc, acc_t = run_torch(a)
    print(f"torchattacks {what}: {ts:.2f} s wall, {tc:.2f} s CPU, accuracy {acc_t:.2f}%", flush=True)
    bs, bc, acc_b = float("nan"), float("nan"), float("nan")
    if not a.no_beard:
        bs, bc, acc_b = run_beard(a)
        print(f"beard        {what}: {bs:.2f} s wall, {bc:.2f} s CPU, accuracy {acc_b:.2f}%  -> beard is "
              f"{ts / bs:.2f}x faster ({tc / bc:.2f}x in CPU time)")
    print(f"BENCH {a.attack} {a.semantics} {a.limit} {a.threads} {ts:.3f} {bs:.3f} {acc_t:.2f} {acc_b:.2f} "
          f"{ts / bs:.3f} {tc:.3f} {bc:.3f}")


if __name__ == "__main__":
    main()
