/** `anr init`: a freshly initialised model from a model config. */
import { mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { readConfigFile } from "../io/config-file.js";
import { saveModel } from "../io/files.js";
import { representationSize } from "../io/tokens.js";
import { parseHyperNetworkConfig } from "../model/config.js";
import { countParams, initHostParams } from "../model/params.js";
import { checkWritable, defaultOut, done, withKeyHints, type Outcome } from "./common.js";

/** `anr init`'s options. */
export interface InitOptions {
  out?: string;
  seed: number;
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

/** Initialise a model from `config` into `--out` (default out/init-<config>/model.safetensors). */
export async function cmdInit(config: string, values: InitOptions): Promise<Outcome> {
  const out = values.out ?? join(defaultOut("init", config), "model.safetensors");
  await checkWritable(out, { flag: "--out", file: true });
  const raw = await modelConfigOf(config);
  const cfg =
    typeof raw === "object" && raw !== null
      ? withKeyHints(raw as Record<string, unknown>, (r) => parseHyperNetworkConfig(r, config))
      : parseHyperNetworkConfig(raw, config);
  await mkdir(dirname(resolve(out)), { recursive: true });
  await saveModel(out, cfg, initHostParams(cfg, values.seed));
  const parameters = countParams(cfg);
  console.log(`wrote ${out}: ${cfg.hyponet.name} model, ${parameters.toLocaleString("en")} parameters`);
  return done({
    out,
    hyponet: cfg.hyponet.name,
    parameters,
    floats_per_instance: representationSize(cfg),
    seed: values.seed,
  });
}
