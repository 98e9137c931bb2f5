"""Runs an official distillation script (VICO-UoE/DatasetCondensation main_DM.py,
uitrbn/IDM IDM_cifar10.py, zhouzhengqd/BACON Code/BACON_cifar10.py) unchanged on the
CIFAR-10 data that beard reads, for `make distill-fidelity` and `beard bench --distill`.

The official code is not part of beard: fetch it yourself and point --code at a checkout,
e.g.  git clone https://github.com/VICO-UoE/DatasetCondensation /work/runs/distill/official/DC

What this wrapper changes around it, and nothing inside it:
  - torchvision.datasets.CIFAR10 reads the binary layout (data_batch_1..5.bin,
    test_batch.bin) from --cifar, so that a subset such as ../shared/data's 5 x 761
    training and 761 test images can be fed as it is (torchvision would insist on its
    own archive and checksums); images and labels come out as torchvision's would;
  - the modules IDM/BACON import but do not need for this (torchnet's ClassErrorMeter, a
    three-line meter, and kornia, used only for ZCA) are provided when missing;
  - an in-place copy from a tensor into itself (DiffAugment's Siamese `randb[:] = randb[0]`,
    which torch >= 1.13 refuses when the two overlap, as they do for a batch of one)
    copies from a clone, as older torch did implicitly;
  - torch.set_num_threads(--threads); random, numpy and torch are seeded with --seed
    (the scripts still reseed torch from the clock in get_network and DiffAugment, as
    they always do);
  - with --timing FILE, the wall-clock and the process CPU time of every step of the
    synthetic images' optimiser (the SGD with momentum 0.5) are recorded, so that a
    benchmark can take the time per iteration without the set-up;
  - with --init-out FILE, the synthetic set as the image optimiser first receives it (the
    official initialisation) is written as a res_*.pt, which `beard distill --init-from`
    reads: the two sides then start from the same images;
  - MTT (GeorgeCazenavette/mtt-distillation distill.py, buffer.py): wandb, which
    distill.py logs to, is a stub that records nothing (its config is the command line);
    torch.Tensor.cuda returns the tensor itself (distill.py calls .cuda() when it saves,
    also without a GPU); torch.Tensor.cpu of a tensor already on the CPU returns a copy,
    as it does from the GPU the code was written for: buffer.py snapshots each epoch's
    parameters with `p.detach().cpu()`, which on a CPU is the live parameter itself, so
    without the copy every snapshot of a trajectory is its final epoch, theta_0 equals
    theta*, and distill.py's loss divides by zero (inf at iteration 0, then nan); with
    --mtt-out DIR the final synthetic images (ZCA space with --zca), labels and syn_lr
    are taken from distill.py's main() when it returns and written there as
    images_best.pt, labels_best.pt and lr_best.pt, and with --zca the images un-whitened
    and mean/std-normalised as unwhitened/images_best.pt (with the labels and lr), which
    is what stage 2 trains on. kornia, for --zca, must be importable
    (MTT pins 0.6.3: pip install --target DIR kornia==0.6.3 --no-deps; PYTHONPATH=DIR).

usage: run_official_distill.py --code DIR --script main_DM.py --cifar DIR [--threads 2]
                               [--seed 0] [--timing FILE] [--mtt-out DIR] [--init-out FILE] -- <the script's own arguments>
"""
import argparse
import json
import os
import random
import runpy
import sys
import time
import types

import numpy as np
import torch


def install_cifar(cifar_dir):
    import torchvision

    base = torchvision.datasets.CIFAR10

    class SubsetCIFAR10(base):
        def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
            torchvision.datasets.VisionDataset.__init__(self, root, transform=transform,
                                                        target_transform=target_transform)
            self.train = train
            files = ["data_batch_%d.bin" % i for i in range(1, 6)] if train else ["test_batch.bin"]
            data, labels = [], []
            for f in files:
                raw = np.fromfile(os.path.join(cifar_dir, f), dtype=np.uint8).reshape(-1, 3073)
                labels += raw[:, 0].astype(int).tolist()
                data.append(raw[:, 1:].reshape(-1, 3, 32, 32))
            self.data = np.concatenate(data).transpose(0, 2, 3, 1)  # HWC, as torchvision holds it
            self.targets = labels
            with open(os.path.join(cifar_dir, "batches.meta.txt")) as fh:
                self.classes = [l.strip() for l in fh if l.strip()]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    torchvision.datasets.CIFAR10 = SubsetCIFAR10


def install_stubs():
    try:
        import torchnet  # noqa: F401
    except ImportError:
        class ClassErrorMeter:  # torchnet.meter.ClassErrorMeter(accuracy=True), top-1
            def __init__(self, topk=(1,), accuracy=False):
                self.accuracy = accuracy
                self.reset()

            def reset(self):
                self.sum, self.n = 0, 0

            def add(self, output, target):
                pred = output.argmax(dim=1)
                self.sum += int((pred == target).sum())
                self.n += int(target.numel())

            def value(self, k=None):
                acc = 100.0 * self.sum / self.n
                return [acc if self.accuracy else 100.0 - acc]

        tn = types.ModuleType("torchnet")
        tn.meter = types.ModuleType("torchnet.meter")
        tn.meter.ClassErrorMeter = ClassErrorMeter
        sys.modules["torchnet"], sys.modules["torchnet.meter"] = tn, tn.meter
    try:
        import kornia  # noqa: F401
    except ImportError:
        sys.modules["kornia"] = types.ModuleType("kornia")


def install_self_copy():
    setitem = torch.Tensor.__setitem__

    def patched(self, idx, value):
        if isinstance(value, torch.Tensor):
            try:
                if value.storage().data_ptr() == self.storage().data_ptr():
                    value = value.clone()
            except RuntimeError:
                pass
        return setitem(self, idx, value)

    torch.Tensor.__setitem__ = patched


def install_timing(path):
    stamps, cpu = [], []
    init, step = torch.optim.SGD.__init__, torch.optim.SGD.step

    def new_init(self, params, *a, **k):
        init(self, params, *a, **k)
        self._beard_images = self.defaults.get("momentum") == 0.5

    def new_step(self, *a, **k):
        r = step(self, *a, **k)
        if getattr(self, "_beard_images", False):
            stamps.append(time.perf_counter())
            cpu.append(time.process_time())
        return r

    torch.optim.SGD.__init__, torch.optim.SGD.step = new_init, new_step
    import atexit

    def dump():
        with open(path, "w") as fh:
            json.dump({"image_steps": stamps, "image_steps_cpu": cpu}, fh)

    atexit.register(dump)


def install_init_out(path):
    """--init-out: the synthetic set as the image optimiser (SGD with momentum 0.5) first
    receives it, i.e. the official initialisation, as a res_*.pt that `beard distill
    --init-from` reads (the labels are the caller's label_syn)"""
    init = torch.optim.SGD.__init__

    def new_init(self, params, *a, **k):
        params = list(params)
        init(self, params, *a, **k)
        if self.defaults.get("momentum") == 0.5 and not os.path.exists(path):
            x = self.param_groups[0]["params"][0].detach().clone().cpu()
            y = sys._getframe(1).f_locals.get("label_syn")
            y = y.detach().clone().cpu() if y is not None else torch.arange(10).repeat_interleave(x.shape[0] // 10)
            torch.save({"data": [[x, y.long()]], "accs_all_exps": {}}, path)

    torch.optim.SGD.__init__ = new_init


def install_mtt():
    w = types.ModuleType("wandb")

    class Config:
        _items = {}

    def init(config=None, **kw):
        Config._items = dict(vars(config)) if config is not None else {}

    w.config, w.init = Config(), init
    w.log = w.finish = w.Histogram = w.Image = lambda *a, **k: None
    w.run = types.SimpleNamespace(name="beard-reference")
    sys.modules["wandb"] = w
    torch.Tensor.cuda = lambda self, *a, **k: self
    cpu = torch.Tensor.cpu
    torch.Tensor.cpu = lambda self, *a, **k: self.clone() if self.device.type == "cpu" else cpu(self, *a, **k)


def capture_main(script):
    """the locals of the script's main() when it returns"""
    box = {}

    def prof(frame, event, arg):
        if event == "return" and frame.f_code.co_name == "main" and frame.f_code.co_filename == script:
            box.update(frame.f_locals)

    sys.setprofile(prof)
    return box


def save_mtt(box, out):
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2023, 0.1994, 0.2010]).view(1, 3, 1, 1)
    x, y, lr = box["image_syn"].detach().cpu(), box["label_syn"].cpu(), box["syn_lr"].detach().cpu()
    sets = [(out, x)]
    zca = getattr(box.get("args"), "zca_trans", None)
    if zca is not None:
        sets.append((os.path.join(out, "unwhitened"), (zca.inverse_transform(x) - mean) / std))
    for d, imgs in sets:
        os.makedirs(d, exist_ok=True)
        torch.save(imgs, os.path.join(d, "images_best.pt"))
        torch.save(y, os.path.join(d, "labels_best.pt"))
        torch.save(lr, os.path.join(d, "lr_best.pt"))


# what the official scripts import beyond torch (IDM and BACON: tqdm, matplotlib; BACON's
# utils.py: scikit-learn's TSNE; all of them: scipy, torchvision), by Debian package
NEEDED = {"scipy": "python3-scipy", "torchvision": "python3-torchvision", "tqdm": "python3-tqdm",
          "matplotlib": "python3-matplotlib", "sklearn": "python3-sklearn"}


def check_modules(code):
    """names every missing module that the checkout's .py files import, all at once, before
    the script runs, instead of one failed run per module"""
    import glob
    import importlib.util
    import re
    text = "".join(open(f, errors="replace").read() for f in glob.glob(os.path.join(code, "*.py")))
    used = set(re.findall(r"^\s*(?:import|from)\s+(\w+)", text, re.M))
    missing = [m for m in NEEDED if m in used and importlib.util.find_spec(m) is None]
    if missing:
        sys.exit("run_official_distill.py: the official code imports %s; apt-get install %s" %
                 (", ".join(missing), " ".join(NEEDED[m] for m in missing)))


def main():
    argv = sys.argv[1:]
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser()
    ap.add_argument("--code", required=True)
    ap.add_argument("--script", required=True)
    ap.add_argument("--cifar", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timing")
    ap.add_argument("--mtt-out")
    ap.add_argument("--init-out")
    a = ap.parse_args(own)
    check_modules(os.path.abspath(a.code))
    torch.set_num_threads(a.threads)
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    if "mtt" in a.code.lower() or a.mtt_out:
        install_mtt()
    install_stubs()
    install_self_copy()
    install_cifar(os.path.abspath(a.cifar))
    if a.timing:
        install_timing(os.path.abspath(a.timing))
    if a.init_out:
        install_init_out(os.path.abspath(a.init_out))
    script = os.path.join(os.path.abspath(a.code), a.script)
    sys.path.insert(0, os.path.dirname(script))
    sys.argv = [script] + rest
    box = capture_main(script) if a.mtt_out else None
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        sys.setprofile(None)
    if a.mtt_out:
        save_mtt(box, os.path.abspath(a.mtt_out))
    import resource
    print("peak RSS %.0f MB" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0), file=sys.stderr)


if __name__ == "__main__":
    main()
