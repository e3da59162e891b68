#!/usr/bin/env python3
"""Write the Fashion-MNIST references for test/datasets.test.ts from Debian's dataset-fashion-mnist.

For a few images of each file (the first ones and the last), read independently of our IDX reader
(gzip + NumPy, header parsed here):

  fmnist.json      the SHA-256 and image count of each decompressed file (so the test knows the
                   installed files are the ones these references were made from), the indices,
                   their labels, and each image's pixel sum.
  raw.npy          uint8 (N, 28, 28): the stored pixels, test-file images first.
  resized32.npy    float64 (N, 32, 32): pixels / 255 resized by torch's
                   F.interpolate(mode="bilinear", align_corners=False, antialias=False), as the
                   dataset spec says it resizes.

Run from the repository root (apt install dataset-fashion-mnist python3-torch):

    /usr/bin/python3 scripts/make_fmnist_fixtures.py
"""
import gzip
import hashlib
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

ROOT = "/usr/share/datasets/fashion-mnist"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "fmnist")
PICK = {"t10k": [0, 1, 2, 9999], "train": [0, 1, 59999]}


def idx(name):
    raw = gzip.open(os.path.join(ROOT, name + ".gz"), "rb").read()
    magic, ndim = int.from_bytes(raw[0:4], "big"), raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    assert magic >> 8 == 0x08, name
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    assert body.size == int(np.prod(dims)), name
    return hashlib.sha256(raw).hexdigest(), body.reshape(dims)


def main():
    os.makedirs(OUT, exist_ok=True)
    meta = {"files": {}, "images": []}
    raws = []
    for part, picks in PICK.items():
        sha, images = idx(f"{part}-images-idx3-ubyte")
        _, labels = idx(f"{part}-labels-idx1-ubyte")
        meta["files"][f"{part}-images-idx3-ubyte"] = {"sha256": sha, "count": int(images.shape[0])}
        for i in picks:
            raws.append(images[i])
            meta["images"].append(
                {"file": f"{part}-images-idx3-ubyte", "index": i, "label": int(labels[i]), "sum": int(images[i].sum(dtype=np.int64))}
            )
    raw = np.stack(raws)
    x = torch.from_numpy(raw.astype(np.float64) / 255)[:, None]
    resized = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False, antialias=False)
    np.save(os.path.join(OUT, "raw.npy"), raw)
    np.save(os.path.join(OUT, "resized32.npy"), resized[:, 0].numpy().astype("<f8"))
    meta["torch"] = torch.__version__
    with open(os.path.join(OUT, "fmnist.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"wrote {len(raws)} images to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
