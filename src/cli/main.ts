/**
 * The `anr` command line. Exit codes: 0 success, 1 a check failed, 2 bad usage or input.
 */
import { parseArgs } from "node:util";
import { initBackend } from "../backend/index.js";
import { runGolden, formatReport } from "../golden/golden.js";
import { loadModel, saveModel } from "../io/weights.js";
import { readSafetensors } from "../io/safetensors.js";
import { parseHyperNetworkConfig } from "../model/config.js";
import { countParams, initHostParams, numel } from "../model/params.js";
import { readFile } from "node:fs/promises";
import { runDemo } from "./demo.js";

const USAGE = `anr — attention-based implicit neural representations

Usage:
  anr golden DIR... [--all]     compare with golden data made by the reference PyTorch code
  anr init CONFIG.json --out MODEL.safetensors [--seed N]
                                build a freshly initialised model from a config (the "hn" block
                                of a golden config.json also works)
  anr info FILE.safetensors     what a model or tensor file holds
  anr demo [--steps N] [--out DIR]
                                the main job: a short end-to-end training run on embedded data
  anr help                      this text

Examples:
  anr golden ../shared/golden/*
  anr init ../shared/golden/anr/config.json --out anr.safetensors
  anr info anr.safetensors

Environment: ANR_THREADS (kernel threads, default: all cores).
Exit codes: 0 ok, 1 a check failed, 2 bad usage or input.`;

class UsageError extends Error {}

async function cmdGolden(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { all: { type: "boolean" } },
  });
  if (positionals.length === 0) throw new UsageError("anr golden: give at least one golden directory");
  await initBackend();
  let ok = true;
  for (const dir of positionals) {
    const r = await runGolden(dir);
    console.log(formatReport(r, values.all));
    ok &&= r.ok;
  }
  console.log(ok ? "all golden checks passed" : "GOLDEN CHECKS FAILED");
  return ok ? 0 : 1;
}

async function readConfigFile(path: string): Promise<unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    throw new UsageError(`${path}: cannot read JSON (${(e as Error).message})`);
  }
  // A golden/reference config nests the constructor arguments under "hn".
  return typeof raw === "object" && raw !== null && "hn" in raw ? (raw as { hn: unknown }).hn : raw;
}

async function cmdInit(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { out: { type: "string" }, seed: { type: "string", default: "0" } },
  });
  if (positionals.length !== 1 || !values.out)
    throw new UsageError("anr init CONFIG.json --out MODEL.safetensors");
  const cfg = parseHyperNetworkConfig(await readConfigFile(positionals[0]!), positionals[0]!);
  await saveModel(values.out, cfg, initHostParams(cfg, Number(values.seed)));
  console.log(
    `wrote ${values.out}: ${cfg.hyponet.name} model, ${countParams(cfg).toLocaleString("en")} parameters`,
  );
  return 0;
}

async function cmdInfo(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true });
  if (positionals.length !== 1) throw new UsageError("anr info FILE.safetensors");
  const path = positionals[0]!;
  const file = await readSafetensors(path);
  if (file.metadata["anr.config"] !== undefined) {
    const m = await loadModel(path);
    const h = m.config.hyponet;
    console.log(`${path}: anr model`);
    console.log(
      `  hyponet     ${h.name} (in ${h.args.in_dim}, out ${h.args.out_dim}, hidden ${h.args.hidden_dim}, depth ${h.args.depth})`,
    );
    console.log(`  tokenizer   ${m.config.tokenizer.name} ${JSON.stringify(m.config.tokenizer.args)}`);
    console.log(
      `  transformer encoder ${m.config.tinr_enc.args.depth} + decoder ${m.config.tinr_dec.args.depth} layers, dim ${m.config.tinr_dec.args.dim}`,
    );
    console.log(`  parameters  ${countParams(m.config).toLocaleString("en")} in ${m.weights.size} tensors`);
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

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
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
    if (e instanceof UsageError || (e instanceof Error && /Error$/.test(e.name) && e.name !== "Error")) {
      console.error(`anr: ${(e as Error).message}`);
      if (e instanceof UsageError) console.error(`(anr help for usage)`);
      return 2;
    }
    throw e;
  }
}

process.exitCode = await main(process.argv.slice(2));
