"""Writes the hostile-input fixtures (tests/fixtures/hostile/) that tests/test_hostile.c
feeds to beard, one per class of bug an outside review found (issue 16), and copies each
into the fuzz corpus of the parser it attacks as a regression seed. Run by hand from the
repository root with a Python that has torch (e.g. /usr/bin/python3 with torch 1.13);
CI only reads what it wrote. Every file is crafted here from scratch.

    /usr/bin/python3 tests/scripts/gen_hostile.py

  dag.pt             60 levels of {'a': d, 'b': d}, each level sharing the one below (the
                     pickle memoises it, so the file is ~2 KB): 2^60 paths to one tensor.
                     Flattening it into a state_dict must be refused at once, not walk them.
  dag.pkl            the same DAG as a plain pickle of dicts of ints (no tensors)
  shared_storage.pt  one 16 MB float32 storage behind 2000 names, its records deflated so
                     that the file is ~21 KB: loading it must cost the storage's size once
  bad_crc.pt         a valid torch.save zip whose tensor record has one byte changed, so
                     that its CRC-32 no longer matches: must be refused
  truncated.pt       the first half of a valid torch.save zip
(test_hostile.c builds the inputs that would be too large to commit, such as a state_dict
of a million names, byte by byte at run time.)
"""
import collections
import io
import os
import pickle
import shutil
import zipfile

import torch

OUT = "tests/fixtures/hostile"
CORPUS = "tests/fuzz/corpus_pickle"


def save_bytes(obj, **kw):
    b = io.BytesIO()
    torch.save(obj, b, **kw)
    return b.getvalue()


def write(name, data):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(data)
    print(f"{path}: {len(data)} bytes")
    return path


def deflate_zip(data):
    """the same archive with every record deflated (torch itself stores them)"""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    return out.getvalue()


def dag(levels=60):
    d = collections.OrderedDict(w=torch.zeros(1))
    for _ in range(levels):
        d = collections.OrderedDict(a=d, b=d)
    return d


def dag_plain(levels=60):
    d = {"w": 1}
    for _ in range(levels):
        d = {"a": d, "b": d}
    return d


def bad_crc():
    data = bytearray(save_bytes(collections.OrderedDict(w=torch.arange(64, dtype=torch.float32))))
    z = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = next(i for i in z.infolist() if i.filename.endswith("/data/0"))
    # the record's data follows its local header (30 bytes + name + extra field)
    name_len = int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    at = info.header_offset + 30 + name_len + extra_len + 17
    data[at] ^= 0x40
    return bytes(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    paths = []
    paths.append(write("dag.pt", save_bytes(dag())))
    paths.append(write("dag.pkl", pickle.dumps(dag_plain(), protocol=2)))
    storage = torch.zeros(4 << 20, dtype=torch.float32)  # 16 MB
    shared = collections.OrderedDict((f"t{i}", storage) for i in range(2000))
    paths.append(write("shared_storage.pt", deflate_zip(save_bytes(shared))))
    paths.append(write("bad_crc.pt", bad_crc()))
    good = save_bytes(collections.OrderedDict(w=torch.arange(1000, dtype=torch.float32)))
    paths.append(write("truncated.pt", good[: len(good) // 2]))
    os.makedirs(CORPUS, exist_ok=True)
    for p in paths:
        if os.path.getsize(p) <= 65536:
            shutil.copy(p, os.path.join(CORPUS, "hostile_" + os.path.basename(p)))


if __name__ == "__main__":
    main()
