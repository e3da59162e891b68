/**
 * Posed multi-view objects in the learnit ShapeNet layout (Learned Init, TransINR, IPC and ANR):
 * `<root>/<category>_splits.json` lists object ids per split, and each object folder holds a Blender
 * style `transforms.json` with RGBA renders. Every object of the split is checked when the dataset is
 * opened (folders, JSON, image files by stat) so that a broken download is reported before training,
 * and broken objects are skipped rather than failing hours in.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import sharp from "sharp";
import { z } from "zod";
import { expectDirectory, type Split } from "./datasets.js";
import type { HostImage } from "./image.js";
import type { Rng } from "../util/rng.js";
import { ConfigError } from "../model/config.js";
import { InputError, zodIssueLines } from "../util/errors.js";
import { mapLimited } from "../util/pool.js";

/** A learnit ShapeNet category (e.g. cars, chairs, lamps). */
export const LearnitSpec = z
  .strictObject({
    /** learnit ShapeNet. */
    kind: z.literal("learnit"),
    /** Folder holding `<category>_splits.json` and `<category>/<object id>/transforms.json`. */
    root: z.string().min(1),
    /** Category name as used in the file names, e.g. "cars". */
    category: z.string().min(1),
    /**
     * Resize every view to size×size (sharp's Lanczos-3, alpha premultiplied) and scale the focal
     * length with it; default: the views' own size.
     */
    size: z.number().int().positive().optional(),
    /** Near bound of the rendering interval along the camera axis. */
    near: z.number().nonnegative().default(2),
    /** Far bound of the rendering interval along the camera axis. */
    far: z.number().positive().default(6),
  })
  .refine((s) => s.far > s.near, { message: "far must exceed near", path: ["far"] });
export type LearnitSpec = z.infer<typeof LearnitSpec>;

/** One rendered view with its camera. */
export interface PosedView {
  /** 3×H×W in [0, 1], RGBA composited on white: rgb·a + (1 − a). */
  img: HostImage;
  /** The top 3×4 of transform_matrix (camera-to-world, x right, y up, looking along −z), row-major. */
  pose: Float32Array;
  /** [f_x, f_y] in pixels at the output size. */
  focal: [number, number];
}

/** One object: its views, decoded on demand. */
export interface MultiViewObject {
  /** The object id from the splits file (its folder name). */
  id: string;
  /** Number of frames in its transforms.json. */
  nViews: number;
  /** View i (frame order of transforms.json); errors start with the image path. */
  view(i: number): Promise<PosedView>;
}

/** The usable objects of one split. */
export interface MultiViewDataset {
  /** "learnit:<category>:<split>". */
  name: string;
  /** Number of usable objects. */
  length: number;
  /** Output size [H, W] of every view. */
  size: [number, number];
  /** Near bound of the rendering interval. */
  near: number;
  /** Far bound of the rendering interval. */
  far: number;
  /** Usable object i, in splits-file order. */
  object(i: number): MultiViewObject;
  /** Objects skipped at open: missing folder/transforms.json/images, unreadable json, zero frames. */
  broken: { id: string; reason: string }[];
}

/** Validate a learnit spec, filling defaults; the error lists every problem with its field path. */
function parseLearnitSpec(raw: unknown): LearnitSpec {
  const r = LearnitSpec.safeParse(raw);
  if (!r.success) {
    throw new ConfigError("learnit", zodIssueLines(r.error), "dataset spec");
  }
  return r.data;
}

const Transforms = z.object({
  camera_angle_x: z.number().positive().lt(Math.PI),
  frames: z.array(
    z.object({
      file_path: z.string().min(1),
      transform_matrix: z.array(z.array(z.number()).length(4)).length(4),
    }),
  ),
});

/** What opening keeps of a usable object; images are read only when a view is asked for. */
interface ObjectEntry {
  id: string;
  cameraAngleX: number;
  files: string[];
  poses: Float32Array[];
}

/** Objects checked at once: enough to hide filesystem latency, few enough to stay under fd limits. */
const OPEN_CONCURRENCY = 16;

/**
 * Open one split. The root, the splits file and its key are required to be right (else an error
 * naming the path); bad objects are collected in `broken`, reported once on stderr and skipped; a
 * split left with no usable object is an error.
 */
export async function openLearnitDataset(
  spec: LearnitSpec | z.input<typeof LearnitSpec>,
  split: Split,
): Promise<MultiViewDataset> {
  const s = parseLearnitSpec(spec);
  const name = `learnit:${s.category}:${split}`;
  const layout = `${s.category}_splits.json and ${s.category}/<object id>/transforms.json`;
  await expectDirectory(s.root, `a learnit ShapeNet folder with ${layout}`);
  const ids = await readSplit(join(s.root, `${s.category}_splits.json`), split);
  const catDir = join(s.root, s.category);
  await expectDirectory(catDir, `one folder per object id, each with transforms.json and r_*.png`);

  const results = await mapLimited(ids, OPEN_CONCURRENCY, (id) => checkObject(catDir, id));
  const objects = results.filter((r): r is ObjectEntry => "files" in r);
  const broken = results.filter((r): r is { id: string; reason: string } => "reason" in r);

  if (objects.length === 0) {
    const first = broken[0];
    throw new InputError(
      catDir,
      `none of the ${ids.length} objects of the ${split} split is usable` +
        (first ? ` (first: ${first.id}: ${first.reason})` : ""),
    );
  }
  if (broken.length > 0) {
    const shown = broken.slice(0, 3).map((b) => `${b.id} (${b.reason})`);
    const more = broken.length > 3 ? `, … ${broken.length - 3} more` : "";
    process.stderr.write(
      `${name}: skipping ${broken.length} of ${ids.length} broken objects: ${shown.join(", ")}${more}\n`,
    );
  }

  // Without resizing, the dataset size is that of the first usable view; every view must match it.
  let size: [number, number];
  if (s.size !== undefined) size = [s.size, s.size];
  else {
    const d = await headerSize(objects[0]!.files[0]!);
    size = [d.h, d.w];
  }
  const sizeSource = objects[0]!.files[0]!;

  // Per object, the header size of view 0: the reference every other view of it is checked against.
  const refDims = new Map<number, Promise<{ w: number; h: number }>>();
  const reference = (i: number): Promise<{ w: number; h: number }> => {
    let p = refDims.get(i);
    if (p === undefined) {
      p = headerSize(objects[i]!.files[0]!);
      refDims.set(i, p);
      // A failed read is not cached: the error is thrown to the caller, and a retry reads again.
      p.catch(() => refDims.delete(i));
    }
    return p;
  };

  const object = (i: number): MultiViewObject => {
    if (!Number.isInteger(i) || i < 0 || i >= objects.length) {
      throw new RangeError(`${name}: object index ${i} out of range [0, ${objects.length})`);
    }
    const o = objects[i]!;
    return {
      id: o.id,
      nViews: o.files.length,
      view: async (v: number): Promise<PosedView> => {
        if (!Number.isInteger(v) || v < 0 || v >= o.files.length) {
          throw new RangeError(`${name}: object ${o.id}: view ${v} out of range [0, ${o.files.length})`);
        }
        const path = o.files[v]!;
        const ref = await reference(i);
        const own = v === 0 ? ref : await headerSize(path);
        if (own.w !== ref.w || own.h !== ref.h) {
          throw new InputError(
            path,
            `${own.w}×${own.h}, but view 0 of object ${o.id} (${o.files[0]}) is ${ref.w}×${ref.h}; all views of an object must have the same size`,
          );
        }
        if (s.size === undefined && (own.h !== size[0] || own.w !== size[1])) {
          throw new InputError(
            path,
            `${own.w}×${own.h}, but the dataset's views are ${size[1]}×${size[0]} (from ${sizeSource}); set size to resize every view`,
          );
        }
        return loadView(o, v, own, s.size);
      },
    };
  };

  return { name, length: objects.length, size, near: s.near, far: s.far, object, broken };
}

/** View v of an object: decoded on white, its pose, and its focal at the output size. */
async function loadView(
  o: ObjectEntry,
  v: number,
  own: { w: number; h: number },
  size: number | undefined,
): Promise<PosedView> {
  const img = await decodeComposited(o.files[v]!, size);
  const f = (0.5 * own.w) / Math.tan(0.5 * o.cameraAngleX);
  // Square pixels: the original focal serves both axes, each then scaled by its own resize factor.
  const focal: [number, number] = size === undefined ? [f, f] : [(f * size) / own.w, (f * size) / own.h];
  return { img, pose: o.poses[v]!.slice(), focal };
}

/**
 * One object folder (transforms.json + r_*.png) outside any dataset, e.g. the support views of
 * `anr render`; views resized to size×size when given.
 */
export async function openLearnitObject(dir: string, size?: number): Promise<MultiViewObject> {
  const entry = await checkObject(dirname(dir), basename(dir));
  if ("reason" in entry) throw new InputError(dir, entry.reason);
  return {
    id: entry.id,
    nViews: entry.files.length,
    view: async (v: number) => {
      if (!Number.isInteger(v) || v < 0 || v >= entry.files.length)
        throw new RangeError(`${dir}: view ${v} out of range [0, ${entry.files.length})`);
      return loadView(entry, v, await headerSize(entry.files[v]!), size);
    },
  };
}

/** The object ids of `split` from the splits file, which must exist, parse and have that key. */
async function readSplit(path: string, split: Split): Promise<string[]> {
  const expected = `expected {"train": [object ids], "test": [object ids]}, optionally "val"`;
  const text = await readFile(path, "utf8").catch(() => {
    throw new InputError(path, `cannot read the splits file (${expected})`);
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InputError(path, `invalid JSON (${(e as Error).message}; ${expected})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new InputError(path, `not a JSON object (${expected})`);
  }
  const table = json as Record<string, unknown>;
  if (!(split in table)) {
    throw new InputError(
      path,
      `no "${split}" split (has ${Object.keys(table).join(", ") || "no keys"}; ${expected})`,
    );
  }
  const ids = table[split];
  if (!Array.isArray(ids) || !ids.every((x): x is string => typeof x === "string" && x.length > 0)) {
    throw new InputError(path, `"${split}" is not a list of object id strings (${expected})`);
  }
  if (ids.length === 0) throw new InputError(path, `the "${split}" split lists no objects`);
  return ids;
}

/** Check one object without decoding any image: its entry, or why it is broken. */
async function checkObject(
  catDir: string,
  id: string,
): Promise<ObjectEntry | { id: string; reason: string }> {
  const dir = join(catDir, id);
  const bad = (reason: string) => ({ id, reason });
  const st = await stat(dir).catch(() => null);
  if (st === null || !st.isDirectory()) return bad(`no folder ${dir}`);
  const tPath = join(dir, "transforms.json");
  let text: string;
  try {
    text = await readFile(tPath, "utf8");
  } catch {
    return bad(`no readable ${tPath}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return bad(`${tPath}: invalid JSON (${(e as Error).message})`);
  }
  const t = Transforms.safeParse(raw);
  if (!t.success) {
    return bad(`${tPath}: invalid transforms: ${zodIssueLines(t.error).join("; ")}`);
  }
  if (t.data.frames.length === 0) return bad(`${tPath}: no frames`);
  const files = t.data.frames.map((f) => imagePath(dir, f.file_path));
  const missing = await missingFiles(files);
  if (missing.length > 0) {
    return bad(`${missing.length} of ${files.length} images missing (first: ${missing[0]})`);
  }
  const poses = t.data.frames.map((f) => Float32Array.from(f.transform_matrix.slice(0, 3).flat()));
  return { id, cameraAngleX: t.data.camera_angle_x, files, poses };
}

const IMAGE_EXT = /^\.(png|jpe?g|webp)$/i;

/** file_path is relative to the object folder and often lacks its ".png" (Blender's convention). */
function imagePath(dir: string, filePath: string): string {
  const p = join(dir, filePath);
  return IMAGE_EXT.test(extname(p)) ? p : `${p}.png`;
}

/** The files that are not there; one readdir per folder rather than one stat per file. */
async function missingFiles(files: string[]): Promise<string[]> {
  const listings = new Map<string, Promise<Set<string>>>();
  const missing: string[] = [];
  for (const f of files) {
    const d = dirname(f);
    let l = listings.get(d);
    if (l === undefined) {
      l = readdir(d, { withFileTypes: true }).then(
        (es) => new Set(es.filter((e) => e.isFile() || e.isSymbolicLink()).map((e) => e.name)),
        () => new Set<string>(),
      );
      listings.set(d, l);
    }
    if (!(await l).has(f.slice(d.length + 1))) missing.push(f);
  }
  return missing;
}

/** Width and height from the image header; errors start with the path. */
async function headerSize(path: string): Promise<{ w: number; h: number }> {
  try {
    const { width, height } = await sharp(path).metadata();
    if (!width || !height) throw new Error("no image dimensions in the header");
    return { w: width, h: height };
  } catch (e) {
    throw new InputError(path, `cannot read image (${(e as Error).message})`);
  }
}

/**
 * Decode as RGBA (opaque when there is no alpha), optionally resized to size×size, and composite on
 * white in float: a transparent pixel becomes exactly 1 and an opaque one keeps exactly its value/255.
 * Compositing after sharp's premultiplied resize equals resizing the composited image, up to rounding.
 */
async function decodeComposited(path: string, size: number | undefined): Promise<HostImage> {
  let out: { data: Buffer; info: sharp.OutputInfo };
  try {
    const img = sharp(path);
    if (size !== undefined) img.resize(size, size, { fit: "fill", fastShrinkOnLoad: false });
    out = await img.toColourspace("srgb").ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    if (out.info.channels !== 4)
      throw new Error(`expected 4 channels after decoding, got ${out.info.channels}`);
  } catch (e) {
    throw new InputError(path, `cannot read image (${(e as Error).message})`);
  }
  const { width: w, height: h } = out.info;
  const n = w * h;
  const bytes = out.data;
  const data = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    const a = bytes[i * 4 + 3]! / 255;
    for (let c = 0; c < 3; c++) data[c * n + i] = (bytes[i * 4 + c]! / 255) * a + (1 - a);
  }
  return { c: 3, h, w, data };
}

/**
 * Draw support and query view indices for one object: distinct views from [lo, hi) (ANR: views 0–24,
 * 3 support + 1 query; TransINR: 1 + 1). Default range: all views. Exactly nSupport + nQuery draws
 * from `rng` (a partial Fisher–Yates shuffle), so the sequence is fixed by the seed.
 */
export function sampleViews(
  nViews: number,
  rng: Rng,
  opts: { nSupport: number; nQuery: number; range?: [number, number] },
): { support: number[]; query: number[] } {
  const [lo, hi] = opts.range ?? [0, nViews];
  const { nSupport, nQuery } = opts;
  if (![nViews, lo, hi, nSupport, nQuery].every(Number.isInteger) || nSupport < 0 || nQuery < 0) {
    throw new RangeError(`sampleViews: integer counts and range expected`);
  }
  if (lo < 0 || hi > nViews || lo >= hi) {
    throw new RangeError(`sampleViews: range [${lo}, ${hi}) is not inside the object's ${nViews} views`);
  }
  const k = nSupport + nQuery;
  const m = hi - lo;
  if (k > m) {
    throw new RangeError(
      `sampleViews: ${nSupport} support + ${nQuery} query views need ${k} distinct views, range [${lo}, ${hi}) has ${m}`,
    );
  }
  const pool = Array.from({ length: m }, (_, j) => lo + j);
  for (let j = 0; j < k; j++) {
    const r = j + rng.int(m - j);
    [pool[j], pool[r]] = [pool[r]!, pool[j]!];
  }
  return { support: pool.slice(0, nSupport), query: pool.slice(nSupport, k) };
}

/**
 * Stack views of several objects into arrays: imgs (B, n, 3, H, W), poses (B, n, 3, 4), focals
 * (B, n, 2) as flat Float32Arrays + shapes; views of one object are contiguous. All objects need the
 * same number of views and all views the same size.
 */
export function stackViews(views: PosedView[][]): {
  imgs: Float32Array;
  poses: Float32Array;
  focals: Float32Array;
  shape: { b: number; n: number; h: number; w: number };
} {
  const b = views.length;
  const first = views[0]?.[0];
  if (first === undefined)
    throw new Error("stackViews: no views (expected at least one object with one view)");
  const n = views[0]!.length;
  const { h, w } = first.img;
  const px = 3 * h * w;
  const imgs = new Float32Array(b * n * px);
  const poses = new Float32Array(b * n * 12);
  const focals = new Float32Array(b * n * 2);
  views.forEach((obj, i) => {
    if (obj.length !== n)
      throw new Error(`stackViews: object ${i} has ${obj.length} views, object 0 has ${n}`);
    obj.forEach((v, j) => {
      if (v.img.c !== 3 || v.img.h !== h || v.img.w !== w) {
        throw new Error(
          `stackViews: object ${i} view ${j} is ${v.img.c}×${v.img.h}×${v.img.w}, expected 3×${h}×${w}`,
        );
      }
      if (v.pose.length !== 12)
        throw new Error(`stackViews: object ${i} view ${j} pose has ${v.pose.length} values, expected 12`);
      const k = i * n + j;
      imgs.set(v.img.data, k * px);
      poses.set(v.pose, k * 12);
      focals.set(v.focal, k * 2);
    });
  });
  return { imgs, poses, focals, shape: { b, n, h, w } };
}
