#!/usr/bin/env python3
"""Write the reference for the winds-demo preset's data (test/fields.test.ts) from Debian's
ferret-datasets, read with netCDF-C (python3-netcdf4) and resized with torch.

The preset: UWND and VWND of monthly_navy_winds.cdf (132 months, 73×144, latitude south first)
as two channels, north up, the whole globe resized to 32×64 (F.interpolate bilinear,
antialias=True, align_corners=False), normalised by the mean and (population) standard deviation
of the training split: the first 112 months (0.85 of 132, in time order).

  winds.json            per channel: mean and std over the training split; the test month.
  winds_test125.npy     float64 (2, 32, 64): month 125 (the first test month), physical units.

Run from the repository root (apt install ferret-datasets python3-netcdf4 python3-torch):

    /usr/bin/python3 scripts/make_winds_fixtures.py
"""
import json
import os

import netCDF4
import numpy as np
import torch
import torch.nn.functional as F

PATH = "/usr/share/ferret-vis/data/monthly_navy_winds.cdf"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "winds")
TRAIN, TEST = 112, 125


def main():
    os.makedirs(OUT, exist_ok=True)
    d = netCDF4.Dataset(PATH)
    lat = d.variables["FNOCY"][:]
    chans = []
    for name in ["UWND", "VWND"]:
        x = d.variables[name][:]
        assert not np.ma.is_masked(x), f"{name} has missing values"
        chans.append(np.asarray(x, dtype=np.float64))
    x = np.stack(chans, axis=1)  # (time, channel, lat, lon)
    if lat[-1] > lat[0]:
        x = x[:, :, ::-1, :].copy()
    r = F.interpolate(torch.from_numpy(x), size=(32, 64), mode="bilinear", antialias=True, align_corners=False)
    r = r.numpy()
    train = r[:TRAIN]
    meta = {
        "file": os.path.basename(PATH),
        "months": int(r.shape[0]),
        "train_months": TRAIN,
        "test_month": TEST,
        "mean": [float(train[:, c].mean()) for c in range(2)],
        "std": [float(train[:, c].std()) for c in range(2)],
        "torch": torch.__version__,
        "netCDF4": netCDF4.__version__,
    }
    np.save(os.path.join(OUT, f"winds_test{TEST}.npy"), r[TEST].astype("<f8"))
    with open(os.path.join(OUT, "winds.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
