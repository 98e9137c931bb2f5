"""Runs the official DC/DSA and MTT code on a local CIFAR-10 folder (the binary
cifar-10-batches-bin files, e.g. ../shared/data), for the reference figures of
`make distill-fidelity` and `beard bench --distill`. Run by hand, outside the suite:

    /usr/bin/python3 tests/scripts/official_distill.py dc  --repo DC_REPO --data DIR --out DIR [main.py options]
    /usr/bin/python3 tests/scripts/official_distill.py buffer --repo MTT_REPO --data DIR [buffer.py options]
    /usr/bin/python3 tests/scripts/official_distill.py mtt --repo MTT_REPO --data DIR --out DIR [distill.py options]

DC_REPO is a checkout of VICO-UoE/DatasetCondensation, MTT_REPO of
GeorgeCazenavette/mtt-distillation (their files are not part of beard). MTT needs kornia
(MTT pins 0.6.3: pip install --target LIBDIR kornia==0.6.3 --no-deps; PYTHONPATH=LIBDIR).

Nothing of the official algorithms is changed. What is adapted, from outside:
  - torchvision.datasets.CIFAR10 is replaced by a reader of the binary files in --data (the
    same images torchvision would give; transforms are the official ones);
  - MTT: wandb is a stub that records nothing (config as given on the command line);
    torch.Tensor.cuda returns the tensor itself (distill.py calls .cuda() when saving,
    also on a CPU); at the end, the final synthetic images (ZCA space when --zca), their
    labels and syn_lr are taken from distill.py's main() and written to --out as MTT's
    images_best.pt / labels_best.pt plus lr_best.pt, and, with --zca, the un-whitened
    images mean/std-normalised (images_unwhitened.pt), which is what stage 2 trains on;
  - --bench N: time N iterations and print iterations per second (no files).
"""
import argparse
import os
import sys
import time
import types

import numpy as np
import torch

MEAN, STD = [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]


def read_bin(root, train):
    base = root
    if os.path.isdir(os.path.join(root, "cifar-10-batches-bin")):
        base = os.path.join(root, "cifar-10-batches-bin")
    files = [f"data_batch_{i}.bin" for i in range(1, 6)] if train else ["test_batch.bin"]
    raw = np.concatenate([np.fromfile(os.path.join(base, f), dtype=np.uint8).reshape(-1, 3073) for f in files])
    labels = raw[:, 0].astype(np.int64)
    images = raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # HWC, as torchvision keeps them
    return images, labels


class BinCIFAR10(torch.utils.data.Dataset):
    """torchvision.datasets.CIFAR10's interface over the binary files"""
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def __init__(self, root, train=True, download=False, transform=None, target_transform=None):
        from PIL import Image
        self._Image = Image
        self.data, labels = read_bin(root, train)
        self.targets = labels.tolist()
        self.transform, self.target_transform = transform, target_transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        img = self._Image.fromarray(self.data[i])
        if self.transform is not None:
            img = self.transform(img)
        t = self.targets[i]
        return img, (self.target_transform(t) if self.target_transform else t)


def install_dataset():
    import torchvision
    torchvision.datasets.CIFAR10 = BinCIFAR10


def stub_wandb():
    w = types.ModuleType("wandb")

    class Cfg:
        _items = {}

    w.config = Cfg()

    def init(config=None, **kw):
        Cfg._items = dict(vars(config)) if config is not None else {}

    w.init = init
    w.log = lambda *a, **k: None
    w.finish = lambda *a, **k: None
    w.Histogram = lambda *a, **k: None
    w.Image = lambda *a, **k: None
    w.run = types.SimpleNamespace(name="beard-reference")
    sys.modules["wandb"] = w


def capture_locals(fn_name, module_file):
    """the locals of fn_name (defined in module_file) when it returns"""
    box = {}

    def prof(frame, event, arg):
        if event == "return" and frame.f_code.co_name == fn_name and frame.f_code.co_filename == module_file:
            box.update(frame.f_locals)

    return box, prof


class Bench(Exception):
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["dc", "buffer", "mtt"])
    ap.add_argument("--repo", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bench", type=int, default=0, help="time this many iterations, then stop")
    args, rest = ap.parse_known_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    install_dataset()
    sys.path.insert(0, os.path.abspath(args.repo))
    os.chdir(args.repo)  # the official scripts write relative paths (logged_files, buffers)
    if args.what == "mtt":
        stub_wandb()
        torch.Tensor.cuda = lambda self, *a, **k: self
    script = {"dc": "main.py", "buffer": "buffer.py", "mtt": "distill.py"}[args.what]
    mod_file = os.path.join(os.path.abspath(args.repo), script)
    sys.argv = [script, "--data_path", os.path.abspath(args.data)] + rest
    if args.what == "dc" and args.out:
        sys.argv += ["--save_path", os.path.abspath(args.out)]
    src = open(mod_file).read()
    code = compile(src, mod_file, "exec")
    g = {"__name__": "official_" + args.what, "__file__": mod_file}
    exec(code, g)
    if args.bench:
        # count iterations through the point every iteration passes: DC's get_network call
        # (one per iteration), MTT's ReparamModule (one student per iteration)
        import utils
        counter = {"n": -1, "t0": None}
        name = "get_network"

        def hook(orig):
            def f(*a, **k):
                counter["n"] += 1
                if counter["n"] == 1:
                    counter["t0"] = time.time()
                if counter["n"] == args.bench + 1:
                    raise Bench()
                return orig(*a, **k)
            return f

        if args.what == "mtt":
            g["ReparamModule"] = hook(g["ReparamModule"])
        else:
            g[name] = hook(g[name])
            utils.get_network = g[name]
    t_start = time.time()
    try:
        if args.what == "dc":
            g["main"]()
        elif args.what == "buffer":
            run_script_main(mod_file, g)
        else:
            box, prof = capture_locals("main", mod_file)
            parser_args = build_args(mod_file, g)
            sys.setprofile(prof)
            try:
                g["main"](parser_args)
            finally:
                sys.setprofile(None)
            save_mtt(box, args.out, parser_args)
    except Bench:
        dt = time.time() - counter["t0"]
        print(f"BENCH {args.what} iterations {args.bench} seconds {dt:.3f} it/s {args.bench / dt:.5f}")
        return
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"done in {time.time() - t_start:.1f} s, peak RSS {peak:.0f} MB")


def build_args(mod_file, g):
    """the argparse namespace of the script's __main__ block, from sys.argv"""
    src = open(mod_file).read()
    block = src[src.index("if __name__ == '__main__':"):]
    lines = block.split("\n")[1:]
    body = "\n".join(l[4:] if l.startswith("    ") else l for l in lines)
    body = body.replace("main(args)", "")
    loc = dict(g)
    exec(compile(body, mod_file, "exec"), loc)
    return loc["args"]


def run_script_main(mod_file, g):
    a = build_args(mod_file, g)
    g["main"](a)


def save_mtt(box, out, a):
    os.makedirs(out, exist_ok=True)
    x, y, lr = box["image_syn"].detach().cpu(), box["label_syn"].cpu(), box["syn_lr"].detach().cpu()
    torch.save(x, os.path.join(out, "images_best.pt"))
    torch.save(y, os.path.join(out, "labels_best.pt"))
    torch.save(lr, os.path.join(out, "lr_best.pt"))
    if getattr(a, "zca", False):
        zca = box["args"].zca_trans
        pix = zca.inverse_transform(x)
        mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
        torch.save((pix - mean) / std, os.path.join(out, "images_unwhitened.pt"))
    print(f"wrote {out}: images {tuple(x.shape)}, syn_lr {float(lr):.6g}")


if __name__ == "__main__":
    main()
