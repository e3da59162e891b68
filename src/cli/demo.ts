/**
 * The main job (README's first command): train a small ANR on random crops of the embedded
 * photos, evaluate on a held-out photo, and write a run folder with the config, metrics, the
 * model, a reconstruction grid and a 4× super-resolution next to bicubic upsampling.
 */
import { parseArgs } from "node:util";
import { mkdir, appendFile } from "node:fs/promises";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { initBackend, readF32 } from "../backend/index.js";
import { numpy as np } from "../backend/jax.js";
import { parseHyperNetworkConfig, type HyperNetworkConfigInput } from "../model/config.js";
import { initHostParams, toDevice, toHost, countParams } from "../model/params.js";
import { hyperNetwork } from "../model/model.js";
import { createImageDecoder } from "../model/tasks.js";
import { adamInit } from "../training/optim.js";
import { createImageTrainStep, createImageEvalStep, type TrainState } from "../training/step.js";
import { saveModel } from "../io/weights.js";
import { writeFileAtomic } from "../io/safetensors.js";
import {
  loadImage,
  randomCrop,
  crop,
  hconcat,
  vconcat,
  savePng,
  psnr01,
  resizeImage,
  type HostImage,
} from "../data/image.js";
import { Rng } from "../util/rng.js";

const PHOTOS = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "data", "photos");

/** A CPU-sized ANR: 32×32 inputs, 16 patch tokens of 8×8, 2 + 2 transformer layers, 32 R-tokens. */
export const DEMO_MODEL: HyperNetworkConfigInput = {
  n_groups: 32,
  direct_wtoken: true,
  tokenizer: { name: "ImgTokenizer", args: { input_size: 32, patch_size: 8, padding: 0, dim: 96 } },
  hyponet: {
    name: "ANR",
    args: {
      in_dim: 2,
      out_dim: 3,
      depth: 3,
      hidden_dim: 64,
      token_len: 32,
      pe_dim: 32,
      pe_sigma: 64,
      att_threshold: 0.01,
      n_head: 4,
      head_dim: 32,
    },
  },
  tinr_enc: { name: "TInrEncoder", args: { dim: 96, depth: 2, n_head: 4, head_dim: 24, ff_dim: 192 } },
  tinr_dec: { name: "TInrDecoder", args: { dim: 96, depth: 2, n_head: 4, head_dim: 24, ff_dim: 192 } },
};

function toBatch(imgs: HostImage[]): np.Array {
  const { c, h, w } = imgs[0]!;
  const data = new Float32Array(imgs.length * c * h * w);
  imgs.forEach((im, i) => data.set(im.data, i * c * h * w));
  return np.array(data, { shape: [imgs.length, c, h, w] });
}

function fromBatch(a: Float32Array, b: number, c: number, h: number, w: number): HostImage[] {
  return [...Array(b).keys()].map((i) => ({ c, h, w, data: a.slice(i * c * h * w, (i + 1) * c * h * w) }));
}

export async function runDemo(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      steps: { type: "string", default: "600" },
      batch: { type: "string", default: "8" },
      lr: { type: "string", default: "3e-4" },
      seed: { type: "string", default: "0" },
      "eval-every": { type: "string", default: "100" },
      out: { type: "string" },
    },
  });
  const steps = Number(values.steps);
  const batch = Number(values.batch);
  const seed = Number(values.seed);
  const evalEvery = Number(values["eval-every"]);
  const backend = await initBackend();
  const cfg = parseHyperNetworkConfig(DEMO_MODEL, "demo model");
  const size = 32;
  const runDir = resolve(
    values.out ?? join("runs", `demo-${new Date().toISOString().replace(/[:.]/g, "-")}`),
  );
  await mkdir(runDir, { recursive: true });

  const trainFiles = ["astronaut.png", "chelsea.png", "coffee.png"];
  const testFile = "rocket.png";
  const train = await Promise.all(trainFiles.map((f) => loadImage(join(PHOTOS, f))));
  const test = await loadImage(join(PHOTOS, testFile));
  const evalRng = new Rng(seed + 1000);
  const evalCrops = [...Array(8).keys()].map(() => randomCrop(test, size, evalRng));

  const run = {
    task: "demo: ANR on random 32×32 crops of embedded photos",
    data: { dir: PHOTOS, train: trainFiles, test: testFile, crop: size, flip: 0.5 },
    model: cfg,
    train: {
      steps,
      batch,
      seed,
      coord_noise: true,
      optimizer: { name: "adam", lr: Number(values.lr), beta1: 0.9, beta2: 0.99, eps: 1e-8 },
      clip_norm: 1,
    },
    backend,
  };
  await writeFileAtomic(join(runDir, "config.json"), JSON.stringify(run, null, 2) + "\n");
  console.log(
    `anr demo: ${countParams(cfg).toLocaleString("en")} parameters, ${backend.threads} threads; run folder ${runDir}`,
  );

  const P = toDevice(initHostParams(cfg, seed));
  const opt = adamInit(P);
  let state: TrainState = { params: P, m: opt.m, v: opt.v, step: 0 };
  const trainStep = createImageTrainStep(cfg, { adam: run.train.optimizer, clipNorm: 1 });
  const evalStep = createImageEvalStep(cfg);
  const rng = new Rng(seed);
  const metricsPath = join(runDir, "metrics.jsonl");

  const evaluate = async () => {
    const out = await evalStep(state.params, toBatch(evalCrops));
    const pred = fromBatch(
      (await readF32(out.pred)).map((x) => (x + 1) / 2),
      evalCrops.length,
      3,
      size,
      size,
    );
    const psnr = pred.reduce((s, p, i) => s + psnr01(p.data, evalCrops[i]!.data), 0) / pred.length;
    return { psnr, pred };
  };

  const t0 = performance.now();
  let last = await evaluate();
  await appendFile(metricsPath, JSON.stringify({ step: 0, test_psnr: last.psnr }) + "\n");
  console.log(`step 0  test PSNR ${last.psnr.toFixed(2)} dB`);
  for (let s = 1; s <= steps; s++) {
    const imgs = toBatch(
      [...Array(batch).keys()].map(() => randomCrop(train[rng.int(train.length)]!, size, rng, 0.5)),
    );
    const noise = np.array(rng.fill(batch * size * size * 2, { normal: true }), {
      shape: [batch, size, size, 2],
    });
    const [next, m] = await trainStep(state, [{ imgs, noise }]);
    state = next;
    const record: Record<string, number> = {
      step: s,
      loss: m.loss,
      train_psnr: m.psnr,
      grad_norm: m.gradNorm,
      seconds: (performance.now() - t0) / 1000,
    };
    if (s % evalEvery === 0 || s === steps) {
      last = await evaluate();
      record.test_psnr = last.psnr;
      const rate = s / record.seconds!;
      console.log(
        `step ${s}/${steps}  loss ${m.loss.toFixed(4)}  train PSNR ${m.psnr.toFixed(2)}  test PSNR ${last.psnr.toFixed(2)} dB  ${rate.toFixed(2)} steps/s  ETA ${((steps - s) / rate).toFixed(0)} s`,
      );
    }
    await appendFile(metricsPath, JSON.stringify(record) + "\n");
  }

  await saveModel(join(runDir, "model.safetensors"), cfg, await toHost(state.params), {
    "anr.run": JSON.stringify({ step: state.step }),
  });
  await savePng(join(runDir, "reconstruction.png"), vconcat([hconcat(evalCrops), hconcat(last.pred)]), 4);

  // 4× super-resolution of held-out crops: decode the same R-tokens on a 128×128 grid.
  const srIn = [crop(test, 20, 30, size, size), crop(test, 50, 10, size, size)];
  const gen = hyperNetwork(state.params, cfg, toBatch(srIn).mul(2).sub(1));
  const decoder = createImageDecoder(cfg);
  const sr = fromBatch(
    (await decoder(state.params, gen, srIn.length, 4 * size, 4 * size)).map((x) => (x + 1) / 2),
    srIn.length,
    3,
    4 * size,
    4 * size,
  );
  const rows: HostImage[] = [];
  for (let i = 0; i < srIn.length; i++) {
    rows.push(
      hconcat([
        await resizeImage(srIn[i]!, 4 * size, 4 * size, "nearest"),
        await resizeImage(srIn[i]!, 4 * size, 4 * size, "cubic"),
        sr[i]!,
      ]),
    );
  }
  await savePng(join(runDir, "super_resolution.png"), vconcat(rows), 2);
  trainStep.dispose();
  evalStep.dispose();
  decoder.dispose();
  for (const v of Object.values(gen)) v.dispose();
  console.log(
    `done in ${((performance.now() - t0) / 1000).toFixed(0)} s; held-out test PSNR ${last.psnr.toFixed(2)} dB`,
  );
  console.log(
    `results in ${runDir}: config.json metrics.jsonl model.safetensors reconstruction.png super_resolution.png (input | bicubic ×4 | ANR ×4)`,
  );
  return 0;
}
