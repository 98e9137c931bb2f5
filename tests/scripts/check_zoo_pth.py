"""beard's .pth files load in PyTorch with strict=True and give PyTorch's logits (run by
`make zoo-interop`, not in CI). test_zoo, run with BEARD_ZOO_SAVE=DIR, saves every case's
model (the parameters of gen_zoo_fixtures.zoo_param) as DIR/<case>.pth with beard's own
checkpoint writer; this script loads each into the reference definition
(tests/scripts/zoo_models.py) with load_state_dict(strict=True), runs it on the same 64 test
images and compares the logits with the fixture's (PyTorch float64).

    /usr/bin/python3 tests/scripts/check_zoo_pth.py --dir DIR [--shared ../shared]
Exits non-zero when a file fails to load or its logits differ by more than 1e-4 (or twice
PyTorch float32's own error, as test_zoo allows)."""
import argparse
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_zoo_fixtures as G  # noqa: E402
import zoo_models  # noqa: E402


def read_fixture(path):
    out = {}
    with open(path, "rb") as f:
        assert f.read(8) == b"BEARDFIX"
        (n,) = struct.unpack("<I", f.read(4))
        for _ in range(n):
            (ln,) = struct.unpack("<H", f.read(2))
            name = f.read(ln).decode()
            (nd,) = struct.unpack("<B", f.read(1))
            shape = struct.unpack("<%dq" % nd, f.read(8 * nd))
            cnt = int(np.prod(shape)) if nd else 1
            out[name] = np.frombuffer(f.read(4 * cnt), dtype="<f4").reshape(shape)
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--shared", default=os.environ.get("BEARD_SHARED", os.path.join(here, "..", "..", "..", "shared")))
    ap.add_argument("--fixture", default=os.path.join(here, "..", "fixtures", "zoo.bin"))
    a = ap.parse_args()
    T = read_fixture(a.fixture)
    cifar, mnist = G.load_cifar(a.shared, G.N_EVAL), G.load_mnist(a.shared, G.N_EVAL)
    ok, n = True, 0
    for case, arch, C, H, K in G.CASES:
        path = os.path.join(a.dir, case + ".pth")
        if not os.path.exists(path):
            print(f"FAIL {case}: {path} missing")
            ok = False
            continue
        x, _ = mnist if C == 1 else cifar
        if H == 64:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        net = zoo_models.build(arch, C, K, H)
        try:
            net.load_state_dict(torch.load(path, map_location="cpu"), strict=True)
        except Exception as ex:  # noqa: BLE001
            print(f"FAIL {case}: load_state_dict(strict=True): {ex}")
            ok = False
            continue
        net.eval()
        with torch.no_grad():
            z = net(x).double().numpy()
        d = np.abs(z - T[case + ".logits"]).max()
        tol = max(1e-4, 2 * float(T[case + ".logits_err32"][0]))
        good = d <= tol
        ok &= good
        n += 1
        print(f"{'ok  ' if good else 'FAIL'} {case:20s} {arch:18s} strict load, max logit difference {d:.2g} (tolerance {tol:.2g})")
    print(f"{n} checkpoints checked")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
