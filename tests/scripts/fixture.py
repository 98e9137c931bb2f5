"""Writer for beard's test fixture format (read by tests/harness.c: fixture_load).

"BEARDFIX", u32 count, then per tensor: u16 name length, name (utf-8), u8 ndim,
int64 shape[ndim], float32 data (row-major), all little-endian.
"""
import struct

import numpy as np


def write_fixture(path, tensors):
    """tensors: dict name -> array-like (torch tensors are converted with .detach())."""
    with open(path, "wb") as f:
        f.write(b"BEARDFIX")
        f.write(struct.pack("<I", len(tensors)))
        for name, t in tensors.items():
            if hasattr(t, "detach"):
                t = t.detach().cpu().numpy()
            a = np.require(np.asarray(t, dtype=np.float32), requirements="C")
            nb = name.encode()
            f.write(struct.pack("<H", len(nb)))
            f.write(nb)
            f.write(struct.pack("<B", a.ndim))
            for d in a.shape:
                f.write(struct.pack("<q", d))
            f.write(a.astype("<f4").tobytes())
