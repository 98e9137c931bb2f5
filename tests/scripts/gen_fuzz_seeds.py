"""Writes the seed inputs of the file-format fuzz targets (tests/fuzz/corpus_<target>/):
small, valid files of every format each target parses, prefixed with the selector bytes
the target reads (see the header of each tests/fuzz/fuzz_*.c). Run by hand from the
repository root with a Python that has torch, numpy, scipy and PIL (/usr/bin/python3
here); CI only reads what it wrote. Inputs that once crashed, hung or blew up a target
are added to the same folders by hand, as regression inputs, and never removed.

    /usr/bin/python3 tests/scripts/gen_fuzz_seeds.py
"""
import collections
import gzip
import io
import json
import os
import pickle
import shutil
import sqlite3
import struct
import subprocess
import tempfile

import numpy as np
import scipy.io
import torch
from PIL import Image

FUZZ = "tests/fuzz"


def put(target, name, data):
    d = os.path.join(FUZZ, "corpus_" + target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    assert len(data) <= 65536, (name, len(data))  # run_fuzz.sh's -max_len
    print(f"{d}/{name}: {len(data)} bytes")


def torch_bytes(obj, legacy=False):
    b = io.BytesIO()
    torch.save(obj, b, _use_new_zipfile_serialization=not legacy)
    return b.getvalue()


def dataset_seeds():
    rng = np.random.default_rng(0)
    # CIFAR-10 binary: label byte + 3072 pixels; CIFAR-100: coarse, fine + 3072
    px = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
    put("dataset", "cifar10_bin", bytes([0]) + b"".join(bytes([i % 10]) + px[i].tobytes() for i in range(2)))
    put("dataset", "cifar100_bin", bytes([2]) + b"".join(bytes([1, 42 + i]) + px[i].tobytes() for i in range(2)))
    # python batches (Python 3 pickles, as torchvision's copies are read)
    b10 = {b"batch_label": b"testing batch 1 of 1", b"labels": [3, 8], b"data": px, b"filenames": [b"a.png", b"b.png"]}
    put("dataset", "cifar10_py", bytes([1]) + pickle.dumps(b10, protocol=2))
    b100 = {b"fine_labels": [7, 99], b"coarse_labels": [1, 2], b"data": px}
    put("dataset", "cifar100_py", bytes([3]) + pickle.dumps(b100, protocol=4))
    # DC's tinyimagenet.pt (a dict of tensors)
    tiny = {"images_val": torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8), "labels_val": torch.tensor([5]),
            "images_train": torch.zeros(0, 3, 64, 64, dtype=torch.uint8), "labels_train": torch.zeros(0, dtype=torch.long)}
    put("dataset", "tinyimagenet_pt", bytes([4]) + torch_bytes(tiny))
    # SVHN: X (32, 32, 3, N) uint8, y (N, 1) with 10 for the digit 0
    svhn = io.BytesIO()
    scipy.io.savemat(svhn, {"X": rng.integers(0, 256, (32, 32, 3, 2), dtype=np.uint8),
                            "y": np.array([[10], [3]], dtype=np.uint8)}, do_compression=False)
    put("dataset", "svhn_mat", bytes([5]) + svhn.getvalue())
    svhn = io.BytesIO()
    scipy.io.savemat(svhn, {"X": np.zeros((32, 32, 3, 1), dtype=np.uint8), "y": np.array([[1]], dtype=np.double)},
                     do_compression=True)
    put("dataset", "svhn_mat_compressed", bytes([5]) + svhn.getvalue())
    # MNIST idx: images (magic 0x803, n, 28, 28) and labels (magic 0x801, n), split by two bytes
    n = 2
    images = struct.pack(">IIII", 0x803, n, 28, 28) + rng.integers(0, 256, n * 784, dtype=np.uint8).tobytes()
    labels = struct.pack(">II", 0x801, n) + bytes([7, 1])
    for kind, wrap in ((6, lambda b: b), (7, gzip.compress)):
        im, lb = wrap(images), wrap(labels)
        put("dataset", f"mnist_{'gz' if kind == 7 else 'raw'}", bytes([kind]) + struct.pack(">H", len(im)) + im + lb)


def pool_seeds():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 4)
    y = torch.tensor([1, 7])
    put("pool", "res", bytes([0]) + torch_bytes({"data": [[x, y]], "accs_all_exps": {"ConvNet": [0.5]}}))
    put("pool", "res_legacy", bytes([0]) + torch_bytes({"data": [[x, y], [x * 2, y]]}, legacy=True))
    put("pool", "pair_dict", bytes([0]) + torch_bytes({"image_syn": x, "label_syn": torch.eye(10)[y]}))
    put("pool", "pair_u8", bytes([0]) + torch_bytes({"images": (x.abs() * 40).to(torch.uint8), "labels": y}))
    put("pool", "pkl", bytes([1]) + pickle.dumps((x, y), protocol=4))
    im, lb, lr = torch_bytes(x), torch_bytes(y), torch_bytes(torch.tensor(0.01))
    put("pool", "mtt", bytes([2 | 0x40]) + struct.pack(">HH", len(im), len(lb)) + im + lb + lr)
    # MTT expert trajectories for a ConvNetD1 on 3x4x4 images, 10 classes: one expert, one
    # epoch, the parameters in the network's order (conv, its bias, the instance norm's
    # affine weight and bias, the classifier)
    shapes = [(128, 3, 3, 3), (128,), (128,), (128,), (10, 512), (10,)]
    put("pool", "mtt_buffer", bytes([3]) + torch_bytes([[[torch.randn(*s) * 0.1 for s in shapes]]]))


def image_seeds():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    for mode, name in (("RGB", "rgb"), ("RGBA", "rgba"), ("L", "gray"), ("P", "palette")):
        b = io.BytesIO()
        im = Image.fromarray(rgb)
        im = im.convert(mode) if mode != "P" else im.quantize(8)
        im.save(b, format="PNG")
        put("image", f"{name}.png", b.getvalue())
    for mode, name in (("RGB", "rgb"), ("L", "gray")):
        b = io.BytesIO()
        Image.fromarray(rgb).convert(mode).save(b, format="JPEG", quality=90)
        put("image", f"{name}.jpg", b.getvalue())
    b = io.BytesIO()
    Image.fromarray(rgb).save(b, format="JPEG", progressive=True)
    put("image", "progressive.jpg", b.getvalue())
    # a flat 8000x8000 JPEG cut 40 bytes into its scan: libjpeg alone fills the rest with
    # grey, decoding all 64M pixels from 649 bytes; beard refuses it as PIL does
    b = io.BytesIO()
    Image.new("RGB", (8000, 8000), (120, 30, 200)).save(b, format="JPEG", quality=75)
    d = b.getvalue()
    put("image", "regress-jpeg-truncated-8000", d[:d.find(b"\xff\xda") + 40])


def config_seeds():
    train = {"dataset": "CIFAR10", "model": "ConvNet", "method": "BACON", "ipc": "50",
             "dsa_strategy": "color_crop_cutout_flip_scale_rotate", "syn_ce": True, "ce_weight": 1, "aug": True,
             "data_file": "./dataset_pool/BACON/BACON_cifar10_ipc50_conv.pt", "save_path": "./model_pool/BACON/",
             "train_attack": "PGD_e4", "target_attack": False, "test_attack": "None", "src_dataset": False}
    put("config", "train_config.json", json.dumps(train, indent=2).encode())
    evaluate = {"dataset": "CIFAR10", "model": "ConvNet", "method": "BACON", "ipc": "50", "load_file": "m.pth",
                "save_path": "out", "test_attack": ["Clean", "FGSM", "PGD", "PGD_L2", "Deepfool", "CW", "AA", "Square",
                                                   "SPSA"],
                "target_attack": [True, False], "src_dataset": True, "semantics": "beard",
                "attack_params": {"PGD": {"steps": 20, "eps": "8/255"}}}
    put("config", "evaluate_config.json", json.dumps(evaluate, indent=2).encode())
    grid = {"name": "seed", "datasets": ["synthetic"], "ipcs": [200], "archs": ["ConvNetW32"],
            "methods": [{"name": "Full", "src_dataset": True}, {"name": "Rand", "model": "rand.pth"}],
            "train": {"epochs": 1, "dsa_strategy": "None"},
            "attacks": ["FGSM", {"name": "PGD", "params": {"steps": 3}}], "limit": 32, "threads": 1}
    put("config", "grid.json", json.dumps(grid, indent=2).encode())
    grid_distill = {"name": "seed-distill", "datasets": ["synthetic"], "ipcs": [1, 10], "archs": ["ConvNetW32"],
                    "methods": [{"name": "DM", "distill": {"arch": "ConvNetW32", "iterations": 3, "ipc": [1],
                                                           "batch_real": 16, "lr_img": "1/2", "init": "noise",
                                                           "checkpoint_every": 1, "seed": 3}},
                                {"name": "X", "distill": {"method": "IDM", "aug": True, "Iteration": 2}}],
                    "train": {"epochs": 1, "dsa_strategy": "None"}, "attacks": ["FGSM"], "limit": 32, "threads": 1}
    put("config", "grid_distill.json", json.dumps(grid_distill, indent=2).encode())


def store_seeds():
    """a results store as `beard run` writes it (needs build/beard), and the published CSV"""
    with open("configs/published/beard_leaderboard_2024.csv", "rb") as f:
        put("store", "published_csv", bytes([0]) + f.read())
    with tempfile.TemporaryDirectory() as d:
        grid = {"name": "seed", "datasets": ["synthetic"], "ipcs": [200], "archs": ["ConvNetW32"],
                "methods": [{"name": "Full", "src_dataset": True}], "train": {"epochs": 0, "dsa_strategy": "None"},
                "attacks": ["FGSM"], "limit": 8, "threads": 1}
        with open(os.path.join(d, "grid.json"), "w") as f:
            json.dump(grid, f)
        db = os.path.join(d, "store.db")
        subprocess.run(["build/beard", "run", "--config", os.path.join(d, "grid.json"), "--store", db, "--out",
                        os.path.join(d, "out"), "--quiet"], check=True, env={**os.environ, "BEARD_NO_PROGRESS": "1"})
        # one file (no WAL beside it), as small as SQLite makes it
        con = sqlite3.connect(db)
        con.execute("PRAGMA journal_mode=DELETE")
        con.execute("VACUUM")
        con.close()
        with open(db, "rb") as f:
            put("store", "store_db", bytes([1]) + f.read())


if __name__ == "__main__":
    store_seeds()
    dataset_seeds()
    pool_seeds()
    image_seeds()
    config_seeds()
