/**
 * Run by test/node-webgpu.test.ts in a process of its own, on the device named by its argument:
 * the demo model's encode and 2× decode of a test photo, and two training steps of the tiny ANR
 * config on fixed inputs; prints the numbers as one JSON line.
 */
import "../src/node-startup.js";
import { join } from "node:path";
import { initBackend } from "../src/backend/index.js";
import { numpy as np } from "../src/backend/jax.js";
import { parseHyperNetworkConfig } from "../src/model/config.js";
import { initHostParams, toDevice } from "../src/model/params.js";
import { adamInit, REFERENCE_ADAM } from "../src/training/optim.js";
import { createImageTrainStep, type TrainState } from "../src/training/step.js";
import { Rng } from "../src/util/rng.js";
import { tinyConfig } from "./fixtures.js";

const device = process.argv[2] === "webgpu" ? "webgpu" : "wasm";
const backend = await initBackend({ device });
const { Anr } = await import("../src/api/node.js");
const model = await Anr.load("demo-photos-anr");
const tokens = await model.encode(join(import.meta.dirname, "..", "data", "photos", "test", "rocket.png"));
const decoded = await model.decode(tokens, { scale: 2 });
model.dispose();

const cfg = parseHyperNetworkConfig(tinyConfig("ANR"), "tiny");
const rng = new Rng(3);
const params = toDevice(initHostParams(cfg, 0));
let state: TrainState = { params, ...adamInit(params), step: 0 };
const step = createImageTrainStep(cfg, { adam: REFERENCE_ADAM, clipNorm: 1 });
const losses: number[] = [];
for (let i = 0; i < 2; i++) {
  const imgs = np.array(rng.fill(2 * 3 * 16 * 16, { lo: 0, hi: 1 }), { shape: [2, 3, 16, 16] });
  const noise = np.array(rng.fill(2 * 16 * 16 * 2, { normal: true }), { shape: [2, 16, 16, 2] });
  const [next, m] = await step(state, [{ imgs, noise }]);
  state = next;
  losses.push(m.loss, m.gradNorm);
}
step.dispose();
process.stdout.write(
  JSON.stringify({
    device: backend.device,
    tokens: [...tokens.tensors.values()].flatMap((t) => [...t.data]),
    decoded: [...decoded.data],
    losses,
  }) + "\n",
);
