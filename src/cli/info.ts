/**
 * `anr info`: what a run folder, a model, checkpoint or token file, or any safetensors file holds,
 * in words and tables (with `--json`, as one object).
 */
import { open, readdir, readFile, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { describePreparation } from "../data/preparation.js";
import { loadModel, readSafetensors } from "../io/files.js";
import { representationSize, tokensFromSafetensors } from "../io/tokens.js";
import { resolveModel } from "../io/zoo.js";
import { parseHyperNetworkConfig, sizeHW, type HyperNetworkConfig } from "../model/config.js";
import { countParams } from "../model/params.js";
import { InputError } from "../util/errors.js";
import { LOCK_FILE } from "../util/lock.js";
import { formatNumber } from "../util/progress.js";
import { numel } from "../util/shape.js";
import { done, modelTask, type Outcome } from "./common.js";

/** One tensor as a safetensors header lists it. */
interface TensorEntry {
  name: string;
  dtype: string;
  shape: number[];
  numel: number;
}

/**
 * The header of a safetensors file, read without its data (a checkpoint can be large): tensors
 * in file order, with any dtype, and the string metadata.
 */
async function safetensorsHeader(
  path: string,
): Promise<{ tensors: TensorEntry[]; metadata: Record<string, string> }> {
  const f = await open(path);
  try {
    const size = (await f.stat()).size;
    const len = Buffer.alloc(8);
    await f.read(len, 0, 8, 0);
    const n = size >= 8 ? Number(len.readBigUInt64LE(0)) : -1;
    if (n < 2 || 8 + n > size)
      throw new InputError(path, "not a safetensors file (its header length does not fit the file)");
    const json = Buffer.alloc(n);
    await f.read(json, 0, n, 8);
    let header: unknown;
    try {
      header = JSON.parse(json.toString("utf8"));
    } catch (e) {
      throw new InputError(path, `not a safetensors file (header is not JSON: ${(e as Error).message})`);
    }
    if (typeof header !== "object" || header === null || Array.isArray(header))
      throw new InputError(path, "not a safetensors file (header is not a JSON object)");
    const tensors: TensorEntry[] = [];
    let metadata: Record<string, string> = {};
    for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
      if (name === "__metadata__") {
        metadata = v as Record<string, string>;
        continue;
      }
      const { dtype, shape } = v as { dtype?: unknown; shape?: unknown };
      if (typeof dtype !== "string" || !Array.isArray(shape) || !shape.every((d) => Number.isInteger(d)))
        throw new InputError(path, `tensor "${name}": no dtype and shape in the header`);
      tensors.push({ name, dtype, shape: shape as number[], numel: numel(shape as number[]) });
    }
    return { tensors, metadata };
  } finally {
    await f.close();
  }
}

/** Rows as columns padded to their widest cell; columns listed in `right` are right-aligned. */
function table(rows: string[][], right: number[] = []): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (right.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** The tensors as a table: name, dtype, shape, numel, and a total. */
function tensorTable(tensors: TensorEntry[]): string {
  const rows = [["name", "dtype", "shape", "numel"]];
  for (const t of tensors)
    rows.push([t.name, t.dtype, `[${t.shape.join(", ")}]`, t.numel.toLocaleString("en")]);
  const total = tensors.reduce((s, t) => s + t.numel, 0);
  return `${table(rows, [3])
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n")}\n  ${tensors.length} tensors, ${total.toLocaleString("en")} values`;
}

/**
 * A metadata value in one line: a short value as it is; JSON objects by their fields, numbers
 * and short strings shown, the rest named; anything else cut.
 */
function metadataLine(v: string): string {
  if (v.length <= 80) return v;
  try {
    const o = JSON.parse(v) as unknown;
    if (typeof o === "object" && o !== null && !Array.isArray(o)) {
      const parts = Object.entries(o).map(([k, x]) =>
        typeof x === "number" || typeof x === "boolean" || (typeof x === "string" && x.length <= 24)
          ? `${k}: ${JSON.stringify(x)}`
          : k,
      );
      return `{ ${parts.join(", ")} } (${v.length.toLocaleString("en")} characters of JSON)`;
    }
  } catch {
    // Not JSON: cut below.
  }
  return `${v.slice(0, 80)}… (${v.length.toLocaleString("en")} characters)`;
}

/** Lines describing a model config. */
function modelLines(cfg: HyperNetworkConfig, tensors?: number): string[] {
  const h = cfg.hyponet;
  const [ih, iw] = sizeHW(cfg.tokenizer.args.input_size);
  const lines = [
    `  task        ${modelTask(cfg)}, input ${ih}×${iw}`,
    `  hyponet     ${h.name} (in ${h.args.in_dim}, out ${h.args.out_dim}, hidden ${h.args.hidden_dim}, depth ${h.args.depth})`,
    `  tokenizer   ${cfg.tokenizer.name} ${JSON.stringify(cfg.tokenizer.args)}`,
  ];
  if (h.args.sphere) lines.push(`  coordinates on the sphere ${JSON.stringify(h.args.sphere)}`);
  for (const c of cfg.channels ?? [])
    lines.push(
      `  channel     ${c.name}${c.units ? ` [${c.units}]` : ""}: network sees ${c.scale}·(x + ${c.shift})`,
    );
  lines.push(
    `  transformer encoder ${cfg.tinr_enc.args.depth} + decoder ${cfg.tinr_dec.args.depth} layers, dim ${cfg.tinr_dec.args.dim}`,
    `  parameters  ${countParams(cfg).toLocaleString("en")}${tensors === undefined ? "" : ` in ${tensors} tensors`}`,
    `  representation ${representationSize(cfg).toLocaleString("en")} floats per instance`,
  );
  return lines;
}

/** A safetensors file: what anr made it for (model, checkpoint, tokens), its metadata and tensors. */
async function fileInfo(path: string): Promise<Outcome> {
  const header = await safetensorsHeader(path);
  const meta = header.metadata;
  const result: Record<string, unknown> = { path, kind: "safetensors" };
  const lines: string[] = [];
  if (meta["anr.tokens"] !== undefined) {
    // Read whole: the token file's own checks (its metadata against its tensors) run.
    const t = tokensFromSafetensors(await readSafetensors(path), path);
    Object.assign(result, {
      kind: "tokens",
      hyponet: t.config.hyponet.name,
      instances: t.names,
      input_size: t.inputSize,
      floats_per_instance: representationSize(t.config),
    });
    lines.push(
      `${path}: encoded images (${t.config.hyponet.name} model), ${t.names.length} instance(s), ${representationSize(t.config).toLocaleString("en")} floats each`,
      `  images: ${t.names.join(", ")}`,
    );
  } else if (meta["anr.config"] !== undefined) {
    // Loaded as a model: the weights are checked against the config (a damaged file says so).
    const m = await loadModel(path);
    const checkpoint = meta["anr.checkpoint"] !== undefined;
    const step = jsonField(meta[checkpoint ? "anr.checkpoint" : "anr.run"], "step");
    Object.assign(result, {
      kind: checkpoint ? "checkpoint" : "model",
      config: m.config,
      parameters: countParams(m.config),
      floats_per_instance: representationSize(m.config),
      ...(step === undefined ? {} : { step }),
    });
    lines.push(
      `${path}: anr ${checkpoint ? "training checkpoint" : "model"}${step === undefined ? "" : ` at step ${String(step)}`}`,
      ...modelLines(m.config, m.weights.size),
    );
  } else lines.push(`${path}: safetensors file`);
  const shown = Object.entries(meta).filter(([k]) => k !== "anr.checksum");
  if (shown.length) {
    lines.push("  metadata");
    for (const [k, v] of shown) lines.push(`    ${k}: ${metadataLine(v)}`);
  }
  lines.push(tensorTable(header.tensors));
  console.log(lines.join("\n"));
  return done({ ...result, metadata: meta, tensors: header.tensors });
}

/** `key` of the JSON object in `text`, if it parses and has it. */
function jsonField(text: string | undefined, key: string): unknown {
  if (text === undefined) return undefined;
  try {
    return (JSON.parse(text) as Record<string, unknown> | null)?.[key];
  } catch {
    return undefined;
  }
}

/** The lines of metrics.jsonl that parse, in order (a torn last line is skipped). */
async function metricLines(path: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(path, "utf8").catch(() => "");
  const out: Record<string, unknown>[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // A torn line: the run was stopped while writing it.
    }
  }
  return out;
}

/** The pairs of a metrics line, numbers to 4 significant digits, the wall time as a date. */
function metricsText(m: Record<string, unknown>): string {
  return Object.entries(m)
    .map(([k, v]) =>
      k === "time" && typeof v === "number"
        ? `time ${new Date(v * 1000).toISOString().slice(0, 19).replace("T", " ")} UTC`
        : `${k} ${typeof v === "number" ? formatNumber(v) : JSON.stringify(v)}`,
    )
    .join(", ");
}

/**
 * Who holds a run folder's lock, in words: a run training now, or a lock left by a process that
 * is gone (same host, no such pid).
 */
async function lockHolder(path: string): Promise<string> {
  try {
    const h = JSON.parse(await readFile(path, "utf8")) as {
      pid?: number;
      host?: string;
      since?: string;
      purpose?: string;
    };
    let alive = true;
    if (h.host === hostname() && typeof h.pid === "number")
      try {
        process.kill(h.pid, 0);
      } catch (e) {
        alive = (e as NodeJS.ErrnoException).code === "EPERM";
      }
    return alive
      ? `training now (${h.purpose ?? "a run"}, pid ${h.pid} on ${h.host}, since ${h.since})`
      : `stopped without releasing its lock (pid ${h.pid} is gone); anr train … --resume continues it`;
  } catch {
    return `locked (${LOCK_FILE} cannot be read)`;
  }
}

/** `1.2 MB`. */
function bytesText(n: number): string {
  return n < 1e3 ? `${n} B` : n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : `${(n / 1e6).toFixed(1)} MB`;
}

/** A run folder: its config, how far it got, its last metrics and its files. */
async function runInfo(dir: string): Promise<Outcome> {
  const entries = (await readdir(dir, { withFileTypes: true })).filter(
    (e) => !e.name.startsWith(".") || e.name === LOCK_FILE,
  );
  const names = entries.map((e) => e.name);
  if (!["config.json", "checkpoint.safetensors", "model.safetensors"].some((f) => names.includes(f)))
    throw new InputError(
      dir,
      "not a run folder (no config.json, checkpoint.safetensors or model.safetensors)",
    );
  const lines: string[] = [];
  const config = names.includes("config.json")
    ? (JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>)
    : null;
  const train = (config?.train ?? {}) as Record<string, unknown>;
  lines.push(
    `${dir}: run "${String(config?.name ?? "?")}"${config?.task ? `, task ${String(config.task)}` : ""}`,
  );
  if (config) {
    const data = config.data as Record<string, unknown> & { kind: string };
    let prepared = "";
    try {
      prepared = describePreparation(data as Parameters<typeof describePreparation>[0]);
    } catch {
      // An older or hand-written config: the kind and root say enough.
    }
    lines.push(
      `  data        ${data.kind}${data.root ? ` ${String(data.root)}` : ""}${prepared ? ` (${prepared})` : ""}`,
    );
    try {
      const cfg = parseHyperNetworkConfig(config.model, join(dir, "config.json"));
      lines.push(
        `  model       ${cfg.hyponet.name}, ${countParams(cfg).toLocaleString("en")} parameters, ${representationSize(cfg).toLocaleString("en")} floats per instance`,
      );
    } catch {
      lines.push(`  model       ${JSON.stringify(config.model).slice(0, 100)}`);
    }
    const per = Number(train.batch_size ?? 0) * Number(train.grad_accumulation ?? 1);
    lines.push(
      `  training    ${Number(train.steps).toLocaleString("en")} steps of ${per} images, lr ${String(train.lr)}${train.ema ? `, EMA ${String((train.ema as { beta?: number }).beta)}` : ""}, seed ${String(train.seed ?? 0)}`,
    );
  }
  // How far it got: the checkpoint's step (what --resume continues from), the final model's.
  const stepOf = async (file: string, key: string): Promise<number | undefined> =>
    names.includes(file)
      ? (jsonField((await safetensorsHeader(join(dir, file))).metadata[key], "step") as number | undefined)
      : undefined;
  const checkpointStep = await stepOf("checkpoint.safetensors", "anr.checkpoint");
  const modelStep = await stepOf("model.safetensors", "anr.run");
  const metrics = await metricLines(join(dir, "metrics.jsonl"));
  const total = typeof train.steps === "number" ? train.steps : undefined;
  const lastStep = metrics.at(-1)?.step;
  const stepsDone = Math.max(
    modelStep ?? 0,
    checkpointStep ?? 0,
    typeof lastStep === "number" ? lastStep : 0,
  );
  const finished = modelStep !== undefined && (total === undefined || modelStep >= total);
  const lock = names.includes(LOCK_FILE) ? await lockHolder(join(dir, LOCK_FILE)) : null;
  const state = finished
    ? "finished (model.safetensors written)"
    : lock
      ? lock
      : checkpointStep !== undefined
        ? `stopped; anr train … --resume continues it from the checkpoint at step ${checkpointStep.toLocaleString("en")}`
        : "not started";
  lines.push(
    `  progress    ${stepsDone.toLocaleString("en")}${total === undefined ? "" : ` of ${total.toLocaleString("en")}`} steps: ${state}`,
  );
  const last = metrics.at(-1);
  const lastEval = [...metrics].reverse().find((m) => m.test_psnr !== undefined);
  if (last) lines.push(`  last metrics ${metricsText(last)}`);
  if (lastEval && lastEval !== last)
    lines.push(
      `  last eval   step ${String(lastEval.step)}: test PSNR ${formatNumber(Number(lastEval.test_psnr))} dB${lastEval.test_ssim !== undefined ? `, SSIM ${formatNumber(Number(lastEval.test_ssim))}` : ""}`,
    );
  const files: { name: string; bytes?: number; files?: number }[] = [];
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (e.isDirectory()) files.push({ name: `${e.name}/`, files: (await readdir(join(dir, e.name))).length });
    else files.push({ name: e.name, bytes: (await stat(join(dir, e.name))).size });
  }
  lines.push("  files");
  lines.push(
    table(
      files.map((f) => [`    ${f.name}`, f.bytes !== undefined ? bytesText(f.bytes) : `${f.files} files`]),
      [1],
    ),
  );
  console.log(lines.join("\n"));
  return done({
    path: dir,
    kind: "run",
    name: config?.name,
    config,
    steps: { done: stepsDone, total, finished, checkpoint: checkpointStep },
    last_metrics: last ?? null,
    last_eval: lastEval ?? null,
    files,
  });
}

/** Describe a run folder, a zoo model by name, or any safetensors file. */
export async function cmdInfo(given: string): Promise<Outcome> {
  const path = await resolveModel(given);
  const s = await stat(path).catch(() => null);
  if (s === null) throw new InputError(path, "no such file or folder");
  return s.isDirectory() ? runInfo(path) : fileInfo(path);
}
