"""Writes the io/data test fixtures (tests/fixtures/io/) and the fuzz seeds
(tests/fuzz/corpus_*/). Run by hand from the repository root with a Python that has
torch and numpy (e.g. /usr/bin/python3 with torch 1.13); CI only reads what it wrote.

    /usr/bin/python3 tests/scripts/gen_io_fixtures.py

What each file exercises in tests/test_io.c and tests/test_data.c:
  zip_dtypes.pt      torch.save zip format: every dtype, transposed/sliced/stepped/expanded
                     views, storage offsets, two tensors sharing one storage, 0-dim, empty
  zip_nested.pt      a nested object tree: list/tuple/dict/OrderedDict/set, None/bool/int/
                     float/str/bytes, an int wider than 64 bits, numpy scalars and an array
  legacy.pt          the legacy format (_use_new_zipfile_serialization=False)
  plain_p4.pkl       pickle.dump((images, labels, view)) as IDM/BACON write it: tensors as
  plain_p2.pkl       torch.storage._load_from_bytes(legacy blob); p2 routes bytes via _codecs
  state_dict.pth     {'epoch', 'state_dict': DataParallel-prefixed OrderedDict, 'best_acc'}
  tensors.safetensors  written by hand (the safetensors package is not needed)
  cifar10_py/        a CIFAR-10 python test batch (protocol 2) and batches.meta
  cifar10_py2/       the same as Python 2's cPickle writes it (BINSTRING), made by hand
  cifar100_py/       a CIFAR-100 python test batch (protocol 5: numpy's _frombuffer) and meta
  expected.bin       BEARDFIX reference values for all of the above (as float32)
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from fixture import write_fixture  # noqa: E402

OUT = "tests/fixtures/io"
CORPUS_PICKLE = "tests/fuzz/corpus_pickle"
CORPUS_ST = "tests/fuzz/corpus_safetensors"
CIFAR10_MEAN, CIFAR10_STD = [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]
CIFAR100_MEAN, CIFAR100_STD = [0.5071, 0.4866, 0.4409], [0.2673, 0.2564, 0.2762]

expected = collections.OrderedDict()


def expect(name, t):
    if isinstance(t, torch.Tensor):
        t = t.detach().contiguous().float()
    expected[name] = t


def zip_dtypes():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) * 0.25 - 2.0  # exact in f16/bf16
    big = torch.arange(10, dtype=torch.float32) + 0.5
    t = collections.OrderedDict()
    t["f32"] = base.clone()
    t["f64"] = base.double() / 3
    t["f16"] = base.half()
    t["bf16"] = base.bfloat16()
    t["i64"] = torch.tensor([[-(2 ** 40), 5], [-3, 2 ** 33]], dtype=torch.int64)
    t["i32"] = torch.tensor([-100000, 99999, 0, 7], dtype=torch.int32)
    t["i16"] = torch.tensor([-32768, 32767, 1], dtype=torch.int16)
    t["i8"] = torch.tensor([-128, 127, 0], dtype=torch.int8)
    t["u8"] = torch.tensor([0, 255, 17], dtype=torch.uint8)
    t["bool"] = torch.tensor([True, False, True])
    t["transposed"] = base.t()  # (6, 4), strides (1, 6)
    t["sliced"] = base[1:3, 2:5]  # offset 8, strides (6, 1)
    t["stepped"] = base[:, ::2]  # strides (6, 2)
    t["shared_a"] = big
    t["shared_b"] = big[3:7]  # the same storage as shared_a, offset 3
    t["expanded"] = torch.tensor([1.5, -2.5]).reshape(2, 1).expand(2, 3)  # stride 0
    t["nd5"] = torch.arange(32, dtype=torch.float32).reshape(2, 2, 2, 2, 2).permute(4, 3, 2, 1, 0)
    t["scalar"] = torch.tensor(3.25)
    t["scalar_i64"] = torch.tensor(42)
    t["empty"] = torch.zeros(0, 3)
    assert not t["transposed"].is_contiguous() and t["sliced"].storage_offset() == 8
    assert t["shared_b"].storage().data_ptr() == t["shared_a"].storage().data_ptr()
    torch.save(t, f"{OUT}/zip_dtypes.pt")
    for k, v in t.items():
        expect(f"zip/{k}", v)


def zip_nested():
    obj = {
        "a": [1, 2.5, "h\u00e9llo", None, True, False, (3, 4)],
        "od": collections.OrderedDict([("x", 1), ("y", torch.arange(3))]),
        "np_f64": np.float64(0.125),
        "np_f32": np.float32(1.5),
        "np_i64": np.int64(-3),
        "big": 2 ** 40,
        "huge": 2 ** 70,
        "neg": -5,
        "bytes": b"\x00\xff",
        "nested": {"deep": [[torch.ones(2)]]},
        "f": 1e-3,
        "set": {7},
        "arr": np.arange(6, dtype=np.int16).reshape(2, 3),
        "farr": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
    }
    torch.save(obj, f"{OUT}/zip_nested.pt")
    expect("nested/arr", torch.from_numpy(obj["arr"].astype(np.float32)))
    expect("nested/farr", torch.from_numpy(np.ascontiguousarray(obj["farr"]).astype(np.float32)))
    with zipfile.ZipFile(f"{OUT}/zip_nested.pt") as z:
        name = [n for n in z.namelist() if n.endswith("data.pkl")][0]
        open(f"{CORPUS_PICKLE}/zip_nested_data.pkl", "wb").write(z.read(name))


def legacy():
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 8
    obj = {
        "w": base,
        "v": base[1:],  # offset into w's storage
        "i": torch.tensor([1, -2, 3]),
        "h": base.half()[1],
        "nested": [base.t()],
        "acc": 0.75,
    }
    torch.save(obj, f"{OUT}/legacy.pt", _use_new_zipfile_serialization=False)
    for k in ["w", "v", "i", "h"]:
        expect(f"legacy/{k}", obj[k])
    expect("legacy/nested0", obj["nested"][0])
    open(f"{CORPUS_PICKLE}/legacy.pt", "wb").write(open(f"{OUT}/legacy.pt", "rb").read())


def plain():
    images = torch.arange(48, dtype=torch.float32).reshape(4, 3, 2, 2) / 7
    labels = torch.tensor([0, 1, 2, 1])
    obj = (images, labels, images[1:, 0])
    for proto in (4, 2):
        with open(f"{OUT}/plain_p{proto}.pkl", "wb") as f:
            pickle.dump(obj, f, protocol=proto)
    for i, t in enumerate(obj):
        expect(f"plain/{i}", t)
    open(f"{CORPUS_PICKLE}/plain_p2.pkl", "wb").write(open(f"{OUT}/plain_p2.pkl", "rb").read())


def state_dict():
    g = torch.Generator().manual_seed(0)
    sd = collections.OrderedDict()
    sd["module.conv.weight"] = torch.randn(2, 1, 3, 3, generator=g)
    sd["module.conv.bias"] = torch.randn(2, generator=g)
    sd["module.bn.running_mean"] = torch.randn(2, generator=g)
    sd["module.bn.num_batches_tracked"] = torch.tensor(5)
    torch.save({"epoch": 3, "state_dict": sd, "best_acc": 0.5}, f"{OUT}/state_dict.pth")
    for k, v in sd.items():
        expect("sd/" + k[len("module."):], v)


def safetensors():
    t = collections.OrderedDict()
    t["a"] = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
    t["b"] = np.array([-(2 ** 40), 3, 9], dtype=np.int64)
    t["c"] = np.array([[0, 255], [7, 9]], dtype=np.uint8)
    t["d"] = torch.tensor([1.5, -0.25]).bfloat16()
    t["e"] = np.array(0.1, dtype=np.float64)
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for k, v in t.items():
        if isinstance(v, torch.Tensor):
            raw, dt, shape = v.view(torch.int16).numpy().tobytes(), "BF16", list(v.shape)
        else:
            raw, shape = v.tobytes(), list(v.shape)
            dt = {"float32": "F32", "int64": "I64", "uint8": "U8", "float64": "F64"}[str(v.dtype)]
        header[k] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
        expect(f"st/{k}", torch.as_tensor(np.asarray(v.float() if isinstance(v, torch.Tensor) else v, dtype=np.float32)))
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    blob = struct.pack("<Q", len(h)) + h + data
    open(f"{OUT}/tensors.safetensors", "wb").write(blob)
    open(f"{CORPUS_ST}/tensors.safetensors", "wb").write(blob)


def normalized(u8, mean, std):
    """torchvision's ToTensor + Normalize, in float32 exactly as torch computes it."""
    x = torch.from_numpy(u8.reshape(-1, 3, 32, 32)).float().div(255)
    m = torch.as_tensor(mean, dtype=torch.float32)[:, None, None]
    s = torch.as_tensor(std, dtype=torch.float32)[:, None, None]
    return x.sub(m).div(s)


def expect_images(name, data):
    """the first 300 pixels and the pixel sum of every image (sums are exact in float32)"""
    expect(f"{name}/head", torch.from_numpy(data[:, :300].astype(np.float32)))
    expect(f"{name}/sums", torch.from_numpy(data.astype(np.float32).sum(axis=1)))


def binstr(b):
    return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<i", len(b)) + b)


def py2_batch(data, labels):
    """A CIFAR batch as Python 2's cPickle.dump(d, f, 2) writes it (str -> BINSTRING)."""
    n = data.shape[0]
    out = b"\x80\x02}q\x01(" + binstr(b"batch_label") + binstr(b"testing batch 1 of 1")
    out += binstr(b"labels") + b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
    out += binstr(b"data") + b"cnumpy.core.multiarray\n_reconstruct\nq\x02cnumpy\nndarray\nq\x03K\x00\x85"
    out += binstr(b"b") + b"\x87Rq\x04(K\x01K" + bytes([n]) + b"M\x00\x0c\x86"
    out += b"cnumpy\ndtype\nq\x05" + binstr(b"u1") + b"K\x00K\x01\x87Rq\x06(K\x03" + binstr(b"|")
    out += b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89" + binstr(data.tobytes()) + b"tb"
    out += binstr(b"filenames") + b"](" + b"".join(binstr(b"img%d.png" % i) for i in range(n)) + b"eu."
    d = pickle.loads(out, encoding="bytes")
    assert (d[b"data"] == data).all() and d[b"labels"] == list(labels)
    return out


def cifar():
    rng = np.random.RandomState(0)
    names10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    os.makedirs(f"{OUT}/cifar10_py", exist_ok=True)
    data = rng.randint(0, 256, size=(3, 3072)).astype(np.uint8)
    labels = [3, 9, 0]
    with open(f"{OUT}/cifar10_py/test_batch", "wb") as f:
        pickle.dump({"batch_label": "testing batch 1 of 1", "labels": labels, "data": data,
                     "filenames": ["a.png", "b.png", "c.png"]}, f, protocol=2)
    with open(f"{OUT}/cifar10_py/batches.meta", "wb") as f:
        pickle.dump({"num_cases_per_batch": 3, "label_names": names10, "num_vis": 3072}, f, protocol=2)
    expect_images("cifar10py", data)
    expect("cifar10py/norm0", normalized(data, CIFAR10_MEAN, CIFAR10_STD)[0])
    expect("cifar10py/raw0", normalized(data, [0, 0, 0], [1, 1, 1])[0])

    os.makedirs(f"{OUT}/cifar10_py2", exist_ok=True)
    data2 = rng.randint(0, 256, size=(2, 3072)).astype(np.uint8)
    blob = py2_batch(data2, [5, 7])
    open(f"{OUT}/cifar10_py2/test_batch", "wb").write(blob)
    open(f"{CORPUS_PICKLE}/cifar_py2_batch.pkl", "wb").write(py2_batch(data2[:1, :], [5]))
    expect_images("cifar10py2", data2)

    os.makedirs(f"{OUT}/cifar100_py", exist_ok=True)
    data3 = rng.randint(0, 256, size=(2, 3072)).astype(np.uint8)
    with open(f"{OUT}/cifar100_py/test", "wb") as f:
        pickle.dump({"filenames": ["x", "y"], "batch_label": "testing batch 1 of 1",
                     "fine_labels": [99, 42], "coarse_labels": [19, 3], "data": data3}, f, protocol=5)
    with open(f"{OUT}/cifar100_py/meta", "wb") as f:
        pickle.dump({"fine_label_names": ["class%02d" % i for i in range(100)],
                     "coarse_label_names": ["super%02d" % i for i in range(20)]}, f, protocol=5)
    assert b"_frombuffer" in open(f"{OUT}/cifar100_py/test", "rb").read()
    expect_images("cifar100py", data3)
    expect("cifar100py/norm1", normalized(data3, CIFAR100_MEAN, CIFAR100_STD)[1])
    open(f"{CORPUS_PICKLE}/cifar100_meta_p5.pkl", "wb").write(
        pickle.dumps({"fine": np.arange(4, dtype=np.uint8), "s": {1, 2}, "f": frozenset([3])}, protocol=5))


def corpus_extra():
    open(f"{CORPUS_PICKLE}/proto0.pkl", "wb").write(
        pickle.dumps({"a": [1, 2.5, "x\u00e9", None, (True,)], "b": b"xy", "c": 2 ** 70, "d": -7}, protocol=0))
    open(f"{CORPUS_PICKLE}/proto1.pkl", "wb").write(pickle.dumps([{"k": (1, 2.0)}, "s" * 300], protocol=1))
    with zipfile.ZipFile(f"{OUT}/state_dict.pth") as z:
        name = [n for n in z.namelist() if n.endswith("data.pkl")][0]
        open(f"{CORPUS_PICKLE}/state_dict_data.pkl", "wb").write(z.read(name))


def main():
    for d in (OUT, CORPUS_PICKLE, CORPUS_ST):
        os.makedirs(d, exist_ok=True)
    zip_dtypes()
    zip_nested()
    legacy()
    plain()
    state_dict()
    safetensors()
    cifar()
    corpus_extra()
    write_fixture(f"{OUT}/expected.bin", expected)
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {len(expected)} reference tensors; {OUT} holds {total} bytes")


if __name__ == "__main__":
    main()
