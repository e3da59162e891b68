/**
 * Scenes for measuring our float32 rounding error against the float64 yardstick of
 * test/float64-reference.ts: the shipped golden NeRF set, and image and view-synthesis
 * configurations of any size with weights from our own seeded initialiser. Each scene runs both
 * ways on the same float32 weights and inputs; used by test/float64.test.ts and by
 * scripts/golden_tolerances.ts (which floors the NeRF loss and PSNR bounds by what it measures).
 */
import { numpy as np } from "../src/backend/jax.js";
import {
  disposeParams,
  initHostParams,
  parseHyperNetworkConfig,
  toDevice,
  type HostTensor,
  type HyperNetworkConfig,
  type HyperNetworkConfigInput,
} from "../src/index.js";
import {
  imageObjective,
  nerfObjective,
  readF32,
  Rng,
  sizeHW,
  posesToRays,
  sampleDepths,
  type Taps,
} from "../src/lowlevel.js";
import { lookAtPose } from "../src/rendering/rays.js";
import { readGoldenSet } from "../src/golden/golden.js";
import {
  cameraRays,
  imageObjective64,
  nerfObjective64,
  type Float64Options,
  type Rays64,
  type Views64,
} from "./float64-reference.js";

/** One view-synthesis batch of a single instance, all in float32 as the model receives it. */
export interface NerfScene {
  name: string;
  cfg: HyperNetworkConfig;
  weights: Map<string, HostTensor>;
  /** Support views (n, 3, H, W), poses (n, 3, 4), focals (n, 2). */
  views: { imgs: Float32Array; poses: Float32Array; focals: Float32Array; n: number; h: number; w: number };
  /** The query camera (3, 4) and focal, its image (3, H, W), and the pixels (row-major) rendered. */
  query: { pose: Float32Array; focal: Float32Array; img: Float32Array; rayIds: Int32Array };
  near: number;
  far: number;
  nSamples: number;
}

/** Our float32 results of a scene (jax-js), with the intermediates the float64 side can reuse. */
export interface NerfOurs {
  loss: number;
  psnr: number;
  /** Colours (R, 3). */
  pred: Float32Array;
  /** Sample points (R·P, 3) and hyponet output (R·P, 4). */
  pts: Float32Array;
  raw: Float32Array;
  /** The float32 sample depths used. */
  z: Float32Array;
}

/** Colours of the query image at the rendered pixels, (R, 3). */
function nerfTarget(s: NerfScene): Float32Array {
  const { h, w } = s.views;
  const ids = s.query.rayIds;
  return Float32Array.from(
    { length: ids.length * 3 },
    (_, k) => s.query.img[(k % 3) * h * w + ids[Math.floor(k / 3)]!]!,
  );
}

/** Runs our model (jax-js, float32) on a scene, as the golden runner does (no chunking, no jitter). */
export async function nerfOurs(s: NerfScene): Promise<NerfOurs> {
  const { n, h, w } = s.views;
  const P = toDevice(s.weights);
  const views = {
    imgs: np.array(s.views.imgs, { shape: [1, n, 3, h, w] }),
    poses: np.array(s.views.poses, { shape: [1, n, 3, 4] }),
    focals: np.array(s.views.focals, { shape: [1, n, 2] }),
  };
  const [qo, qd] = posesToRays(
    np.array(s.query.pose, { shape: [1, 3, 4] }),
    np.array(s.query.focal, { shape: [1, 2] }),
    h,
    w,
  );
  const idx = np.array(s.query.rayIds, { dtype: np.int32 });
  const z = sampleDepths(s.near, s.far, s.nSamples);
  const rays = {
    o: np.take(qo.reshape([1, h * w, 3]), idx.ref, 1),
    d: np.take(qd.reshape([1, h * w, 3]), idx, 1),
    z: np.array(z),
  };
  const nRays = s.query.rayIds.length;
  const gt = np.array(nerfTarget(s), { shape: [1, nRays, 3] });
  const taps: Taps = new Map();
  const out = nerfObjective(P, s.cfg, views, rays, gt, Infinity, taps);
  disposeParams(P);
  const pts = await readF32(taps.get("pts")!);
  const raw = await readF32(taps.get("raw")!);
  taps.delete("pts");
  taps.delete("raw");
  for (const t of taps.values()) t.dispose();
  return {
    loss: (await readF32(out.loss))[0]!,
    psnr: (await readF32(out.psnr))[0]!,
    pred: await readF32(out.pred),
    pts,
    raw,
    z,
  };
}

/** Exact rays of a scene's query pixels (from the float32 pose, in float64) and the float64 depths. */
export function nerfRays64(s: NerfScene): Rays64 {
  const { h, w } = s.views;
  const all = cameraRays(s.query.pose, s.query.focal, h, w);
  const ids = s.query.rayIds;
  const pick = (a: Float64Array) =>
    Float64Array.from({ length: ids.length * 3 }, (_, k) => a[3 * ids[Math.floor(k / 3)]! + (k % 3)]!);
  const z = Float64Array.from({ length: s.nSamples }, (_, k) =>
    s.nSamples === 1 ? s.near : s.near + ((s.far - s.near) * k) / (s.nSamples - 1),
  );
  return { o: pick(all.o), d: pick(all.d), z };
}

/** The float64 objective of a scene, with optional float32 stages. */
export function nerf64(s: NerfScene, opts: Float64Options = {}) {
  const views: Views64 = s.views;
  return nerfObjective64(s.weights, s.cfg, [views], [nerfRays64(s)], [nerfTarget(s)], opts);
}

/** The shipped golden NeRF variant as a scene (its weights, views and ray ids; unjittered depths). */
export async function goldenNerfScene(
  dir: string,
): Promise<
  NerfScene & { torch: { loss: number; psnr: number; pred: Float32Array; pe_freqs: Float32Array } }
> {
  const { config: gc, cfg, weights, io } = await readGoldenSet(dir);
  const t = (k: string) => io.get(k)!.data;
  const [, n, , h, w] = io.get("support_imgs")!.shape as number[];
  return {
    name: "golden anr_nerf",
    cfg,
    weights,
    views: {
      imgs: t("support_imgs"),
      poses: t("support_poses"),
      focals: t("support_focals"),
      n: n!,
      h: h!,
      w: w!,
    },
    query: {
      pose: t("query_poses"),
      focal: t("query_focals"),
      img: t("query_imgs"),
      rayIds: Int32Array.from(t("ray_ids"), Math.round),
    },
    near: t("near")[0]!,
    far: t("far")[0]!,
    nSamples: gc.ppr!,
    torch: { loss: t("loss")[0]!, psnr: t("psnr")[0]!, pred: t("pred"), pe_freqs: t("pe_freqs") },
  };
}

/** Sizes of a view-synthesis configuration built like golden anr_nerf (§14.6), with our weights. */
export interface NerfSizes {
  seed: number;
  /** Side of the (square) views. */
  image: number;
  patch: number;
  /** ANR hidden width (the encoding is padded to it, §3.4). */
  hidden: number;
  /** R-tokens T and threshold τ (< 1/T). */
  tokens: number;
  tau: number;
  nSupport?: number;
  nRays?: number;
  nSamples?: number;
  /** Multiplies the hyponet output: above 1, denser samples than at initialisation. */
  outScale?: number;
}

/**
 * A scene with random content: support and query cameras on a sphere of radius 4 looking at the
 * origin (world up +z), the golden set's non-square focal scaled to the image, random colours,
 * weights from `initHostParams` with the seed, and random query pixels.
 */
export function randomNerfScene(z: NerfSizes): NerfScene {
  const { seed, image, patch, hidden, tokens, tau } = z;
  const [nSupport, nRays, nSamples] = [z.nSupport ?? 2, z.nRays ?? 8, z.nSamples ?? 16];
  const enc = { dim: 64, depth: 2, n_head: 2, head_dim: 16, ff_dim: 128 };
  const input: HyperNetworkConfigInput = {
    n_groups: 16,
    direct_wtoken: true,
    tokenizer: { name: "nvs_tokenizer", args: { input_size: image, patch_size: patch, dim: 64 } },
    hyponet: {
      name: "ANR",
      args: {
        in_dim: 3,
        out_dim: 4,
        adaptive_idim: true,
        depth: 3,
        hidden_dim: hidden,
        token_len: tokens,
        pe_dim: 16,
        pe_sigma: 512,
        att_threshold: tau,
        out_scale: z.outScale ?? 1,
      },
    },
    tinr_enc: { name: "TInrEncoder", args: enc },
    tinr_dec: { name: "TInrDecoder", args: enc },
  };
  const cfg = parseHyperNetworkConfig(input);
  const rng = new Rng(seed);
  const camera = (): Float32Array => {
    const azimuth = 2 * Math.PI * rng.uniform();
    const elevation = (rng.uniform() - 0.5) * 1.2; // keep clear of the poles (world up +z)
    const eye: [number, number, number] = [
      4 * Math.cos(elevation) * Math.cos(azimuth),
      4 * Math.cos(elevation) * Math.sin(azimuth),
      4 * Math.sin(elevation),
    ];
    return lookAtPose(eye);
  };
  const focal = Float32Array.from([(45 * image) / 32, (43.5 * image) / 32]);
  const poses = new Float32Array(nSupport * 12);
  for (let v = 0; v < nSupport; v++) poses.set(camera(), v * 12);
  const focals = new Float32Array(nSupport * 2);
  for (let v = 0; v < nSupport; v++) focals.set(focal, v * 2);
  const imgs = rng.fill(nSupport * 3 * image * image, { lo: 0, hi: 1 });
  const query = { pose: camera(), focal, img: rng.fill(3 * image * image, { lo: 0, hi: 1 }) };
  const rayIds = Int32Array.from({ length: nRays }, () => Math.floor(rng.uniform() * image * image));
  return {
    name: `nerf seed ${seed}, image ${image}, patch ${patch}, hidden ${hidden}, T ${tokens}, τ ${tau}, ${nRays}×${nSamples} samples${z.outScale ? `, out_scale ${z.outScale}` : ""}`,
    cfg,
    weights: initHostParams(cfg, seed),
    views: { imgs, poses, focals, n: nSupport, h: image, w: image },
    query: { ...query, rayIds },
    near: 2,
    far: 6,
    nSamples,
  };
}

/** One image batch (B, C, H, W) in [0, 1] for a model with an image tokenizer. */
export interface ImageScene {
  name: string;
  cfg: HyperNetworkConfig;
  weights: Map<string, HostTensor>;
  imgs: Float32Array;
  b: number;
}

/** Our float32 loss, PSNR and raw prediction (B, C, H, W) of an image batch (no coordinate noise). */
export async function imageOurs(s: ImageScene): Promise<{ loss: number; psnr: number; pred: Float32Array }> {
  const P = toDevice(s.weights);
  const [h, w] = sizeHW(s.cfg.tokenizer.args.input_size);
  const out = imageObjective(
    P,
    s.cfg,
    np.array(s.imgs, { shape: [s.b, s.imgs.length / (s.b * h * w), h, w] }),
  );
  disposeParams(P);
  return {
    loss: (await readF32(out.loss))[0]!,
    psnr: (await readF32(out.psnr))[0]!,
    pred: await readF32(out.pred),
  };
}

/** The float64 objective of an image batch. */
export function image64(s: ImageScene, opts: Float64Options = {}) {
  return imageObjective64(s.weights, s.cfg, s.imgs, s.b, opts);
}

/** Sizes of an image configuration (the golden image set's transformer, §14.1), with our weights. */
export interface ImageSizes {
  seed: number;
  image: number;
  patch: number;
  padding?: number;
  hidden: number;
  /** ANR's R-tokens T and threshold τ; for the MLP hyponets, the weight-token groups. */
  tokens: number;
  tau?: number;
  hyponet?: "ANR" | "HypoMlp" | "HypoMlpIPC";
  peSigma?: number;
  batch?: number;
}

/** An image batch with smooth random content (a few random sinusoids per channel) and seeded weights. */
export function randomImageScene(z: ImageSizes): ImageScene {
  const kind = z.hyponet ?? "ANR";
  const enc = { dim: 64, depth: 2, n_head: 2, head_dim: 16, ff_dim: 128 };
  const common = {
    in_dim: 2,
    out_dim: 3,
    depth: 3,
    hidden_dim: z.hidden,
    pe_dim: 32,
    pe_sigma: z.peSigma ?? 1024,
  };
  const hyponet =
    kind === "ANR"
      ? {
          name: kind,
          args: { ...common, pe_dim: z.hidden / 2, token_len: z.tokens, att_threshold: z.tau ?? null },
        }
      : { name: kind, args: common };
  const cfg = parseHyperNetworkConfig({
    n_groups: z.tokens,
    direct_wtoken: kind === "ANR",
    grouping_mode: kind === "HypoMlpIPC" ? "mlp_mod" : "mlp",
    tokenizer: {
      name: "ImgTokenizer",
      args: { input_size: z.image, patch_size: z.patch, padding: z.padding ?? 0, dim: 64 },
    },
    hyponet,
    tinr_enc: { name: "TInrEncoder", args: enc },
    tinr_dec: { name: "TInrDecoder", args: enc },
  } as HyperNetworkConfigInput);
  const rng = new Rng(z.seed);
  const b = z.batch ?? 2;
  const n = z.image;
  const imgs = new Float32Array(b * 3 * n * n);
  for (let c = 0; c < b * 3; c++) {
    const waves = Array.from({ length: 3 }, () => [rng.uniform() * 6, rng.uniform() * 6, rng.uniform() * 6]);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        let v = 0.5;
        for (const [fy, fx, ph] of waves) v += Math.sin(fy! * (i / n) + fx! * (j / n) + ph!) / 7;
        imgs[(c * n + i) * n + j] = v;
      }
  }
  return {
    name: `image ${kind} seed ${z.seed}, image ${n}, patch ${z.patch}, hidden ${z.hidden}, ${kind === "ANR" ? `T ${z.tokens}, τ ${z.tau}` : `groups ${z.tokens}`}`,
    cfg,
    weights: initHostParams(cfg, z.seed),
    imgs,
    b,
  };
}

/** A shipped golden image variant as a scene, with the authors' float32 loss, PSNR and raw prediction. */
export async function goldenImageScene(
  dir: string,
): Promise<ImageScene & { torch: { loss: number; psnr: number; pred: Float32Array } }> {
  const { cfg, weights, io } = await readGoldenSet(dir);
  const images = io.get("images")!;
  const h = images.shape[2]!;
  return {
    name: `golden ${dir.split(/[\\/]/).pop()}`,
    cfg,
    weights,
    imgs: images.data,
    b: images.shape[0]!,
    torch: {
      loss: io.get("loss")!.data[0]!,
      psnr: io.get("psnr")!.data[0]!,
      pred: io.get(`pred${h}_raw`)!.data,
    },
  };
}
