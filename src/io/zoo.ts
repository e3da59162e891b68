/**
 * Node only: the model zoo, the trained models shipped in the package's `models/` folder and
 * listed in `models/zoo.json`. A zoo name (e.g. `demo-photos-anr`) stands for its model file
 * anywhere a model path is taken: the CLI's `--model`, and the library through
 * {@link resolveModel} (`loadModel(await resolveModel("demo-photos-anr"))`). The folder is found
 * from this module's own location, so names resolve from any working directory, in the
 * repository (src/io/) as in the installed package (dist/io/).
 */
import { readFile, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { InputError, zodIssueLines } from "../util/errors.js";
import { ConfigError } from "../model/config.js";

/** The package's `models/` folder: two levels above this module (src/io/ or dist/io/). */
export const ZOO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "models");

/** One model of `models/zoo.json`; what the model is (task, sizes) is read from its file. */
const ZooEntry = z.strictObject({
  /** The name `--model` takes. */
  name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
  /** The model file, relative to `models/`. */
  file: z.string(),
  /** The model card (Markdown), relative to `models/`. */
  card: z.string(),
  /** The run preset it was trained with: `anr eval --model NAME` evaluates on its data. */
  preset: z.string(),
  /** The data it was trained on, and its licence. */
  data: z.string(),
  /** The card's test figure: mean PSNR (dB) and SSIM over `split`. */
  test: z.strictObject({ split: z.string(), psnr: z.number(), ssim: z.number() }),
  /**
   * The metrics.jsonl of the run that trained it, relative to `models/`, where it is shipped: the
   * curve `anr demo` draws a fresh run of the same recipe against.
   */
  metrics: z.string().optional(),
});

/** A model of the zoo, with its file, card and metrics as absolute paths. */
export type ZooModel = z.infer<typeof ZooEntry>;

const ZooFile = z.strictObject({ models: z.array(ZooEntry) });

/** The models listed in `models/zoo.json` (`dir` another zoo folder, for tests). */
export async function zooModels(dir = ZOO_DIR): Promise<ZooModel[]> {
  const path = join(dir, "zoo.json");
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    throw new InputError(path, `cannot read the zoo list (${(e as Error).message})`);
  }
  const parsed = ZooFile.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(path, zodIssueLines(parsed.error), "zoo list");
  }
  return parsed.data.models.map((m) => ({
    ...m,
    file: join(dir, m.file),
    card: join(dir, m.card),
    ...(m.metrics !== undefined ? { metrics: join(dir, m.metrics) } : {}),
  }));
}

/** The zoo model named `name`, or undefined. */
export async function findZooModel(name: string, dir = ZOO_DIR): Promise<ZooModel | undefined> {
  return (await zooModels(dir)).find((m) => m.name === name);
}

/** Whether `text` can only be a zoo name: no folder separator and no extension. */
function looksLikeName(text: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(text);
}

/**
 * The path a model argument stands for: `nameOrPath` itself when something exists there (a model
 * file or a run folder, even one named like a zoo model), else the file of the zoo model of that
 * name. A bare name that is neither is an {@link InputError} listing the zoo's names; anything
 * that looks like a path is returned as it is, for the reader to report.
 */
export async function resolveModel(nameOrPath: string, dir = ZOO_DIR): Promise<string> {
  if (!looksLikeName(nameOrPath)) return nameOrPath;
  const exists = await stat(nameOrPath).then(
    () => true,
    () => false,
  );
  if (exists) return nameOrPath;
  const zoo = await zooModels(dir);
  const found = zoo.find((m) => m.name === nameOrPath);
  if (found) return found.file;
  throw new InputError(
    nameOrPath,
    `no such file, folder or zoo model; the zoo has ${zoo.map((m) => m.name).join(", ") || "no models"} (anr models lists them)`,
  );
}
