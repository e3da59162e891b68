/**
 * Run presets: complete run configs for the settings people actually run. `anr train --preset
 * NAME` uses one; `--data-root`, `--steps` and `--set key=value` adjust it.
 */
import { resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { RunConfigInput } from "./run-config.js";
import type { DatasetSpecInput } from "../data/datasets.js";
import { globe32x64 } from "../model/presets.js";
import { InputError } from "../util/errors.js";

/** The repository's embedded photos (data/photos/{train,test}). */
export const EMBEDDED_PHOTOS = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "data", "photos");
/** The repository's small multi-view set of real 3-D models (data/multiview, learnit layout). */
export const EMBEDDED_MULTIVIEW = resolve(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "data",
  "multiview",
);
/** Where Debian's ferret-datasets installs NOAA PMEL's example climate files (NetCDF-3). */
export const DEBIAN_FERRET_DATA = "/usr/share/ferret-vis/data";

/** Where Debian's dataset-fashion-mnist installs the IDX files. */
export const DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist";

/** The Fashion-MNIST anchor (shared/anchors/fashion-mnist-reference.md), for one model preset. */
function fmnist(model: string): RunConfigInput {
  return {
    name: `fmnist-${model}`,
    data: { kind: "idx", root: DEBIAN_FASHION_MNIST, size: 32, train_count: 10000, test_count: 500 },
    model: { preset: `small32-${model}` },
    train: {
      steps: 1500,
      batch_size: 16,
      lr: 1e-4,
      betas: [0.9, 0.99],
      clip_norm: 1,
      coord_noise: true,
      seed: 0,
      eval_every: 250,
      sample_every: 250,
      checkpoint_every: 500,
      log_every: 10,
    },
    eval: { split: "test", batch_size: 50, clamp: true },
  };
}

/**
 * A zoo recipe: batches of 16, Adam 3e-4, variational coordinates, seed 0; the test PSNR/SSIM
 * every 500 steps, a metrics line every 10.
 */
function zooRecipe(o: {
  name: string;
  data: DatasetSpecInput;
  model: string;
  steps: number;
  checkpointEvery: number;
}): RunConfigInput {
  return {
    name: o.name,
    data: o.data,
    model: { preset: o.model },
    train: {
      steps: o.steps,
      batch_size: 16,
      lr: 3e-4,
      betas: [0.9, 0.99],
      clip_norm: 1,
      coord_noise: true,
      seed: 0,
      eval_every: 500,
      sample_every: 0,
      checkpoint_every: o.checkpointEvery,
      log_every: 10,
    },
    eval: { split: "test", batch_size: 50, clamp: true },
  };
}

/** The zoo recipe on Twemoji (npm @twemoji/svg) at `size`², all test emoji evaluated. */
function twemoji(o: { size: number; model: string; steps: number; checkpointEvery: number }): RunConfigInput {
  return zooRecipe({ ...o, name: `twemoji${o.size}-anr`, data: { kind: "twemoji", size: o.size } });
}

/** CPU-sized view synthesis (small32-nerf-anr, 3 + 1 views, 128 rays × 32 samples per step). */
function smallNerf(
  name: string,
  data: { kind: "learnit"; root: string; category: string; size: number },
  o: { steps: number; views: [number, number]; pairs: number; maxObjects?: number },
): RunConfigInput {
  return {
    name,
    task: "nerf",
    data,
    model: { preset: "small32-nerf-anr" },
    train: {
      steps: o.steps,
      batch_size: 4,
      lr: 3e-4,
      betas: [0.9, 0.99],
      clip_norm: 1,
      coord_noise: false,
      eval_every: 250,
      sample_every: 250,
      checkpoint_every: 250,
    },
    eval: {
      split: "test",
      batch_size: 1,
      clamp: true,
      ...(o.maxObjects ? { max_images: o.maxObjects } : {}),
    },
    nerf: {
      n_support: 3,
      n_query: 1,
      view_range: o.views,
      train_n_rays: 128,
      n_samples: 32,
      chunk: 512,
      eval_protocol: "transinr",
      eval_pairs: o.pairs,
    },
  };
}

/** The authors' CelebA 128 optimisation: 18 images per step (6 × 3 accumulated), Adam 5e-5, clip 1. */
const CELEBA128_TRAIN = {
  steps: 200000,
  batch_size: 6,
  grad_accumulation: 3,
  lr: 5e-5,
  betas: [0.9, 0.99] as [number, number],
  clip_norm: 1,
  coord_noise: true,
  eval_every: 5000,
  sample_every: 5000,
  checkpoint_every: 1000,
};

/** The paper's CelebA 128 protocol for one model preset (give --data-root). */
function celeba(model: string): RunConfigInput {
  return {
    name: `celeba128-${model}`,
    data: { kind: "celeba", root: "celeba", protocol: "resize-crop", size: 128 },
    model: { preset: `celeba128-${model}` },
    train: CELEBA128_TRAIN,
    eval: { split: "test", batch_size: 16, max_images: 500, clamp: true },
  };
}

/**
 * The authors' ERA5 setting (their ERA5_npy dataset): 2 m temperature normalised as
 * 0.01·(T − 260), shorter side resized to 128 and centre-cropped, files cut 0.85 / 0.10 / 0.05 in
 * sorted (time) order; trained as their CelebA 128 runs (their ERA5 model config is not published).
 */
function era5(name: string, data: RunConfigInput["data"] & { kind: "npy" | "netcdf" }): RunConfigInput {
  return {
    name,
    task: "field",
    data,
    model: { preset: "era5-128-anr-d5" },
    train: CELEBA128_TRAIN,
    eval: { split: "test", batch_size: 16, max_images: 500, clamp: false },
  };
}

const ERA5_DATA = {
  split: { train: 0.85, val: 0.1, test: 0.05 },
  order: "sorted",
  preprocess: { mode: "resize-crop", size: 128 },
  normalize: { shift: -260, scale: 0.01 },
} as const;

/**
 * Monthly global winds 1982–1992 (by the file's CF time axis) (U.S. Navy FNOC, 132 months on a 2.5° grid; Debian's
 * ferret-datasets), u and v as two channels, the whole globe resized to 32×64; the last 13 and 7
 * months are val and test.
 */
function winds(sphere: boolean): RunConfigInput {
  return {
    name: sphere ? "winds-demo-sphere" : "winds-demo",
    task: "field",
    data: {
      kind: "netcdf",
      root: `${DEBIAN_FERRET_DATA}/monthly_navy_winds.cdf`,
      variables: ["UWND", "VWND"],
      split: { train: 0.85, val: 0.1, test: 0.05 },
      order: "sorted",
      preprocess: { mode: "resize", size: [32, 64] },
      normalize: "mean-std",
    },
    model: globe32x64("ANR", 2, sphere),
    train: {
      steps: 1000,
      batch_size: 8,
      lr: 3e-4,
      betas: [0.9, 0.99],
      clip_norm: 1,
      coord_noise: true,
      seed: 0,
      eval_every: 100,
      sample_every: 250,
      checkpoint_every: 250,
    },
    eval: { split: "test", batch_size: 16, clamp: false },
  };
}

export const RUN_PRESETS: Record<string, { description: string; config: RunConfigInput }> = {
  "era5-anr": {
    description:
      "ERA5 2 m temperature as the authors train it: a folder of 721×1440 .npy fields (--data-root DIR), 128×128 crops",
    config: era5("era5-anr", { kind: "npy", root: "era5_npy", latitudes: [90, -90], ...ERA5_DATA }),
  },
  "era5-netcdf-anr": {
    description:
      "as era5-anr, reading the CDS NetCDF files directly (--data-root FILE_OR_DIR, variable t2m, every time step)",
    config: era5("era5-netcdf-anr", { kind: "netcdf", root: "era5", variables: ["t2m"], ...ERA5_DATA }),
  },
  "era5-small": {
    description:
      "CPU-sized ERA5: t2m from CDS NetCDF files (--data-root), whole globe resized to 32×64, globe32x64-anr",
    config: {
      name: "era5-small",
      task: "field",
      data: {
        kind: "netcdf",
        root: "era5",
        variables: ["t2m"],
        ...ERA5_DATA,
        preprocess: { mode: "resize", size: [32, 64] },
      },
      model: { preset: "globe32x64-anr" },
      train: {
        steps: 2000,
        batch_size: 8,
        lr: 3e-4,
        betas: [0.9, 0.99],
        clip_norm: 1,
        coord_noise: true,
        eval_every: 250,
        sample_every: 250,
        checkpoint_every: 250,
      },
      eval: { split: "test", batch_size: 16, clamp: false },
    },
  },
  "winds-demo": {
    description:
      "real global fields on 2 cores: monthly u/v winds 1982–92 (apt install ferret-datasets), 32×64 globe, plain grid coordinates (≈25 min on 2 cores)",
    config: winds(false),
  },
  "winds-demo-sphere": {
    description: "as winds-demo, with coordinates on the sphere (the comparison in the README)",
    config: winds(true),
  },
  "shapenet-cars-anr-d5": {
    description:
      "paper: ANR novel-view synthesis on ShapeNet cars 128 (learnit layout; --data-root DIR with cars_splits.json)",
    config: {
      name: "shapenet-cars-anr-d5",
      task: "nerf",
      data: { kind: "learnit", root: "learnit_shapenet", category: "cars" },
      model: { preset: "shapenet-cars-anr-d5" },
      train: {
        steps: 100000,
        batch_size: 6,
        grad_accumulation: 3,
        lr: 5e-5,
        betas: [0.9, 0.99],
        clip_norm: 1,
        coord_noise: false,
        eval_every: 5000,
        sample_every: 5000,
        checkpoint_every: 1000,
      },
      eval: { split: "test", batch_size: 1, max_images: 100, clamp: true },
      nerf: {
        n_support: 3,
        n_query: 1,
        view_range: [0, 25],
        train_n_rays: 512,
        n_samples: 128,
        chunk: 1024,
        eval_protocol: "transinr",
        eval_pairs: 1,
      },
    },
  },
  "multiview-demo": {
    description:
      "view synthesis on the embedded Blender renders (data/multiview: 5 training objects, cat and teapots held out), 32×32 views (≈15 min on 2 cores)",
    config: smallNerf(
      "multiview-demo",
      { kind: "learnit", root: EMBEDDED_MULTIVIEW, category: "objects", size: 32 },
      { steps: 1500, views: [0, 24], pairs: 4 },
    ),
  },
  "nerf-small": {
    description:
      "CPU-sized view synthesis: small32-nerf-anr on 32×32 views of a learnit-layout folder (--data-root DIR --set data.category=NAME)",
    config: smallNerf(
      "nerf-small",
      { kind: "learnit", root: "learnit", category: "cars", size: 32 },
      { steps: 2000, views: [0, 25], pairs: 1, maxObjects: 8 },
    ),
  },
  demo: {
    description:
      "the main job: a small ANR on random 32×32 crops of the embedded photos, held-out photos for evaluation (≈6 min on 2 cores)",
    config: {
      name: "demo",
      data: {
        kind: "folder",
        root: EMBEDDED_PHOTOS,
        split: "folders",
        preprocess: { mode: "random-crop", size: 32, resize: 64, flip: true },
      },
      model: { preset: "tiny32-anr" },
      train: {
        steps: 1200,
        batch_size: 8,
        lr: 3e-4,
        betas: [0.9, 0.99],
        clip_norm: 1,
        coord_noise: true,
        seed: 0,
        eval_every: 100,
        sample_every: 100,
        checkpoint_every: 200,
        log_every: 10,
      },
      eval: { split: "test", batch_size: 16, clamp: true },
    },
  },
  "twemoji32-anr": {
    description:
      "the zoo's Twemoji model: tiny32-anr on Twemoji at 32×32 (npm @twemoji/svg, graphics CC-BY 4.0 by Twitter, Inc. and contributors), 10,000 steps of 16 (≈2 h on 2 cores)",
    // About 2 hours at the 1.5 steps/s measured on 2 shared cores (models/training/README.md);
    // a checkpoint every 3 minutes or so, so a stopped run loses little when resumed.
    config: twemoji({ size: 32, model: "tiny32-anr", steps: 10000, checkpointEvery: 250 }),
  },
  "twemoji64-anr": {
    description:
      "the zoo's 64×64 Twemoji model: tiny64-anr on Twemoji at 64×64 (graphics CC-BY 4.0 by Twitter, Inc. and contributors), 5,000 steps of 16 (≈2 h on 2 cores)",
    config: twemoji({ size: 64, model: "tiny64-anr", steps: 5000, checkpointEvery: 100 }),
  },
  "fmnist32-anr": {
    description:
      "the zoo's Fashion-MNIST model: tiny32-anr on all 60,000 training images at 32×32, 8,000 steps of 16 (≈2 h on 2 cores; --data-root if not Debian's)",
    config: zooRecipe({
      name: "fmnist32-anr",
      data: { kind: "idx", root: DEBIAN_FASHION_MNIST, size: 32, test_count: 1000 },
      model: "tiny32-anr",
      steps: 8000,
      checkpointEvery: 250,
    }),
  },
  "fmnist-anr": { description: "Fashion-MNIST anchor settings, ANR (small32-anr)", config: fmnist("anr") },
  "fmnist-mlp": {
    description: "Fashion-MNIST anchor settings, TransINR-style MLP (small32-mlp)",
    config: fmnist("mlp"),
  },
  "fmnist-ipc": { description: "Fashion-MNIST anchor settings, IPC (small32-ipc)", config: fmnist("ipc") },
  "celeba128-anr-d5": {
    description: "paper: CelebA 128, ANR depth 5 (--data-root CELEBA_DIR)",
    config: celeba("anr-d5"),
  },
  "celeba128-mlp-g128-d6": {
    description: "paper baseline: CelebA 128, TransINR-style MLP",
    config: celeba("mlp-g128-d6"),
  },
  "celeba128-ipc-g128-d6": { description: "paper baseline: CelebA 128, IPC", config: celeba("ipc-g128-d6") },
};

export function runPreset(name: string): RunConfigInput {
  const p = RUN_PRESETS[name];
  if (!p)
    throw new InputError(
      `preset "${name}"`,
      `unknown run preset (known: ${Object.keys(RUN_PRESETS).join(", ")})`,
    );
  return structuredClone(p.config);
}

/** Path segments that would reach an object's prototype instead of a config field. */
const FORBIDDEN_SEGMENTS = new Set(["__proto__", "constructor", "prototype"]);

/**
 * Apply `a.b.c=value` (value parsed as JSON when it parses, else a string) to a config object.
 * Segments that would reach a prototype (`__proto__`, `constructor`, `prototype`) are refused:
 * following them would change every object of the process.
 */
export function applyOverride(config: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf("=");
  if (eq <= 0) throw new InputError(`--set ${assignment}`, "expected key.path=value");
  const path = assignment.slice(0, eq).split(".");
  for (const key of path) {
    if (FORBIDDEN_SEGMENTS.has(key))
      throw new InputError(
        `--set ${assignment}`,
        `"${key}" is not a config field (it would reach an object prototype)`,
      );
    if (key === "")
      throw new InputError(`--set ${assignment}`, "empty segment in the key path (expected key.path=value)");
  }
  const text = assignment.slice(eq + 1);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = text;
  }
  let node = config as Record<string, unknown>;
  for (const key of path.slice(0, -1)) {
    if (!Object.hasOwn(node, key) || typeof node[key] !== "object" || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path.at(-1)!] = value;
}
