/**
 * Our per-stage profile of the training step, run by bench/profile.ts in a child process.
 *
 * jax-js is lazy and the train step is one jitted function, so stages cannot be timed inside it.
 * Instead each stage is its own jitted function, fed with inputs of the real shapes (computed
 * once, untimed), and timed to completion (blockUntilReady) as:
 *   - forward: the stage alone;
 *   - forward + backward: the gradient of Σ(out ⊙ c) for a fixed random cotangent c, with respect
 *     to the stage's parameters and (except where the real step needs none) its input;
 *   - backward = (forward + backward) − forward.
 * The localized attention (anrAttention) and the MLP after it (anrMlp) are timed apart, each by
 * its own entry point in src/model/hyponets/anr.ts. Beside the stages, the
 * whole step is timed the same way: forward only, forward + backward, clip + Adam alone, and the
 * real fused step. Every figure is the least wall time and CPU time (all threads) over --reps
 * calls, with the medians beside them. Prints one JSON line.
 *
 * With --trace (run it with ANR_THREADS=1) only the fused step runs, under jax-js's kernel trace:
 * without a worker pool each kernel runs synchronously, so its trace entry is its run time. The
 * kernels are grouped (matrix products, other reductions, elementwise) with their GFLOP/s; then
 * likewise one decode chunk's (one image, 4096 points).
 *
 * Flags: --config small|large, --reps N (timed calls per figure, median; default 5), --trace.
 */
import "../src/node-startup.js";
import { parseArgs } from "node:util";
import { initBackend } from "../src/backend/index.js";
import { numpy as np, jit, valueAndGrad, blockUntilReady, tree, profiler } from "../src/backend/jax.js";
import { parseHyperNetworkConfig, type HyperNetworkConfig } from "../src/model/config.js";
import { initHostParams, toDevice, refParams, disposeParams } from "../src/model/params.js";
import {
  anrAttention,
  anrHyponet,
  anrMlp,
  coordGrid,
  hyperNetwork,
  encodingLayout,
  imgTokenizer,
  jitterCoords,
  peFrequencies,
  positionalEncoding,
  transformerDecoder,
  transformerEncoder,
  weightHead,
  type Params,
} from "../src/model/model.js";
import type { AnrArgs } from "../src/model/hyponets/anr.js";
import { createImageDecoder, imageLoss, imageObjective } from "../src/model/tasks.js";
import {
  adamInit,
  adamScalars,
  adamUpdate,
  clipByGlobalNorm,
  REFERENCE_ADAM,
} from "../src/training/optim.js";
import { createImageTrainStep, type TrainState } from "../src/training/step.js";
import { Rng } from "../src/util/rng.js";
import { BENCH_CONFIGS, isBenchConfigName } from "./configs.js";
import { attentionFormOf, benchInputs } from "./ours.js";
import { stageFlops } from "./flops.js";
import { median } from "./stats.js";

const { values } = parseArgs({
  options: {
    config: { type: "string", default: "small" },
    reps: { type: "string", default: "5" },
    trace: { type: "boolean", default: false },
  },
});
const REPS = Number(values.reps);

type Tree = np.Array | np.Array[] | Record<string, np.Array> | unknown;

/**
 * Wall and CPU time (all threads of the process) in ms of a call run to completion: the least
 * over the timed calls (on a shared machine other work only ever adds time) and the median.
 */
interface Timing {
  wall: number;
  cpu: number;
  wall_median: number;
  cpu_median: number;
}

function summary(ts: { wall: number; cpu: number }[]): Timing {
  const w = ts.map((t) => t.wall);
  const c = ts.map((t) => t.cpu);
  return { wall: Math.min(...w), cpu: Math.min(...c), wall_median: median(w), cpu_median: median(c) };
}

/** Times of `call()` run to completion, after one untimed (compiling) call. */
async function timeIt(call: () => Tree): Promise<Timing> {
  const once = async () => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const out = call();
    await blockUntilReady(out as np.Array);
    const wall = performance.now() - t0;
    const c = process.cpuUsage(c0);
    tree.dispose(out as np.Array);
    return { wall, cpu: (c.user + c.system) / 1000 };
  };
  await once();
  const ts: { wall: number; cpu: number }[] = [];
  for (let i = 0; i < REPS; i++) ts.push(await once());
  return summary(ts);
}

/** Parameters whose key starts with one of `prefixes` (each a fresh reference). */
function subset(P: Params, prefixes: string[]): Params {
  return Object.fromEntries(
    Object.entries(P)
      .filter(([k]) => prefixes.some((p) => k.startsWith(p)))
      .map(([k, a]) => [k, a.ref]),
  );
}

/** A stage: a function of (its parameters, its input, constants) that consumes its arrays and borrows P. */
interface StageDef {
  name: string;
  prefixes: string[];
  input: np.Array;
  /** Whether the real step needs the gradient with respect to the input. */
  inputGrad: boolean;
  consts: np.Array[];
  f: (P: Params, x: np.Array, consts: np.Array[]) => np.Array;
  /** No backward in the real step (the PE has no parameters and the coordinates need no gradient). */
  forwardOnly?: boolean;
}

/** A stage's timings: forward alone, and forward + backward (null where the step has no backward). */
interface StageTiming {
  forward: Timing;
  forward_backward: Timing | null;
}

async function timeStage(s: StageDef): Promise<StageTiming> {
  const fwd = jit((P: Params, x: np.Array, consts: np.Array[]) => {
    const y = s.f(P, x, consts);
    disposeParams(P);
    return y;
  });
  const P0 = () => subset(P, s.prefixes);
  const cs = () => s.consts.map((c) => c.ref);
  const forward = await timeIt(() => fwd(P0(), s.input.ref, cs()));
  fwd.dispose();
  if (s.forwardOnly) return { forward, forward_backward: null };
  // A fixed cotangent of the output's shape: Σ(out ⊙ c) makes the backward pass the full one.
  const probe = s.f(P0(), s.input.ref, cs());
  const cot = np.array(new Rng(1).fill(probe.size, { normal: true }), { shape: probe.shape });
  probe.dispose();
  const fb = jit((Pp: Params, x: np.Array, consts: np.Array[], c: np.Array) => {
    const objective = (Pq: Params, xx: np.Array) => {
      const y = s.f(Pq, xx, consts);
      disposeParams(Pq);
      return np.sum(y.mul(c));
    };
    if (s.inputGrad) return valueAndGrad(objective, { argnums: [0, 1] })(Pp, x);
    return valueAndGrad((Pq: Params) => objective(Pq, x))(Pp);
  });
  const both = await timeIt(() => fb(P0(), s.input.ref, cs(), cot.ref));
  fb.dispose();
  cot.dispose();
  return { forward, forward_backward: both };
}

const name = values.config!;
if (!isBenchConfigName(name)) throw new Error(`--config: unknown "${name}"`);
const bc = BENCH_CONFIGS[name];
const cfg: HyperNetworkConfig = parseHyperNetworkConfig(bc.model, `bench config ${name}`);
const backend = await initBackend();
const a = cfg.hyponet.args as AnrArgs;
const { batch: b, size: s } = bc;
const n = s * s;
const form = attentionFormOf(cfg);
const layout = encodingLayout(cfg);
if (layout.padDim !== 0) throw new Error("the profile covers PE without padding");
const freqs = peFrequencies(layout.nFreqs, a.pe_sigma);
const P = toDevice(initHostParams(cfg, 0));
const inputs = benchInputs(bc);
const imgs = () => np.array(inputs.imgs, { shape: [b, 3, s, s] });
const noiseHost = inputs.nextNoise();
const noise = () => np.array(noiseHost, { shape: [b, s, s, 2] });
const grid = () => np.broadcastTo(np.array(coordGrid(s, s), { shape: [1, n, 2] }), [b, n, 2]);

// Stage inputs of the real shapes, computed once (eagerly, untimed).
const x = imgs().mul(2).sub(1);
const tokens = imgTokenizer(P, cfg, x.ref);
const encoded = transformerEncoder(P, cfg.tinr_enc.args, tokens.ref);
const wtokensInit = (Pp: Params) =>
  np.broadcastTo(Pp.wtokens!.ref.reshape([1, ...Pp.wtokens!.shape]), [b, ...Pp.wtokens!.shape]);
const decoded = transformerDecoder(P, cfg.tinr_dec.args, wtokensInit(P), encoded.ref);
const dtoken = weightHead(P, cfg, decoded.ref).dtoken!;
const pe = positionalEncoding(jitterCoords(grid(), noise().reshape([b, n, 2]), s, s), freqs);
const predFlat = anrHyponet(P, a, pe.ref, dtoken.ref);
const pred = predFlat.reshape([b, s, s, a.out_dim]).transpose([0, 3, 1, 2]);
await blockUntilReady([x, tokens, encoded, decoded, dtoken, pe, pred]);

const stages: StageDef[] = [
  {
    name: "tokenizer",
    prefixes: ["tokenizer."],
    input: x,
    inputGrad: false,
    consts: [],
    f: (Pp, xx) => imgTokenizer(Pp, cfg, xx),
  },
  {
    name: "encoder",
    prefixes: ["tinr_enc."],
    input: tokens,
    inputGrad: true,
    consts: [],
    f: (Pp, xx) => transformerEncoder(Pp, cfg.tinr_enc.args, xx),
  },
  {
    name: "decoder",
    prefixes: ["tinr_dec.", "wtokens"],
    input: encoded,
    inputGrad: true,
    consts: [],
    f: (Pp, xx) => transformerDecoder(Pp, cfg.tinr_dec.args, wtokensInit(Pp), xx),
  },
  {
    name: "weight head",
    prefixes: ["wtoken_postfc.", "base_params."],
    input: decoded,
    inputGrad: true,
    consts: [],
    f: (Pp, xx) => weightHead(Pp, cfg, xx).dtoken!,
  },
  {
    name: "PE",
    prefixes: [],
    input: noise().reshape([b, n, 2]),
    inputGrad: false,
    consts: [],
    forwardOnly: true,
    f: (_Pp, nz) => positionalEncoding(jitterCoords(grid(), nz, s, s), freqs),
  },
  {
    name: "localized attention",
    prefixes: ["hyponet.attn."],
    input: dtoken,
    inputGrad: true,
    consts: [pe],
    f: (Pp, dt, [e]) => anrAttention(Pp, a, e!, dt),
  },
  // Any (B, N, hidden) input through the MLP: its cost does not depend on the values.
  {
    name: "MLP",
    prefixes: ["hyponet.mlp."],
    input: pe,
    inputGrad: true,
    consts: [],
    f: (Pp, y) => anrMlp(Pp, a, y),
  },
  {
    name: "loss",
    prefixes: [],
    input: pred,
    inputGrad: true,
    consts: [x],
    // The l2 loss and PSNR of imageObjective (src/model/tasks.ts), on a given prediction.
    f: (_Pp, pr, [xx]) => {
      const { loss, psnr } = imageLoss(pr, xx!);
      return loss.add(psnr.mul(0));
    },
  },
];

const results: Record<string, StageTiming> = {};
if (!values.trace) {
  for (const st of stages) {
    results[st.name] = await timeStage(st);
    process.stderr.write(`  ours ${name} ${st.name}: ${JSON.stringify(results[st.name])}\n`);
  }
}

// The whole step, timed the same way.
const objective = (Pp: Params, im: np.Array, nz: np.Array) => {
  const o = imageObjective(Pp, cfg, im, nz);
  o.pred.dispose();
  disposeParams(Pp);
  return [o.loss, o.psnr] as [np.Array, np.Array];
};
const whole: Record<string, Timing> = {};
if (!values.trace) {
  const fwdJ = jit((Pp: Params, im: np.Array, nz: np.Array) => objective(Pp, im, nz));
  whole.forward = await timeIt(() => fwdJ(refParams(P), imgs(), noise()));
  fwdJ.dispose();
  const fbJ = jit((Pp: Params, im: np.Array, nz: np.Array) =>
    valueAndGrad((Pq: Params) => objective(Pq, im, nz), { hasAux: true })(Pp),
  );
  whole.forward_backward = await timeIt(() => fbJ(refParams(P), imgs(), noise()));
  const [aux, grads] = fbJ(refParams(P), imgs(), noise()) as unknown as [np.Array[], Params];
  tree.dispose(aux);
  fbJ.dispose();
  const adamJ = jit((Pp: Params, g: Params, mm: Params, vv: Params, sc: np.Array) => {
    const c = clipByGlobalNorm(g, 1);
    return { ...adamUpdate(Pp, c.grads, mm, vv, sc, REFERENCE_ADAM), norm: c.norm };
  });
  const moments = adamInit(P);
  whole.clip_adam = await timeIt(() =>
    adamJ(
      refParams(P),
      refParams(grads),
      refParams(moments.m),
      refParams(moments.v),
      adamScalars(REFERENCE_ADAM, 1),
    ),
  );
  adamJ.dispose();
  disposeParams(grads);
  disposeParams(moments.m);
  disposeParams(moments.v);
}

// The real fused step: timed, and with --trace (under ANR_THREADS=1, where jax-js runs each kernel
// synchronously, so its trace entry is the kernel's run time) its kernels are listed.
const step = createImageTrainStep(cfg, { adam: REFERENCE_ADAM, clipNorm: 1 });
const moments = adamInit(P);
let state: TrainState = { params: refParams(P), m: moments.m, v: moments.v, step: 0 };
const stepTimes: { wall: number; cpu: number }[] = [];
for (let i = 0; i < REPS + 1; i++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  if (values.trace && i === REPS) profiler.startTrace();
  const [next] = await step(state, [{ imgs: imgs(), noise: noise() }]);
  if (values.trace && i === REPS) profiler.stopTrace();
  const c = process.cpuUsage(c0);
  if (i > 0) stepTimes.push({ wall: performance.now() - t0, cpu: (c.user + c.system) / 1000 });
  state = next;
}
step.dispose();
whole.fused_step = summary(stepTimes);

// The step's kernels were traced above; then one decode chunk's (one image, a 64² grid: one
// chunk of 4096 points), the same function that decodes any size.
let trace = null;
if (values.trace) {
  const stepTrace = kernelTrace(stepTimes.at(-1)!.wall);
  performance.clearMeasures();
  const gen = hyperNetwork(P, cfg, x.ref.slice([0, 1]));
  const decode = createImageDecoder(cfg, 4096);
  await decode(P, gen, 1, 64, 64);
  profiler.startTrace();
  const t0 = performance.now();
  await decode(P, gen, 1, 64, 64);
  const decodeWall = performance.now() - t0;
  profiler.stopTrace();
  decode.dispose();
  trace = { step: stepTrace, decode_chunk: kernelTrace(decodeWall) };
}

const flops = stageFlops(cfg, b, s, form);
const out = {
  side: "ours",
  config: name,
  backend: `jax-js ${backend.device}`,
  threads: backend.threads,
  attention: form,
  reps: REPS,
  measured: results,
  flops,
  whole,
  trace,
};
process.stdout.write(JSON.stringify(out) + "\n");

/** One kernel of the trace, grouped by its expression and shape. */
interface KernelRow {
  kind: "matmul" | "reduction" | "elementwise" | "routine";
  label: string;
  calls: number;
  ms: number;
  /** Reduction length (the matmul's inner dimension), 1 for elementwise kernels. */
  reduce: number;
  size: number;
  flops: number;
  /** The first two inputs' index shapes and strides (output axes, then the reduced axis), as jax-js prints them. */
  shapes: string;
}

/** The kernels traced so far, grouped, with their share of the time and their GFLOP/s. */
function kernelTrace(stepWall: number) {
  const entries = performance.getEntriesByType("measure") as PerformanceMeasure[];
  const rows = new Map<string, KernelRow>();
  for (const e of entries) {
    const props = Object.fromEntries(
      ((e.detail as { devtools?: { properties?: [string, string][] } } | null)?.devtools?.properties ??
        []) as [string, string][],
    );
    const exp = props.exp ?? "";
    const red = /^(\w+):(\d+)$/.exec(props.reduction ?? "");
    const reduce = red ? Number(red[2]) : 1;
    const size = Number(props.size ?? 0);
    // A sum over products of two inputs is a matrix product (2 FLOPs per multiply-add).
    const isMatmul = red?.[1] === "Add" && /GV_1/.test(exp) && /\*/.test(exp);
    const kind: KernelRow["kind"] = !e.name.startsWith("Kernel")
      ? "routine"
      : isMatmul
        ? "matmul"
        : red
          ? "reduction"
          : "elementwise";
    const shapes = [...exp.matchAll(/GV_\d+<\w+>\{([\d,]+):([\d,]+):/g)]
      .slice(0, 2)
      .map((m) => `${m[1]} (strides ${m[2]})`)
      .join(" × ");
    const key = `${kind} ${size} ${reduce} ${exp.length > 400 ? exp.slice(0, 400) : exp}`;
    const r = rows.get(key) ?? { kind, label: e.name, calls: 0, ms: 0, reduce, size, flops: 0, shapes };
    r.calls += 1;
    r.ms += e.duration;
    r.flops += kind === "matmul" ? 2 * size * reduce : size * reduce;
    rows.set(key, r);
  }
  const all = [...rows.values()];
  const byKind = Object.fromEntries(
    (["matmul", "reduction", "elementwise", "routine"] as const).map((k) => {
      const rs = all.filter((r) => r.kind === k);
      const ms = rs.reduce((x, r) => x + r.ms, 0);
      const fl = rs.reduce((x, r) => x + r.flops, 0);
      return [
        k,
        {
          kernels: rs.reduce((x, r) => x + r.calls, 0),
          ms,
          gflops_per_s: k === "matmul" ? fl / 1e6 / ms : null,
        },
      ];
    }),
  );
  const kernelMs = all.reduce((x, r) => x + r.ms, 0);
  return {
    step_wall_ms: stepWall,
    kernels: entries.length,
    kernel_ms: kernelMs,
    by_kind: byKind,
    top: all
      .sort((p, q) => q.ms - p.ms)
      .slice(0, 15)
      .map((r) => ({ ...r, gflops_per_s: r.kind === "matmul" ? r.flops / 1e6 / r.ms : null })),
  };
}
