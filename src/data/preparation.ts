/**
 * The data preparation a model was trained with, recorded in its model file beside the config, so
 * that `anr encode` and `anr eval` prepare new inputs the same way without being told: for images
 * the dataset's protocol (resize/crop mode, size, resize, the SVG background), for fields the
 * variables, `select`, the north-up flip, latitudes, preprocessing and `fill_missing` (the
 * normalisation is in the config's channels already). Only how one input becomes an item is
 * recorded: where the data lives and how it is split are not the model's business.
 */
import { z } from "zod";
import { sizeHW } from "../model/config.js";
import { InputError, zodIssueLines } from "../util/errors.js";
import { evalTransform, PREPARATION_METADATA_KEY, rawPreparation } from "../util/prepare.js";
import { DatasetSpec, type Transform } from "./datasets.js";
import { FieldSpec } from "./fields.js";

// The key and the eval transform are portable (the library's facade reads them): util/prepare.ts.
export { PREPARATION_METADATA_KEY, evalTransform };

/** Fields of a dataset spec that say where the data is and how it is split: not recorded. */
const NOT_PREPARATION = [
  "root",
  "split",
  "seed",
  "order",
  "normalize",
  "train_count",
  "test_count",
  "val_count",
] as const;

/**
 * How one input became an item in training. `data` is the run's data spec without the fields of
 * `NOT_PREPARATION`; with a `root` added it is a valid spec again.
 */
export type Preparation =
  | { task: "image"; data: Record<string, unknown> & { kind: DatasetSpec["kind"] } }
  | { task: "field"; data: Record<string, unknown> & { kind: FieldSpec["kind"] } };

/** A run as far as its preparation goes (a resolved run config fits). */
export type PreparedRun =
  { task: "image"; data: DatasetSpec } | { task: "field"; data: FieldSpec } | { task: "nerf"; data: unknown };

/** The preparation of a run; null for view synthesis (its views are prepared by the model config). */
export function preparationRecord(run: PreparedRun): Preparation | null {
  if (run.task === "nerf") return null;
  const data: Record<string, unknown> = { ...run.data };
  for (const k of NOT_PREPARATION) delete data[k];
  return { task: run.task, data } as Preparation;
}

/**
 * The metadata entry to save with a run's model files: `{ "anr.data": JSON }`, or nothing for a
 * view-synthesis run.
 */
export function preparationOf(run: PreparedRun): Record<string, string> {
  const p = preparationRecord(run);
  return p ? { [PREPARATION_METADATA_KEY]: JSON.stringify(p) } : {};
}

/**
 * A full data spec from a preparation and the fields it leaves out (`root`, unless the kind has a
 * default: Twemoji). Throws an
 * InputError naming `source` if the record is not a valid preparation.
 */
export function specWith(
  p: Preparation,
  rest: Record<string, unknown>,
  source: string,
): DatasetSpec | FieldSpec {
  const r = (p.task === "image" ? DatasetSpec : FieldSpec).safeParse({ ...p.data, ...rest });
  if (!r.success)
    throw new InputError(
      source,
      `metadata "${PREPARATION_METADATA_KEY}" is not a valid ${p.task} preparation: ${zodIssueLines(r.error).join("; ")}`,
    );
  return r.data;
}

const Record_ = z.strictObject({
  task: z.enum(["image", "field"]),
  data: z.looseObject({ kind: z.string() }),
});

/**
 * The preparation recorded in a model file's metadata (`source` names it in errors): its
 * `anr.data` entry, or for a training checkpoint the run config it carries; null when the file
 * records none (models from before anr recorded it, `anr init`, view synthesis).
 */
export function readPreparation(metadata: Record<string, string>, source: string): Preparation | null {
  const raw = rawPreparation(metadata, source);
  if (raw === null) return null;
  let p: Preparation | null;
  if (raw.from === "data") {
    const r = Record_.safeParse(raw.record);
    if (!r.success)
      throw new InputError(
        source,
        `metadata "${PREPARATION_METADATA_KEY}" should be { task: "image" | "field", data: { kind, … } }`,
      );
    p = r.data as Preparation;
  } else {
    const run = raw.record as { task?: unknown; data?: unknown } | null | undefined;
    if (run?.task !== "image" && run?.task !== "field") return null;
    p = preparationRecord(run as PreparedRun);
  }
  // Validate now, so that a damaged record is reported as such rather than at first use.
  if (p) specWith(p, { root: "." }, source);
  return p;
}

/** How a transform makes an item, in words. */
export function describeTransform(t: Transform): string {
  return t.mode === "crop-resize"
    ? `centre square${t.crop ? ` ${t.crop}×${t.crop}` : ""}, resized to ${t.size}×${t.size}`
    : `shorter side to ${t.resize ?? t.size}, centre ${t.size}×${t.size}`;
}

/** One line saying how inputs are prepared, for the commands to print. */
export function describePreparation(spec: DatasetSpec | FieldSpec): string {
  if (spec.kind === "npy" || spec.kind === "netcdf") {
    const p = spec.preprocess;
    const [h, w] = sizeHW(p.size);
    const parts = [
      p.mode === "none"
        ? "as stored"
        : p.mode === "resize"
          ? `resized to ${h}×${w}`
          : `shorter side to ${p.resize ?? Math.max(h, w)}, centre ${h}×${w}`,
      p.mode === "none" ? "" : p.antialias ? "antialiased" : "plain bilinear",
      spec.kind === "netcdf" ? `variables ${spec.variables.join(", ")}` : "",
      spec.kind === "netcdf" && Object.keys(spec.select).length
        ? `select ${Object.entries(spec.select)
            .map(([k, v]) => `${k}=${v}`)
            .join(",")}`
        : "",
      spec.kind === "netcdf" && !spec.north_up ? "rows as stored (north_up false)" : "",
      spec.fill_missing === undefined ? "no fill_missing" : `fill_missing ${spec.fill_missing}`,
    ];
    return parts.filter(Boolean).join(", ");
  }
  const how = describeTransform(evalTransform(spec));
  return spec.kind === "svg" || spec.kind === "twemoji"
    ? `${how}; SVG files rendered at ${spec.size}×${spec.size} on ${spec.background}`
    : how;
}
