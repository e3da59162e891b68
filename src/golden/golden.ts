/**
 * Compare our implementation with a golden directory produced by the authors' PyTorch code:
 * `config.json` (constructor arguments + test settings), `weights.safetensors` (state_dict),
 * `io.safetensors` (inputs, intermediates, outputs, `grad.*`, `after_step.*`).
 *
 * Every key of `io.safetensors` that we know how to recompute is checked. Without a tolerance
 * table, the bounds are the uniform ones the golden READMEs suggest for any re-implementation:
 *   forward tensors  max|Δ| ≤ 1e-6 + c·max|ref|   (c from the README, 0.00049 images / 0.0025 NeRF)
 *   loss, psnr       relative 1e-5
 *   gradients        L2-relative 1e-2 per tensor
 *   Adam step        max|Δ| ≤ 1e-6, our Adam applied to the golden gradients
 * A table (`RunGoldenOptions.tolerances`, e.g. test/golden/tolerances.json made by
 * scripts/golden_tolerances.ts) replaces them key by key with bounds measured for this code.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { numpy as np, jit, valueAndGrad } from "../backend/jax.js";
import { readF32 } from "../backend/index.js";
import { type HostTensor } from "../io/safetensors.js";
import { readSafetensors, readWeights } from "../io/files.js";
import { ConfigError, parseHyperNetworkConfig, type HyperNetworkConfig } from "../model/config.js";
import {
  coordGrid,
  peFrequencies,
  positionalEncoding,
  encodingLayout,
  hyperNetwork,
  hyponet,
  type Params,
  type SupportViews,
  type Taps,
} from "../model/model.js";
import { disposeParams, refParams, toDevice } from "../model/params.js";
import { imageObjective, predictImage, nerfObjective, renderRays, type RayBatch } from "../model/tasks.js";
import { posesToRays } from "../rendering/rays.js";
import { sampleDepths } from "../rendering/volume.js";
import { adamScalars, adamUpdate, globalNorm } from "../training/optim.js";
import { InputError } from "../util/errors.js";

/** One comparison. */
export interface GoldenCheck {
  key: string;
  /** What was measured: max |Δ| (forward, adam), relative error (scalars), L2-relative (grads), bound violation. */
  metric: "max-abs" | "rel" | "l2-rel" | "bounds";
  err: number;
  tol: number;
  ok: boolean;
  /** max|ref| of a forward tensor: the scale that its uniform bound and float32 rounding follow. */
  scale?: number;
  /** Whether `tol` came from the tolerance table (false: the uniform default). */
  tabled: boolean;
}

/** Per-key tolerances (io key → bound on the key's metric) that replace the uniform defaults. */
export type GoldenTolerances = Readonly<Record<string, number>>;

export interface RunGoldenOptions {
  tolerances?: GoldenTolerances;
}

/**
 * A tolerance table as scripts/golden_tolerances.ts writes it ({variant: {key: {tol, …}}}), as
 * per-variant bounds; errors name the file.
 */
export async function readToleranceTable(path: string): Promise<Map<string, GoldenTolerances>> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    throw new ConfigError(path, [], "tolerance table", `cannot read (${(e as Error).message})`);
  }
  const table = new Map<string, GoldenTolerances>();
  const problems: string[] = [];
  for (const [variant, keys] of Object.entries((raw ?? {}) as Record<string, unknown>)) {
    const bounds: Record<string, number> = {};
    for (const [key, entry] of Object.entries((keys ?? {}) as Record<string, { tol?: unknown }>)) {
      if (typeof entry?.tol === "number" && entry.tol >= 0) bounds[key] = entry.tol;
      else problems.push(`${variant}.${key}.tol: expected a number ≥ 0`);
    }
    table.set(variant, bounds);
  }
  if (problems.length) throw new ConfigError(path, problems, "tolerance table");
  return table;
}

export interface GoldenReport {
  dir: string;
  kind: "image" | "nerf";
  checks: GoldenCheck[];
  /** io keys not compared (unknown to this runner). */
  unchecked: string[];
  ok: boolean;
}

/** The raw golden config.json. */
export interface GoldenConfig {
  kind: "image" | "nerf";
  hn: unknown;
  image?: number;
  n_rays?: number;
  ppr?: number;
  mini_batch?: number;
  near?: number;
  far?: number;
}

function dev(t: HostTensor): np.Array {
  return np.array(t.data, { shape: t.shape });
}

const host = readF32;

function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}

/** Forward tolerance factor c in |Δ| ≤ 1e-6 + c·max|ref|, from the directory's README. */
async function forwardFactor(dir: string, kind: "image" | "nerf"): Promise<number> {
  try {
    const md = await readFile(join(dir, "README.md"), "utf8");
    const m = md.match(/\|Δ\| ≤ 1e-6 \+ ([0-9.eE+-]+)·max\|ref\|/);
    if (m) return Number(m[1]);
  } catch {
    /* no README: defaults below */
  }
  return kind === "nerf" ? 0.0025 : 0.00049;
}

class Checker {
  checks: GoldenCheck[] = [];
  seen = new Set<string>();
  constructor(
    /** The golden io.safetensors file (errors name it) and its tensors. */
    readonly ioPath: string,
    readonly io: Map<string, HostTensor>,
    readonly factor: number,
    readonly table: GoldenTolerances = {},
  ) {}

  private push(check: Omit<GoldenCheck, "ok" | "tabled">): void {
    const tabled = Object.hasOwn(this.table, check.key);
    const tol = tabled ? this.table[check.key]! : check.tol;
    this.checks.push({ ...check, tol, tabled, ok: check.err <= tol });
  }

  has(key: string): boolean {
    return this.io.has(key);
  }

  private ref(key: string, n: number): Float32Array {
    const r = this.io.get(key)!;
    this.seen.add(key);
    if (r.data.length !== n)
      throw new InputError(
        this.ioPath,
        `tensor "${key}" has ${r.data.length} values (shape [${r.shape}]) but the model computes ${n}`,
      );
    return r.data;
  }

  /** max|Δ| ≤ 1e-6 + c·max|ref| (or ≤ `absTol` when given). */
  forward(key: string, ours: ArrayLike<number>, absTol?: number): void {
    if (!this.has(key)) return;
    const ref = this.ref(key, ours.length);
    let err = 0;
    for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(ours[i]! - ref[i]!));
    if (Number.isNaN(maxAbs(ours))) err = NaN;
    const scale = maxAbs(ref);
    this.push({ key, metric: "max-abs", err, tol: absTol ?? 1e-6 + this.factor * scale, scale });
  }

  rel(key: string, ours: number, tol: number): void {
    if (!this.has(key)) return;
    const ref = this.ref(key, 1)[0]!;
    const err = Math.abs(ours - ref) / Math.max(Math.abs(ref), 1e-30);
    this.push({ key, metric: "rel", err, tol });
  }

  l2rel(key: string, ours: ArrayLike<number>, tol: number): void {
    if (!this.has(key)) return;
    const ref = this.ref(key, ours.length);
    let num = 0;
    let den = 0;
    for (let i = 0; i < ref.length; i++) {
      num += (ours[i]! - ref[i]!) ** 2;
      den += ref[i]! ** 2;
    }
    const err = Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
    this.push({ key, metric: "l2-rel", err, tol });
  }

  bounds(key: string, err: number, tol: number): void {
    this.seen.add(key);
    this.push({ key, metric: "bounds", err, tol });
  }
}

async function tapsToChecks(c: Checker, taps: Taps): Promise<void> {
  for (const [k, a] of taps) {
    if (c.has(k)) c.forward(k, await host(a));
    else a.dispose();
  }
  taps.clear();
}

/** Gradients of the objective (jitted value-and-grad), then our Adam on the golden gradients. */
async function checkGradsAndAdam(c: Checker, P: Params, loss: (P: Params) => np.Array): Promise<void> {
  const f = jit((Q: Params) => {
    const [value, grads] = valueAndGrad(loss)(Q);
    return { value, grads, norm: globalNorm(grads) };
  });
  const out = f(refParams(P));
  f.dispose();
  out.value.dispose();
  c.rel("grad_total_norm", (await host(out.norm))[0]!, 1e-2);
  for (const [k, g] of Object.entries(out.grads)) c.l2rel(`grad.${k}`, await host(g), 1e-2);

  if (!Object.keys(P).every((k) => c.has(`grad.${k}`) && c.has(`after_step.${k}`))) return;
  const golden: Params = Object.fromEntries(Object.keys(P).map((k) => [k, dev(c.io.get(`grad.${k}`)!)]));
  const zeros = () => Object.fromEntries(Object.entries(P).map(([k, v]) => [k, np.zerosLike(v.ref)]));
  const args = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
  const stepped = adamUpdate(refParams(P), golden, zeros(), zeros(), adamScalars(args, 1), args);
  for (const [k, v] of Object.entries(stepped.params)) c.forward(`after_step.${k}`, await host(v), 1e-6);
  disposeParams(stepped.m);
  disposeParams(stepped.v);
}

async function runImage(c: Checker, P: Params, cfg: HyperNetworkConfig): Promise<void> {
  const a = cfg.hyponet.args;
  const imgs = c.io.get("images")!;
  const [b, , h, w] = imgs.shape as [number, number, number, number];
  c.seen.add("images");
  c.forward(
    "images_norm",
    imgs.data.map((x) => 2 * x - 1),
  );
  for (const key of c.io.keys()) {
    const m = key.match(/^coord(\d+)(?:x(\d+))?$/);
    if (m) c.forward(key, coordGrid(Number(m[1]), Number(m[2] ?? m[1])));
  }
  const layout = encodingLayout(cfg);
  const freqs = peFrequencies(layout.nFreqs, a.pe_sigma);
  if (a.use_pe) c.forward("pe_freqs", freqs);
  for (const key of c.io.keys()) {
    const m = key.match(/^pe(\d+)$/);
    if (m && a.use_pe) {
      const s = Number(m[1]);
      c.forward(key, await host(positionalEncoding(np.array(coordGrid(s, s), { shape: [s, s, 2] }), freqs)));
    }
  }

  // Training forward at the input resolution, with every intermediate tapped.
  const taps: Taps = new Map();
  const out = imageObjective(P, cfg, dev(imgs), undefined, taps);
  const predRaw = await host(out.pred);
  c.forward(`pred${h}_raw`, predRaw);
  c.forward(
    `pred${h}`,
    predRaw.map((x) => Math.min(1, Math.max(0, (x + 1) / 2))),
  );
  c.rel("loss", (await host(out.loss))[0]!, 1e-5);
  c.rel("psnr", (await host(out.psnr))[0]!, 1e-5);
  // ANR attention taps: golden keeps the first q query points at grid H (`anr.logits32_q64`).
  const nHead = cfg.hyponet.name === "ANR" ? cfg.hyponet.args.n_head : 0;
  for (const name of ["logits", "softmax", "attn"]) {
    const t = taps.get(`anr.${name}`);
    taps.delete(`anr.${name}`);
    if (!t) continue;
    const full = await host(t);
    const key = [...c.io.keys()].find((k) => k.startsWith(`anr.${name}${h}_q`));
    if (!key) continue;
    const q = Number(key.split("_q")[1]);
    const tt = full.length / (b * nHead * h * w);
    const sub = new Float32Array(b * nHead * q * tt);
    for (let i = 0; i < b * nHead; i++)
      sub.set(full.subarray(i * h * w * tt, i * h * w * tt + q * tt), i * q * tt);
    c.forward(key, sub);
  }
  const attnOut = taps.get("anr.attn_out");
  if (attnOut) {
    taps.delete("anr.attn_out");
    c.forward(`anr.attn_out${h}`, await host(attnOut));
  }
  taps.get("anr.attn_in")?.dispose();
  taps.delete("anr.attn_in");
  await tapsToChecks(c, taps);

  // Encoder with the class-default long skips (shortcut_every = 2), same weights.
  if (c.has("encoded_shortcut2")) {
    const cfg2 = { ...cfg, tinr_enc: { ...cfg.tinr_enc, args: { ...cfg.tinr_enc.args, shortcut_every: 2 } } };
    const t2: Taps = new Map();
    disposeParams(hyperNetwork(P, cfg2, dev(imgs).mul(2).sub(1), t2));
    c.forward("encoded_shortcut2", await host(t2.get("encoded")!));
    t2.delete("encoded");
    for (const v of t2.values()) v.dispose();
  }

  // Inference at other resolutions (infer_image: (raw + 1)/2, not clamped).
  for (const key of [...c.io.keys()]) {
    const m = key.match(/^pred(\d+)(?:x(\d+))?_raw$/);
    if (!m || key === `pred${h}_raw`) continue;
    const [hh, ww] = [Number(m[1]), Number(m[2] ?? m[1])];
    const gen = hyperNetwork(P, cfg, dev(imgs).mul(2).sub(1));
    const raw = await host(predictImage(P, cfg, gen, b, hh, ww));
    c.forward(key, raw);
    c.forward(
      key.replace(/_raw$/, ""),
      raw.map((x) => (x + 1) / 2),
    );
  }

  // Coordinate noise: torch's RNG cannot be reproduced, so check its bound, then the
  // prediction at exactly the stored noisy coordinates.
  for (const key of [...c.io.keys()]) {
    const m = key.match(/^coord(\d+)_noisy$/);
    if (!m) continue;
    const s = Number(m[1]);
    const noisy = c.io.get(key)!;
    const grid = coordGrid(s, s);
    let worst = 0;
    for (let i = 0; i < noisy.data.length; i++)
      worst = Math.max(worst, Math.abs(noisy.data[i]! - grid[i % grid.length]!));
    c.bounds(key, worst, (0.5 / s) * (1 + 1e-5));
    const predKey = `pred${s}_noisy_raw`;
    if (c.has(predKey)) {
      const gen = hyperNetwork(P, cfg, dev(imgs).mul(2).sub(1));
      const out2 = hyponet(P, cfg, dev(noisy).reshape([b, s * s, 2]), gen);
      const c2 = out2.shape[2]!;
      c.forward(predKey, await host(out2.reshape([b, s, s, c2]).transpose([0, 3, 1, 2])));
    }
  }

  await checkGradsAndAdam(c, P, (Q: Params) => {
    const o = imageObjective(Q, cfg, dev(imgs));
    o.psnr.dispose();
    o.pred.dispose();
    disposeParams(Q);
    return o.loss;
  });
}

async function runNerf(c: Checker, P: Params, cfg: HyperNetworkConfig, gc: GoldenConfig): Promise<void> {
  const io = c.io;
  const get = (k: string) => {
    const t = io.get(k);
    if (!t) throw new InputError(c.ioPath, `no tensor "${k}", which a NeRF check needs`);
    c.seen.add(k);
    return t;
  };
  const views = (): SupportViews => ({
    imgs: dev(get("support_imgs")),
    poses: dev(get("support_poses")),
    focals: dev(get("support_focals")),
  });
  const qImgs = get("query_imgs");
  const [b, nq, , h, w] = qImgs.shape as [number, number, number, number, number];
  const near = io.has("near") ? get("near").data[0]! : gc.near!;
  const far = io.has("far") ? get("far").data[0]! : gc.far!;
  const nS = gc.ppr ?? io.get("z_vals")!.shape[0]!;
  const chunk = gc.mini_batch ?? Infinity;

  const [qo, qd] = posesToRays(dev(get("query_poses")), dev(get("query_focals")), h, w);
  const oAll = qo.reshape([b, nq * h * w, 3]);
  const dAll = qd.reshape([b, nq * h * w, 3]);
  c.forward("query_rays_o_all", await host(oAll.ref));
  c.forward("query_rays_d_all", await host(dAll.ref));
  const ids = [...get("ray_ids").data].map((x) => Math.round(x));
  const idx = np.array(Int32Array.from(ids), { dtype: np.int32 });
  const rays = (): RayBatch => ({
    o: np.take(oAll.ref, idx.ref, 1),
    d: np.take(dAll.ref, idx.ref, 1),
    z: np.array(sampleDepths(near, far, nS)),
  });
  const gtAll = dev(qImgs)
    .transpose([0, 1, 3, 4, 2])
    .reshape([b, nq * h * w, 3]);
  const gt = () => np.take(gtAll.ref, idx.ref, 1);
  c.forward("gt", await host(gt()));
  const r0 = rays();
  c.forward("rays_o", await host(r0.o));
  c.forward("rays_d", await host(r0.d));
  c.forward("z_vals", await host(r0.z));
  c.forward("pe_freqs", peFrequencies(encodingLayout(cfg).nFreqs, cfg.hyponet.args.pe_sigma));

  const taps: Taps = new Map();
  const out = nerfObjective(P, cfg, views(), rays(), gt(), Infinity, taps);
  c.forward("pred", await host(out.pred));
  c.rel("loss", (await host(out.loss))[0]!, 1e-5);
  c.rel("psnr", (await host(out.psnr))[0]!, 1e-5);
  const weights = taps.get("vr.weights")!;
  c.forward("vr.acc", await host(np.sum(weights.ref, -1)));
  for (const k of ["anr.logits", "anr.softmax", "anr.attn", "anr.attn_out"]) {
    taps.get(k)?.dispose();
    taps.delete(k);
  }
  await tapsToChecks(c, taps);

  // The whole query view, rendered in chunks of `mini_batch` rays, without gradients.
  if (c.has("render_query")) {
    const gen = hyperNetwork(P, cfg, views());
    const full = renderRays(
      P,
      cfg,
      gen,
      { o: oAll.ref, d: dAll.ref, z: np.array(sampleDepths(near, far, nS)) },
      chunk,
    );
    full.weights.dispose();
    disposeParams(gen);
    c.forward("render_query", await host(full.rgb));
  }

  await checkGradsAndAdam(c, P, (Q: Params) => {
    const o = nerfObjective(Q, cfg, views(), rays(), gt(), chunk);
    o.psnr.dispose();
    o.pred.dispose();
    disposeParams(Q);
    return o.loss;
  });
  oAll.dispose();
  dAll.dispose();
  idx.dispose();
  gtAll.dispose();
}

/** A golden directory as written by the reference code, read and checked. */
export interface GoldenSet {
  /** The raw config.json. */
  config: GoldenConfig;
  /** Its "hn" block, parsed. */
  cfg: HyperNetworkConfig;
  /** weights.safetensors, the authors' state_dict, checked against `cfg`. */
  weights: Map<string, HostTensor>;
  /** io.safetensors: inputs, intermediates and outputs of the reference run. */
  io: Map<string, HostTensor>;
  /** The path of io.safetensors, for error messages. */
  ioPath: string;
  kind: "image" | "nerf";
}

/** Reads a golden directory: config.json, weights.safetensors and io.safetensors. */
export async function readGoldenSet(dir: string): Promise<GoldenSet> {
  const cfgPath = join(dir, "config.json");
  let config: GoldenConfig;
  try {
    config = JSON.parse(await readFile(cfgPath, "utf8")) as GoldenConfig;
  } catch (e) {
    throw new InputError(cfgPath, `cannot read golden config (${(e as Error).message})`);
  }
  const cfg = parseHyperNetworkConfig(config.hn, `${cfgPath} (field "hn")`);
  const kind = config.kind ?? (cfg.tokenizer.name === "nvs_tokenizer" ? "nerf" : "image");
  const weights = await readWeights(join(dir, "weights.safetensors"), cfg);
  const ioPath = join(dir, "io.safetensors");
  const io = (await readSafetensors(ioPath)).tensors;
  return { config, cfg, weights, io, ioPath, kind };
}

/** Run every check we can on a golden directory. */
export async function runGolden(dir: string, options: RunGoldenOptions = {}): Promise<GoldenReport> {
  const { config: gc, cfg, weights, io, ioPath, kind } = await readGoldenSet(dir);
  const P = toDevice(weights);
  const c = new Checker(ioPath, io, await forwardFactor(dir, kind), options.tolerances);
  try {
    if (kind === "nerf") await runNerf(c, P, cfg, gc);
    else await runImage(c, P, cfg);
  } finally {
    disposeParams(P);
  }
  const unchecked = [...io.keys()].filter((k) => !c.seen.has(k));
  return { dir, kind, checks: c.checks, unchecked, ok: c.checks.length > 0 && c.checks.every((x) => x.ok) };
}

/** A fixed-width table of a report, worst first within each metric. */
export function formatReport(r: GoldenReport, all = false): string {
  const rows = all
    ? r.checks
    : r.checks.filter((x) => !x.ok || x.metric !== "max-abs" || !x.key.startsWith("after_step."));
  const lines = [
    `golden ${r.dir} (${r.kind}): ${r.checks.length} checks, ${r.checks.filter((x) => !x.ok).length} failed`,
  ];
  const w = Math.max(...rows.map((x) => x.key.length), 10);
  lines.push(
    `  ${"key".padEnd(w)}  ${"metric".padEnd(8)}  ${"error".padStart(10)}  ${"tolerance".padStart(10)}  result`,
  );
  for (const x of rows) {
    lines.push(
      `  ${x.key.padEnd(w)}  ${x.metric.padEnd(8)}  ${x.err.toExponential(2).padStart(10)}  ${x.tol.toExponential(2).padStart(10)}  ${x.ok ? "ok" : "FAIL"}`,
    );
  }
  const adam = r.checks.filter((x) => x.key.startsWith("after_step."));
  if (!all && adam.length) {
    const worst = adam.reduce((a, b) => (b.err > a.err ? b : a));
    lines.push(
      `  (after_step.*: ${adam.length} tensors, worst ${worst.key} ${worst.err.toExponential(2)} ≤ ${worst.tol.toExponential(2)}; --all lists them)`,
    );
  }
  if (r.unchecked.length) lines.push(`  not compared: ${r.unchecked.join(", ")}`);
  return lines.join("\n");
}
