/**
 * The `anr` command line. Exit codes: 0 success, 1 a check failed, 2 bad usage or input, 70 a bug in anr.
 */
import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEVICES, initBackend } from "../backend/index.js";
import { runGolden, formatReport, readToleranceTable } from "../golden/golden.js";
import { loadModel, saveModel, readSafetensors } from "../io/files.js";
import { parseHyperNetworkConfig } from "../model/config.js";
import { countParams, initHostParams, numel } from "../model/params.js";
import { runDemo } from "./demo.js";
import { AnrError, UsageError, isFileSystemError } from "../util/errors.js";
import { cmdTrain, cmdPresets, TRAIN_USAGE } from "./train.js";
import { cmdEval, EVAL_USAGE } from "./eval.js";
import { cmdEncode, ENCODE_USAGE } from "./encode.js";
import { cmdDecode, DECODE_USAGE } from "./decode.js";
import { isTokenFile, representationSize, tokensFromSafetensors } from "../io/tokens.js";
import { cmdCompare, COMPARE_USAGE } from "./compare.js";
import { cmdRender, RENDER_USAGE } from "./render.js";
import { cmdModels, MODELS_USAGE } from "./models.js";
import { resolveModel } from "../io/zoo.js";
import { readConfigFile } from "../io/config-file.js";

const USAGE = `anr — attention-based implicit neural representations

Usage:
  anr demo [--steps N] [--out DIR]       the main job: train a small ANR on the embedded photos,
                                         evaluate on held-out photos, 4× super-resolution
  anr train CONFIG|--preset NAME [...]   train an image model (anr train --help)
  anr eval RUN_DIR [...]                 PSNR/SSIM on a split, with a grid (anr eval --help)
  anr encode IMAGE... --model M --out tokens.safetensors
                                         the compact representation (R-tokens) of images
  anr decode tokens.safetensors --model M --size HxW [--out DIR]
                                         images at any resolution from their tokens
  anr compare --preset fmnist|demo       ANR vs TransINR-style MLP vs IPC, same everything else
  anr render --model M --views OBJ_DIR   novel views of an object from posed support views
                                         (orbit frames + animated GIF)
  anr presets                            run and model presets
  anr models                             the model zoo: shipped trained models, usable by name
  anr golden DIR... [--all]              compare with golden data made by the reference PyTorch code
  anr init CONFIG --out MODEL.safetensors [--seed N]
                                         a freshly initialised model from a model config (JSON or
                                         YAML; the "hn" block of a golden config.json and the
                                         authors' YAML configs also work)
  anr info FILE.safetensors              what a model, checkpoint, token or tensor file holds
  anr help                               this text

Examples:
  npm start                                        (= anr demo)
  anr train --preset fmnist-anr --out runs/fmnist-anr
  anr eval runs/fmnist-anr --weights ema
  anr encode photo.jpg --model runs/fmnist-anr --out tokens.safetensors
  anr decode tokens.safetensors --model runs/fmnist-anr --size 256x256 --out sr/
  anr golden test/golden/*

Global option: --device wasm|webgpu|cpu   where the model runs (default wasm; ANR_DEVICE also sets it).
Environment: ANR_DEVICE, ANR_THREADS (kernel threads, default all cores).
Exit codes: 0 ok, 1 a check failed, 2 bad usage or input, 70 a bug in anr (ANR_DEBUG=1 prints its stack).`;

async function cmdGolden(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { all: { type: "boolean" }, tolerances: { type: "string" } },
  });
  if (positionals.length === 0) throw new UsageError("anr golden: give at least one golden directory");
  await initBackend();
  let ok = true;
  for (const dir of positionals) {
    // Measured per-key bounds: --tolerances FILE, else a tolerances.json beside the variant
    // folders (test/golden has one); the uniform bounds otherwise.
    const file = values.tolerances ?? join(dirname(resolve(dir)), "tolerances.json");
    const table = values.tolerances || existsSync(file) ? await readToleranceTable(file) : undefined;
    const tolerances = table?.get(basename(resolve(dir)));
    if (values.tolerances && !tolerances)
      throw new UsageError(`--tolerances ${file}: no bounds for "${basename(resolve(dir))}"`);
    console.log(tolerances ? `(per-key bounds from ${file})` : "(uniform bounds)");
    const r = await runGolden(dir, { tolerances });
    console.log(formatReport(r, values.all));
    ok &&= r.ok;
  }
  console.log(ok ? "all golden checks passed" : "GOLDEN CHECKS FAILED");
  return ok ? 0 : 1;
}

/** The model config inside a config file, whichever of the known layouts it has. */
async function modelConfigOf(path: string): Promise<unknown> {
  const raw = await readConfigFile(path, "model config");
  if (typeof raw !== "object" || raw === null) return raw;
  // A golden config nests the constructor arguments under "hn"; the authors' YAML configs hold
  // them in hyper_network: ["HyperNetwork", {...}]; our run configs under "model".
  const r = raw as Record<string, unknown>;
  if ("hn" in r) return r.hn;
  if (Array.isArray(r.hyper_network)) return r.hyper_network[1];
  if ("model" in r && "data" in r) return r.model;
  return raw;
}

async function cmdInit(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { out: { type: "string" }, seed: { type: "string", default: "0" } },
  });
  if (positionals.length !== 1 || !values.out)
    throw new UsageError("anr init CONFIG.json --out MODEL.safetensors");
  const cfg = parseHyperNetworkConfig(await modelConfigOf(positionals[0]!), positionals[0]!);
  await saveModel(values.out, cfg, initHostParams(cfg, Number(values.seed)));
  console.log(
    `wrote ${values.out}: ${cfg.hyponet.name} model, ${countParams(cfg).toLocaleString("en")} parameters`,
  );
  return 0;
}

async function cmdInfo(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true });
  if (positionals.length !== 1) throw new UsageError("anr info FILE.safetensors|ZOO_NAME");
  const path = await resolveModel(positionals[0]!);
  const file = await readSafetensors(path);
  if (isTokenFile(file)) {
    const t = tokensFromSafetensors(file, path);
    console.log(
      `${path}: encoded images (${t.config.hyponet.name} model), ${t.names.length} instance(s), ${representationSize(t.config).toLocaleString("en")} floats each`,
    );
    for (const [k, v] of t.tensors) console.log(`  ${k} [${v.shape.join(", ")}]`);
    console.log(`  images: ${t.names.join(", ")}`);
    return 0;
  }
  if (file.metadata["anr.config"] !== undefined) {
    const m = await loadModel(path);
    const h = m.config.hyponet;
    console.log(`${path}: anr model`);
    console.log(
      `  hyponet     ${h.name} (in ${h.args.in_dim}, out ${h.args.out_dim}, hidden ${h.args.hidden_dim}, depth ${h.args.depth})`,
    );
    console.log(`  tokenizer   ${m.config.tokenizer.name} ${JSON.stringify(m.config.tokenizer.args)}`);
    if (h.args.sphere) console.log(`  coordinates on the sphere ${JSON.stringify(h.args.sphere)}`);
    for (const c of m.config.channels ?? [])
      console.log(
        `  channel     ${c.name}${c.units ? ` [${c.units}]` : ""}: network sees ${c.scale}·(x + ${c.shift})`,
      );
    console.log(
      `  transformer encoder ${m.config.tinr_enc.args.depth} + decoder ${m.config.tinr_dec.args.depth} layers, dim ${m.config.tinr_dec.args.dim}`,
    );
    console.log(`  parameters  ${countParams(m.config).toLocaleString("en")} in ${m.weights.size} tensors`);
    console.log(`  representation ${representationSize(m.config).toLocaleString("en")} floats per instance`);
    for (const [k, v] of Object.entries(m.metadata))
      console.log(`  ${k}: ${v.length > 200 ? v.slice(0, 200) + "…" : v}`);
    return 0;
  }
  console.log(`${path}: ${file.tensors.size} tensors`);
  for (const [k, v] of Object.entries(file.metadata))
    console.log(`  meta ${k}: ${v.length > 200 ? v.slice(0, 200) + "…" : v}`);
  for (const [k, t] of file.tensors) console.log(`  ${k} [${t.shape.join(", ")}] (${numel(t.shape)})`);
  return 0;
}

/** `anr CMD --help`: each command's usage, with examples. */
const COMMAND_USAGE: Record<string, string> = {
  train: TRAIN_USAGE,
  eval: EVAL_USAGE,
  encode: ENCODE_USAGE,
  decode: DECODE_USAGE,
  compare: COMPARE_USAGE,
  render: RENDER_USAGE,
  models: MODELS_USAGE,
  demo: `anr demo [--steps N] [--out DIR] [--resume]

The main job: trains the "demo" run preset (a small ANR on the embedded photos), evaluates on the
held-out photos and writes a 4× super-resolution next to bicubic upsampling.
Example: anr demo --steps 300 --out runs/demo`,
  golden: `anr golden DIR... [--all] [--tolerances FILE]

Rebuilds the model from DIR/config.json and DIR/weights.safetensors, recomputes every key of
DIR/io.safetensors it knows (intermediates, predictions, loss, PSNR, gradients, one Adam step),
prints max errors against the tolerances, exits 1 on any failure. The tolerances are the measured
per-key bounds of FILE, or of a tolerances.json beside DIR (test/golden/tolerances.json, made by
scripts/golden_tolerances.ts); without one, the uniform bounds of the golden notes.
Example: anr golden test/golden/*`,
  init: `anr init CONFIG --out MODEL.safetensors [--seed N]

CONFIG: a model config (JSON/YAML), a golden config.json ("hn"), an authors' YAML config
("hyper_network") or a run config ("model").
Example: anr init test/golden/anr/config.json --out anr.safetensors`,
  info: `anr info FILE.safetensors

Describes a model, checkpoint, token file or any safetensors file.
Example: anr info runs/demo/model.safetensors`,
  presets: `anr presets

Lists the run presets (anr train --preset NAME) and model presets (model: { preset: NAME }).`,
};

/**
 * The device, from `--device NAME` (or `--device=NAME`) anywhere on the line, else ANR_DEVICE:
 * read once here, so that every command runs on it. Returns the line without the option.
 */
function takeDevice(argv: string[]): { argv: string[]; device: (typeof DEVICES)[number] | undefined } {
  const rest: string[] = [];
  let value = process.env.ANR_DEVICE || undefined;
  let from = "ANR_DEVICE";
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--device" || a.startsWith("--device=")) {
      value = a === "--device" ? argv[++i] : a.slice("--device=".length);
      from = "--device";
      if (value === undefined) throw new UsageError(`--device: expected one of ${DEVICES.join(", ")}`);
    } else rest.push(a);
  }
  if (value !== undefined && !(DEVICES as readonly string[]).includes(value))
    throw new UsageError(`${from} ${value}: expected one of ${DEVICES.join(", ")}`);
  return { argv: rest, device: value as (typeof DEVICES)[number] | undefined };
}

export async function main(argvWithDevice: string[]): Promise<number> {
  let argv: string[];
  try {
    const taken = takeDevice(argvWithDevice);
    argv = taken.argv;
    if (taken.device) {
      try {
        await initBackend({ device: taken.device });
      } catch (e) {
        throw new UsageError(`--device ${taken.device}: ${(e as Error).message}`);
      }
    }
  } catch (e) {
    console.error(`anr: ${(e as Error).message}`);
    return 2;
  }
  const [cmd, ...rest] = argv;
  if (cmd && COMMAND_USAGE[cmd] && (rest.includes("--help") || rest.includes("-h"))) {
    console.log(COMMAND_USAGE[cmd]);
    return 0;
  }
  try {
    switch (cmd) {
      case "golden":
        return await cmdGolden(rest);
      case "init":
        return await cmdInit(rest);
      case "info":
        return await cmdInfo(rest);
      case "demo":
        return await runDemo(rest);
      case "train":
        await cmdTrain(rest);
        return 0;
      case "eval":
        return await cmdEval(rest);
      case "encode":
        return await cmdEncode(rest);
      case "decode":
        return await cmdDecode(rest);
      case "compare":
        return await cmdCompare(rest);
      case "render":
        return await cmdRender(rest);
      case "presets":
        return cmdPresets();
      case "models":
        return await cmdModels();
      case undefined:
      case "help":
      case "--help":
      case "-h":
        console.log(USAGE);
        return cmd === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (e) {
    return reportError(e);
  }
}

/**
 * Print an error the way its kind asks for and return the exit code: an `AnrError` by its own
 * message and code, a file-system error (a missing file, a read-only folder) as an input error,
 * and anything else as a bug, in one line, with the stack only under ANR_DEBUG=1.
 */
export function reportError(e: unknown): number {
  if (e instanceof UsageError && e.exitCode === 0) {
    console.log(e.message);
    return 0;
  }
  if (e instanceof AnrError) {
    console.error(`anr: ${e.message}`);
    if (e instanceof UsageError) console.error(`(anr help for usage)`);
    return e.exitCode;
  }
  if (isFileSystemError(e)) {
    console.error(`anr: ${e.message}`);
    return 2;
  }
  const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  console.error(`anr: internal error (a bug in anr, please report it): ${what}`);
  if (process.env.ANR_DEBUG === "1" && e instanceof Error) console.error(e.stack);
  else console.error(`(run with ANR_DEBUG=1 for the stack trace)`);
  return 70;
}
