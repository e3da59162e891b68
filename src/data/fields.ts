/**
 * Gridded physical fields (ERA5 temperature and any other scalar or vector grid) as datasets of
 * instances: a folder of `.npy` files (one field per file), or NetCDF files read directly, one
 * instance per time step. Items come out normalised, `n = scale·(x + shift)` per channel, as the
 * reference's ERA5 dataset returns them; the channels (names, units, normalisation) travel with the
 * model config so that decoding returns physical units.
 *
 * Preprocessing follows the authors' ERA5 pipeline (`T.Resize(r)` then `T.CenterCrop(r)` on the
 * float field), with the resampling stated: antialiased bilinear by default (torchvision ≥ 0.17 and
 * PIL), or PyTorch's plain bilinear (what torchvision < 0.17 does on tensors) when asked.
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { sizeHW, type ChannelArgs } from "../model/config.js";
import { Rng } from "../util/rng.js";
import { InputError } from "../util/errors.js";
import {
  centred,
  listFiles,
  shorterSideTo,
  splitRange,
  SplitFractions,
  type ImageDataset,
  type Split,
} from "./datasets.js";
import { crop, resizeAntialiased, resizeBilinear, type HostImage } from "./image.js";
import { denormalizeField, normalizeField } from "../util/prepare.js";

// The normalisation is portable (the library's facade undoes it): util/prepare.ts.
export { denormalizeField, normalizeField };
import { openNetcdf, readNpy } from "../io/array-files.js";
import type { NetcdfFile } from "../io/netcdf.js";

const Side = z.number().int().positive();

/** How a field on disk becomes an item of the model's input size. */
export const FieldPreprocess = z
  .strictObject({
    /**
     * "resize-crop": the shorter side to `resize`, then the centre `size` crop (the authors' ERA5
     * pipeline: a 721×1440 globe becomes the central half of the longitudes); "resize": the whole
     * grid resized to `size` (keeps the globe, e.g. for sphere coordinates); "none": used as stored.
     */
    mode: z.enum(["resize-crop", "resize", "none"]).default("resize-crop"),
    /** Output side, or [height, width]. */
    size: z.union([Side, z.tuple([Side, Side])]).default(64),
    /** resize-crop only: the shorter side after resizing; default the larger of the output sides. */
    resize: Side.optional(),
    /**
     * Antialiased (area-aware, PIL/torchvision ≥ 0.17) bilinear; false: PyTorch's plain bilinear
     * (`align_corners=False`), which aliases when shrinking by more than 2×.
     */
    antialias: z.boolean().default(true),
  })
  .refine(
    (p) => p.mode !== "resize-crop" || p.resize === undefined || p.resize >= Math.max(...sizeHW(p.size)),
    {
      message: "resize must be at least the output size",
      path: ["resize"],
    },
  );
export type FieldPreprocess = z.infer<typeof FieldPreprocess>;

/**
 * Normalisation to network units, `n = scale·(x + shift)`: one (shift, scale) for all channels or
 * one per channel; or "mean-std": computed once on the training split so that the network sees
 * zero mean and unit variance (shift = σ − μ, scale = 1/(2σ), i.e. 2n − 1 = (x − μ)/σ).
 */
export const Normalize = z.union([
  z.strictObject({
    /** Added before scaling (the authors' ERA5: −260). */
    shift: z.union([z.number(), z.array(z.number()).min(1)]),
    /** Multiplies the shifted value (the authors' ERA5: 0.01). */
    scale: z.union([z.number(), z.array(z.number()).min(1)]),
  }),
  z.literal("mean-std"),
]);
export type Normalize = z.infer<typeof Normalize>;

const fieldFields = {
  /**
   * Fractions of the instance list given to train, val and test, cut in that order; or "folders":
   * root/train, root/val and root/test. The authors' ERA5 split is 0.85 / 0.10 / 0.05 in order.
   */
  split: z.union([SplitFractions, z.literal("folders")]).default({ train: 0.85, val: 0.1, test: 0.05 }),
  /**
   * "sorted": the instances in sorted order (file name, then time) are cut into consecutive blocks,
   * so test times follow training times (no leakage between neighbouring hours); "shuffle": a
   * seeded permutation before cutting.
   */
  order: z.enum(["sorted", "shuffle"]).default("sorted"),
  /** Seed of the "shuffle" order. */
  seed: z.number().int().default(0),
  /** How each field becomes an item. */
  preprocess: FieldPreprocess.prefault({}),
  /** Normalisation to network units. */
  normalize: Normalize.default("mean-std"),
  /** Replace missing values (NaN, _FillValue) by this value; without it, a field with gaps is an error. */
  fill_missing: z.number().optional(),
};

/** A folder of .npy files, one field per file: (H, W), or (C, H, W) / (H, W, C) per `layout`. */
export const NpyFieldSpec = z.strictObject({
  /** NumPy files. */
  kind: z.literal("npy"),
  /** A .npy file, or a folder searched recursively for .npy files (sorted by path, not filesystem order). */
  root: z.string().min(1),
  /** Axis order of 3-D files; 2-D files are one channel. */
  layout: z.enum(["chw", "hwc"]).default("chw"),
  /**
   * Latitudes of the first and the last row (e.g. [90, -90] for ERA5's 721 rows): evaluation then
   * also reports the cos-latitude-weighted RMSE. NetCDF files state theirs.
   */
  latitudes: z.tuple([z.number().min(-90).max(90), z.number().min(-90).max(90)]).optional(),
  /** Channel names (default c0, c1, …) and units (default none), for reports and decoded files. */
  names: z.array(z.string().min(1)).optional(),
  units: z.array(z.string()).optional(),
  ...fieldFields,
});

/** NetCDF-3 or NetCDF-4 files (e.g. ERA5 from the CDS), one instance per step of the first dimension. */
export const NetcdfFieldSpec = z.strictObject({
  /** NetCDF files. */
  kind: z.literal("netcdf"),
  /** A .nc file, or a folder searched recursively for .nc/.nc4/.cdf files (sorted by path). */
  root: z.string().min(1),
  /** Variables read as channels (e.g. ["t2m"], or ["u10", "v10"]); they must share their dimensions. */
  variables: z.array(z.string().min(1)).min(1),
  /**
   * Fixed indices of the dimensions between the first (iterated, e.g. time) and the last two (the
   * grid), by name, e.g. { pressure_level: 3 }. A 2-D variable is one instance per file.
   */
  select: z.record(z.string(), z.number().int().nonnegative()).default({}),
  /** Flip rows when the latitude coordinate increases, so that north is up (as in ERA5). */
  north_up: z.boolean().default(true),
  ...fieldFields,
});

export const FieldSpec = z.discriminatedUnion("kind", [NpyFieldSpec, NetcdfFieldSpec]);
export type FieldSpec = z.infer<typeof FieldSpec>;
export type FieldSpecInput = z.input<typeof FieldSpec>;

/** A split of a field dataset: items in network units, with their channels. */
export interface FieldDataset extends ImageDataset {
  /** Names, units and the normalisation the items carry. */
  readonly channels: ChannelArgs[];
  /**
   * Latitude (degrees) of each row of the items, when the data states it (a NetCDF latitude
   * coordinate, or `latitudes` of a .npy spec); evaluation then adds a cos-latitude-weighted RMSE.
   */
  readonly latitudes: Float64Array | null;
  /** The time of item i (ISO 8601, UTC) when the file states it in CF form, else null. */
  time(i: number): string | null;
  /**
   * Item i, and where its input was missing (NaN or _FillValue, replaced by `fill_missing`): an
   * (H, W) mask at the item's size, 1 where at least half of what made the pixel was missing (the
   * mask preprocessed like the field); null when nothing was.
   */
  getWithMissing(i: number): Promise<{ item: HostImage; missing: Float32Array | null }>;
  /** Close the files the dataset holds open. */
  close(): void;
}

/** Output [H, W] of a preprocess, given the stored grid (for "none"). */
function outputSize(p: FieldPreprocess, stored: [number, number]): [number, number] {
  return p.mode === "none" ? stored : sizeHW(p.size);
}

// ---------------------------------------------------------------------------------------------
// Sources: the list of instances and a raw reader per instance

/** One raw field in physical units, (C, H, W), before preprocessing. */
interface RawSource {
  name: string;
  ids: string[];
  /** Channel names and units as the files state them. */
  names: string[];
  units: string[];
  /** Stored grid [H, W]. */
  grid: [number, number];
  /** Latitude of each stored row as the items come out (north up after a flip), if known. */
  lat: Float64Array | null;
  /** Per instance, its time as ISO 8601 (UTC) when the file states it in CF form. */
  times?: (string | null)[];
  read(i: number): Promise<HostImage>;
  close(): void;
}

/** The files of a source: `root` itself if it is a file, else the sorted matching files under it. */
async function sourceFiles(
  root: string,
  ext: RegExp,
  what: string,
): Promise<{ files: string[]; pathOf(f: string): string }> {
  const st = await stat(root).catch(() => null);
  if (st === null)
    throw new InputError(root, `no such file or directory (expected one of the ${what} or a folder of them)`);
  return st.isFile()
    ? { files: [root.split("/").pop()!], pathOf: () => root }
    : { files: await listFiles(root, ext, what), pathOf: (f) => join(root, f) };
}

async function npySource(s: z.infer<typeof NpyFieldSpec>, root: string): Promise<RawSource> {
  const { files, pathOf } = await sourceFiles(root, /\.npy$/i, ".npy files");
  const first = await readField(pathOf(files[0]!), s.layout);
  const c = first.c;
  if (s.names && s.names.length !== c)
    throw new InputError(pathOf(files[0]!), `${c} channel(s) but names lists ${s.names.length}`);
  if (s.units && s.units.length !== c)
    throw new InputError(pathOf(files[0]!), `${c} channel(s) but units lists ${s.units.length}`);
  return {
    name: "npy",
    ids: files,
    names: s.names ?? Array.from({ length: c }, (_, k) => `c${k}`),
    units: s.units ?? Array.from({ length: c }, () => ""),
    grid: [first.h, first.w],
    lat: s.latitudes ? linspace(s.latitudes[0], s.latitudes[1], first.h) : null,
    async read(i) {
      const path = pathOf(files[i]!);
      const f = await readField(path, s.layout);
      if (f.c !== c || f.h !== first.h || f.w !== first.w)
        throw new InputError(
          path,
          `field is ${f.c}×${f.h}×${f.w}, expected ${c}×${first.h}×${first.w} like ${files[0]}`,
        );
      return f;
    },
    close: () => undefined,
  };
}

/** A .npy file as (C, H, W). */
async function readField(path: string, layout: "chw" | "hwc"): Promise<HostImage> {
  const a = await readNpy(path);
  if (a.shape.length === 2) return { c: 1, h: a.shape[0]!, w: a.shape[1]!, data: a.data };
  if (a.shape.length !== 3)
    throw new InputError(
      path,
      `a field must be 2-D (H, W) or 3-D (${layout === "chw" ? "C, H, W" : "H, W, C"}), got shape (${a.shape.join(", ")})`,
    );
  if (layout === "chw") return { c: a.shape[0]!, h: a.shape[1]!, w: a.shape[2]!, data: a.data };
  const [h, w, c] = a.shape as [number, number, number];
  const data = new Float32Array(c * h * w);
  for (let i = 0; i < h * w; i++) for (let k = 0; k < c; k++) data[k * h * w + i] = a.data[i * c + k]!;
  return { c, h, w, data };
}

async function netcdfSource(s: z.infer<typeof NetcdfFieldSpec>, root: string): Promise<RawSource> {
  const { files, pathOf } = await sourceFiles(
    root,
    /\.(nc|nc4|cdf|netcdf)$/i,
    "NetCDF files (.nc, .nc4, .cdf)",
  );
  const ids: string[] = [];
  const at: { file: number; lead: number[] }[] = [];
  const times: (string | null)[] = [];
  let grid: [number, number] | null = null;
  let units: string[] = [];
  let flip = false;
  let lat: Float64Array | null = null;
  for (const [fi, f] of files.entries()) {
    // Headers only: files are closed after the scan and reopened on demand through a small cache,
    // so that a folder of thousands of (e.g. hourly) files does not exhaust file handles.
    const nc = await openNetcdf(pathOf(f));
    try {
      const vars = s.variables.map((v) => nc.variable(v));
      const dims = vars[0]!.dims;
      for (const v of vars.slice(1)) {
        const same =
          v.dims.length === dims.length &&
          v.dims.every((d, k) => d.name === dims[k]!.name && d.size === dims[k]!.size);
        if (!same)
          throw new InputError(
            nc.path,
            `variable ${v.name} has dimensions (${v.dims.map((d) => `${d.name}=${d.size}`).join(", ")}) but ${vars[0]!.name} has (${dims.map((d) => `${d.name}=${d.size}`).join(", ")}); channels must share their grid`,
          );
      }
      if (dims.length < 2)
        throw new InputError(
          nc.path,
          `variable ${vars[0]!.name} has ${dims.length} dimension(s); a field needs at least 2`,
        );
      const g: [number, number] = [dims.at(-2)!.size, dims.at(-1)!.size];
      if (grid === null) {
        grid = g;
        units = vars.map((v) => (typeof v.attrs.units === "string" ? v.attrs.units : ""));
        lat = await latitudeCoordinate(nc, dims.at(-2)!.name);
        flip = s.north_up && lat !== null && lat.length > 1 && lat[lat.length - 1]! > lat[0]!;
        if (flip) lat!.reverse();
      } else if (g[0] !== grid[0] || g[1] !== grid[1])
        throw new InputError(
          nc.path,
          `grid is ${g[0]}×${g[1]}, expected ${grid[0]}×${grid[1]} as in ${pathOf(files[0]!)}`,
        );
      // Leading dimensions: the first is iterated, the others are fixed by `select`.
      const lead = dims.slice(0, -2);
      const fixed = lead.slice(1).map((d) => {
        const k = s.select[d.name];
        if (k === undefined)
          throw new InputError(
            nc.path,
            `variable ${vars[0]!.name} has dimension ${d.name} (size ${d.size}) besides the time and grid; choose one with select: { ${d.name}: <index> }`,
          );
        if (k >= d.size)
          throw new InputError(nc.path, `select.${d.name} = ${k} is out of range (size ${d.size})`);
        return k;
      });
      for (const name of Object.keys(s.select))
        if (!lead.slice(1).some((d) => d.name === name))
          throw new InputError(
            nc.path,
            `select names dimension ${name}, which ${vars[0]!.name} does not have besides its first and grid dimensions (${dims.map((d) => d.name).join(", ")})`,
          );
      const steps = lead.length === 0 ? 1 : lead[0]!.size;
      const stamps = lead.length === 0 ? null : await cfTimes(nc, lead[0]!.name);
      for (let t = 0; t < steps; t++) {
        at.push({ file: fi, lead: lead.length === 0 ? [] : [t, ...fixed] });
        ids.push(`${f}#${t}`);
        times.push(stamps?.[t] ?? null);
      }
    } finally {
      nc.close();
    }
  }
  if (ids.length === 0)
    throw new InputError(root, `the NetCDF files hold no time steps of ${s.variables.join(", ")}`);
  const [h, w] = grid!;
  const handles = new FileCache((fi) => openNetcdf(pathOf(files[fi]!)), 8);
  return {
    name: "netcdf",
    ids,
    names: s.variables,
    units,
    grid: grid!,
    lat,
    times,
    async read(i) {
      const { file, lead } = at[i]!;
      const data = new Float32Array(s.variables.length * h * w);
      await handles.use(file, async (nc) => {
        for (const [k, v] of s.variables.entries()) data.set(await nc.readSlice(v, lead), k * h * w);
      });
      const f: HostImage = { c: s.variables.length, h, w, data };
      return flip ? flipVertical(f) : f;
    },
    close: () => handles.closeAll(),
  };
}

/**
 * At most `max` open files, least recently used closed first; a file being read is never closed
 * (reads from the prefetching loader overlap), and concurrent first uses share one open.
 */
class FileCache {
  readonly #open = new Map<number, { file: Promise<NetcdfFile>; busy: number }>();

  constructor(
    readonly opener: (i: number) => Promise<NetcdfFile>,
    readonly max: number,
  ) {}

  async use<T>(i: number, f: (nc: NetcdfFile) => Promise<T>): Promise<T> {
    let e = this.#open.get(i);
    if (e)
      this.#open.delete(i); // re-inserted below: Map order is the recency order
    else e = { file: this.opener(i), busy: 0 };
    this.#open.set(i, e);
    e.busy++;
    try {
      return await f(await e.file);
    } finally {
      e.busy--;
      this.#evict();
    }
  }

  #evict(): void {
    for (const [i, e] of this.#open) {
      if (this.#open.size <= this.max) return;
      if (e.busy > 0) continue;
      this.#open.delete(i);
      void e.file.then(
        (nc) => nc.close(),
        () => undefined,
      );
    }
  }

  closeAll(): void {
    for (const e of this.#open.values())
      void e.file.then(
        (nc) => nc.close(),
        () => undefined,
      );
    this.#open.clear();
  }
}

const CF_UNIT_MS: Record<string, number> = { second: 1e3, minute: 6e4, hour: 3.6e6, day: 8.64e7 };

/**
 * The time of each step of `dim` as ISO 8601 (UTC), from its coordinate variable in CF form
 * ("hours since 1900-01-01 00:00:00.0", "seconds since 1970-01-01"); null when absent, or when the
 * calendar is not the standard (proleptic) Gregorian one that JavaScript dates follow.
 */
async function cfTimes(nc: NetcdfFile, dim: string): Promise<string[] | null> {
  const v = nc.variables.find((x) => x.name === dim && x.dims.length === 1);
  const units = typeof v?.attrs.units === "string" ? v.attrs.units : "";
  const m =
    /^\s*(second|minute|hour|day)s?\s+since\s+(-?\d{1,4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d*)?))?)?\s*(?:Z|UTC|[+-]00:?00)?\s*$/i.exec(
      units,
    );
  const calendar = typeof v?.attrs.calendar === "string" ? v.attrs.calendar.toLowerCase() : "standard";
  if (!v || !m || !["standard", "gregorian", "proleptic_gregorian"].includes(calendar)) return null;
  const epoch = new Date(0);
  epoch.setUTCFullYear(Number(m[2]), Number(m[3]) - 1, Number(m[4]));
  epoch.setUTCHours(Number(m[5] ?? 0), Number(m[6] ?? 0), 0, Number(m[7] ?? 0) * 1000);
  const unit = CF_UNIT_MS[m[1]!.toLowerCase()]!;
  return Array.from(await nc.readAll(v.name), (x) => new Date(epoch.getTime() + x * unit).toISOString());
}

/**
 * The latitudes of the row dimension: its coordinate variable, if that is a latitude by CF
 * (units degrees_north or standard_name latitude) or by name; null for other grids (e.g. a
 * projection's y in metres), which are then neither flipped nor latitude-weighted.
 */
async function latitudeCoordinate(nc: NetcdfFile, dim: string): Promise<Float64Array | null> {
  const v = nc.variables.find((x) => x.name === dim && x.dims.length === 1);
  if (!v) return null;
  const units = typeof v.attrs.units === "string" ? v.attrs.units.toLowerCase() : "";
  const isLat =
    /^degrees?_?n(orth)?$/.test(units) ||
    v.attrs.standard_name === "latitude" ||
    /^lat(itude)?$/i.test(v.name);
  return isLat ? nc.readAll(v.name) : null;
}

function linspace(a: number, b: number, n: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => (n === 1 ? a : a + ((b - a) * i) / (n - 1)));
}

/**
 * The latitude of each output row: the stored rows' latitudes interpolated at the output rows'
 * centres (resizing maps row centres linearly, (i + 0.5)·H/h − 0.5), after the crop's offset.
 */
function outputLatitudes(lat: Float64Array, p: FieldPreprocess, storedW: number): Float64Array {
  if (p.mode === "none") return lat;
  const H = lat.length;
  const [oh, ow] = sizeHW(p.size);
  // Only the row geometry matters: resize maps H rows to h, and the crop starts at row `top`.
  const h = p.mode === "resize" ? oh : shorterSideTo(H, storedW, p.resize ?? Math.max(oh, ow))[0];
  const top = p.mode === "resize" ? 0 : centred(h, oh);
  return Float64Array.from({ length: oh }, (_, i) => {
    const y = Math.min(H - 1, Math.max(0, ((top + i + 0.5) * H) / h - 0.5));
    const y0 = Math.floor(y);
    const y1 = Math.min(H - 1, y0 + 1);
    return lat[y0]! + (y - y0) * (lat[y1]! - lat[y0]!);
  });
}

function flipVertical(img: HostImage): HostImage {
  const { c, h, w } = img;
  const data = new Float32Array(img.data.length);
  for (let k = 0; k < c; k++)
    for (let y = 0; y < h; y++)
      data.set(img.data.subarray((k * h + y) * w, (k * h + y + 1) * w), (k * h + h - 1 - y) * w);
  return { c, h, w, data };
}

async function openSource(s: FieldSpec, split: Split | "all"): Promise<RawSource> {
  const dir = s.split === "folders" && split !== "all" ? join(s.root, split) : s.root;
  return s.kind === "npy" ? npySource(s, dir) : netcdfSource(s, dir);
}

/** Indices of one split of n instances (all of them for "folders"). */
function splitIndices(s: FieldSpec, n: number, split: Split, root: string): number[] {
  if (s.split === "folders") return [...Array(n).keys()];
  const order = s.order === "shuffle" ? new Rng(s.seed).permutation(n) : [...Array(n).keys()];
  const [lo, hi] = splitRange(n, s.split, split, root, "fields");
  return order.slice(lo, hi);
}

// ---------------------------------------------------------------------------------------------
// Preprocessing

/** Resize + centre crop as the authors' ERA5 pipeline (torchvision's output-size and offset rules). */
export function preprocessField(f: HostImage, p: FieldPreprocess): HostImage {
  if (p.mode === "none") return f;
  const resize = (img: HostImage, h: number, w: number) =>
    img.h === h && img.w === w ? img : p.antialias ? resizeAntialiased(img, h, w) : resizeBilinear(img, h, w);
  const [oh, ow] = sizeHW(p.size);
  if (p.mode === "resize") return resize(f, oh, ow);
  const [h, w] = shorterSideTo(f.h, f.w, p.resize ?? Math.max(oh, ow));
  if (oh > h || ow > w) throw new Error(`a ${oh}×${ow} crop does not fit the ${h}×${w} resized field`);
  return crop(resize(f, h, w), centred(h, oh), centred(w, ow), oh, ow);
}

// ---------------------------------------------------------------------------------------------
// Normalisation

/** The channels of a dataset with a given normalisation (shift/scale broadcast over channels). */
function withNormalization(
  names: string[],
  units: string[],
  shift: number[],
  scale: number[],
  source: string,
): ChannelArgs[] {
  const pick = (a: number[], k: number, what: string) => {
    if (a.length !== 1 && a.length !== names.length)
      throw new InputError(
        source,
        `normalize.${what} lists ${a.length} values for ${names.length} channel(s)`,
      );
    return a.length === 1 ? a[0]! : a[k]!;
  };
  return names.map((name, k) => {
    const sc = pick(scale, k, "scale");
    if (sc === 0 || !Number.isFinite(sc))
      throw new InputError(source, `normalize.scale must be finite and non-zero`);
    return { name, units: units[k] ?? "", shift: pick(shift, k, "shift"), scale: sc };
  });
}

/**
 * The dataset's channels: names and units from the files, normalisation from the spec, or for
 * "mean-std" computed once over the preprocessed training split (float64 sums, deterministic).
 */
export async function fieldChannels(
  spec: FieldSpecInput,
  onProgress?: (done: number, total: number) => void,
): Promise<ChannelArgs[]> {
  const s = FieldSpec.parse(spec);
  if (s.normalize !== "mean-std") {
    const src = await openSource(s, s.split === "folders" ? "train" : "all");
    src.close();
    const arr = (v: number | number[]) => (typeof v === "number" ? [v] : v);
    return withNormalization(src.names, src.units, arr(s.normalize.shift), arr(s.normalize.scale), s.root);
  }
  const ds = await openFields(s, "train", null);
  const c = ds.channels.length;
  const sum = new Float64Array(c);
  const sq = new Float64Array(c);
  let count = 0;
  try {
    for (let i = 0; i < ds.length; i++) {
      const f = await ds.get(i);
      const n = f.h * f.w;
      for (let k = 0; k < c; k++)
        for (let j = k * n; j < (k + 1) * n; j++) {
          sum[k]! += f.data[j]!;
          sq[k]! += f.data[j]! ** 2;
        }
      count += n;
      onProgress?.(i + 1, ds.length);
    }
  } finally {
    ds.close();
  }
  const mean = [...sum].map((v) => v / count);
  const std = [...sq].map((v, k) => Math.sqrt(Math.max(0, v / count - mean[k]! ** 2)));
  return ds.channels.map((ch, k) => {
    const sd = std[k]! > 0 ? std[k]! : 1;
    return { ...ch, shift: sd - mean[k]!, scale: 1 / (2 * sd) };
  });
}

// ---------------------------------------------------------------------------------------------
// The dataset

/**
 * Open one split. `channels` (from the model config) gives the normalisation of the items; null
 * returns physical units (channels then carry shift 0, scale 1). Errors name the file and field.
 */
export async function openFieldDataset(
  spec: FieldSpecInput,
  split: Split,
  channels: ChannelArgs[] | null,
): Promise<FieldDataset> {
  return openFields(FieldSpec.parse(spec), split, channels);
}

async function openFields(s: FieldSpec, split: Split, channels: ChannelArgs[] | null): Promise<FieldDataset> {
  const src = await openSource(s, split);
  try {
    const idx = splitIndices(s, src.ids.length, split, s.root);
    const chans = channels ?? withNormalization(src.names, src.units, [0], [1], s.root);
    if (chans.length !== src.names.length)
      throw new InputError(
        s.root,
        `the data has ${src.names.length} channel(s) (${src.names.join(", ")}) but the model has ${chans.length} (${chans.map((c) => c.name).join(", ")})`,
      );
    const size = outputSize(s.preprocess, src.grid);
    const lat =
      src.lat && src.lat.length === src.grid[0] ? outputLatitudes(src.lat, s.preprocess, src.grid[1]) : null;
    return new Fields(`${s.kind}:${split}`, size, idx, src, s, chans, lat);
  } catch (e) {
    src.close();
    throw e;
  }
}

class Fields implements FieldDataset {
  readonly skipped = 0;
  readonly skippedIds: readonly string[] = [];

  constructor(
    readonly name: string,
    readonly size: [number, number],
    readonly idx: number[],
    readonly src: RawSource,
    readonly spec: FieldSpec,
    readonly channels: ChannelArgs[],
    readonly latitudes: Float64Array | null,
  ) {}

  get length(): number {
    return this.idx.length;
  }

  id(i: number): string {
    this.#check(i);
    return this.src.ids[this.idx[i]!]!;
  }

  time(i: number): string | null {
    this.#check(i);
    return this.src.times?.[this.idx[i]!] ?? null;
  }

  async get(i: number, _rng?: Rng): Promise<HostImage> {
    return (await this.#read(i, false)).item;
  }

  async getWithMissing(i: number): Promise<{ item: HostImage; missing: Float32Array | null }> {
    return this.#read(i, true);
  }

  async #read(i: number, withMask: boolean): Promise<{ item: HostImage; missing: Float32Array | null }> {
    this.#check(i);
    const raw = await this.src.read(this.idx[i]!);
    const hw = raw.h * raw.w;
    const mask = withMask && this.spec.fill_missing !== undefined ? new Float32Array(hw) : null;
    let missing = 0;
    for (let k = 0; k < raw.data.length; k++)
      if (!Number.isFinite(raw.data[k]!)) {
        if (this.spec.fill_missing === undefined) missing++;
        else raw.data[k] = this.spec.fill_missing;
        if (mask) mask[k % hw] = 1;
      }
    if (missing > 0)
      throw new InputError(
        this.spec.root,
        `${this.id(i)} has ${missing} missing value(s) (NaN or _FillValue) of ${raw.data.length}; set fill_missing or choose a complete variable`,
      );
    const item = normalizeField(preprocessField(raw, this.spec.preprocess), this.channels);
    if (!mask?.includes(1)) return { item, missing: null };
    const m = preprocessField({ c: 1, h: raw.h, w: raw.w, data: mask }, this.spec.preprocess).data;
    return { item, missing: m.map((v) => (v >= 0.5 ? 1 : 0)) };
  }

  close(): void {
    this.src.close();
  }

  #check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.length)
      throw new RangeError(`${this.name}: index ${i} out of range [0, ${this.length})`);
  }
}
