#!/usr/bin/env python3
"""Write the torch references for resizeAntialiased's upsampling (test/fields.test.ts).

torch's F.interpolate(x, size, mode="bilinear", antialias=True, align_corners=False), in float64,
on a 2-channel 7×13 source the test rebuilds from the same formula:

    channel 0: sin(0.7 y) + cos(0.45 x) (y + 1) / 3 + [x > 6]
    channel 1: (y - 3)^2 / 4 - 0.2 x + [x == 5]          (a spike, so taps are visible)

to sizes that upsample both axes by non-integer factors, by exactly 2, and upsample one axis while
downsampling the other. Each output is test/fixtures/resize/up_<H>x<W>.npy, float64 (2, H, W).

Run from the repository root with Debian's PyTorch (apt install python3-torch; 1.13.1):

    /usr/bin/python3 scripts/make_resize_fixtures.py
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "resize")
SIZES = [(11, 29), (14, 26), (4, 29), (23, 9)]


def source():
    y, x = np.mgrid[0:7, 0:13].astype(np.float64)
    c0 = np.sin(0.7 * y) + np.cos(0.45 * x) * (y + 1) / 3 + (x > 6)
    c1 = (y - 3) ** 2 / 4 - 0.2 * x + (x == 5)
    return np.stack([c0, c1])


def main():
    os.makedirs(OUT, exist_ok=True)
    src = torch.from_numpy(source())[None]
    for h, w in SIZES:
        out = F.interpolate(src, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        np.save(os.path.join(OUT, f"up_{h}x{w}.npy"), out[0].numpy().astype("<f8"))
    print(f"torch {torch.__version__}: wrote {len(SIZES)} files to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
