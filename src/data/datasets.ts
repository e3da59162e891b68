/**
 * Image datasets for training and evaluation: a validated spec (folder, CelebA, Imagenette, LSUN, IDX,
 * SVG folders and Twemoji)
 * opened into an indexable `ImageDataset` of equally sized RGB items. File lists are sorted by
 * relative path before any seeded shuffle so that splits agree across machines and filesystems;
 * every problem with the data on disk is reported when the dataset is opened, before training starts.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import sharp from "sharp";
import { z } from "zod";
import { Rng } from "../util/rng.js";
import { InputError, zodIssueLines } from "../util/errors.js";
import { mapLimited } from "../util/pool.js";
import { centred, shorterSideTo, type Transform } from "../util/prepare.js";
import { ConfigError } from "../model/config.js";
import { flipHorizontal, fromInterleaved, resizeBilinear, type HostImage } from "./image.js";
import { readIdx } from "../io/array-files.js";
import {
  checkLibrsvg,
  hashSplit,
  LIBRSVG_VERSION,
  renderSvgFiles,
  SVG_FILE,
  twemojiRoot,
  twemojiSplitKey,
} from "./svg.js";

// The crop geometry is shared with the library's array path; importers find it here as before.
export { centred, shorterSideTo, type Transform };

/** An indexable set of preprocessed, equally sized RGB images. */
export interface ImageDataset {
  /** Kind and split, e.g. "celeba:train". */
  readonly name: string;
  /** Number of items. */
  readonly length: number;
  /** Output size [H, W] of every item. */
  readonly size: [number, number];
  /**
   * Item i, preprocessed. With `rng`: the training transform (random crops/flips where the spec has
   * them), drawing from `rng`; without: the deterministic evaluation transform.
   */
  get(i: number, rng?: Rng): Promise<HostImage>;
  /** A stable identifier of item i: its path relative to the root, or "<idx file>#<index>". */
  id(i: number): string;
  /** Number of distinct unreadable items passed over (only with `skipCorrupt`). */
  readonly skipped: number;
  /** Identifiers of the unreadable items passed over, in the order they were found. */
  readonly skippedIds: readonly string[];
}

const Side = z.number().int().positive();
const Fraction = z.number().min(0).max(1);

/** How a file of a folder-like dataset becomes an item. */
export const Preprocess = z
  .strictObject({
    /**
     * "resize-crop": shorter side to `resize`, centre crop `size`×`size`; "random-crop": the same, but
     * training items are cropped at a random position; "crop-resize": the centred square of the shorter
     * side, resized to `size`.
     */
    mode: z.enum(["resize-crop", "crop-resize", "random-crop"]).default("resize-crop"),
    /** Output side in pixels (items are square). */
    size: Side.default(128),
    /** Shorter side after resizing, for resize-crop and random-crop; at least `size`; default `size`. */
    resize: Side.optional(),
    /** Mirror training items left–right with probability 0.5. */
    flip: z.boolean().default(false),
  })
  .refine((p) => p.resize === undefined || p.resize >= p.size, {
    message: "resize must be at least size",
    path: ["resize"],
  });
export type Preprocess = z.infer<typeof Preprocess>;

/** Fractions of an item list given to train, val and test, cut in that order; they sum to 1. */
export const SplitFractions = z
  .strictObject({
    /** Fraction for training. */
    train: Fraction,
    /** Fraction for validation. */
    val: Fraction,
    /** Fraction for testing. */
    test: Fraction,
  })
  .refine((f) => Math.abs(f.train + f.val + f.test - 1) < 1e-9, { message: "fractions must sum to 1" });
export type SplitFractions = z.infer<typeof SplitFractions>;

const folderFields = {
  /** Directory searched recursively for .jpg/.jpeg/.png/.webp files (extensions in any case). */
  root: z.string().min(1),
  /**
   * Fractions of the shuffled file list given to train, val and test, cut in that order (they sum to
   * 1); or "folders": the splits are the subfolders root/train, root/val and root/test, unshuffled.
   */
  split: z.union([SplitFractions, z.literal("folders")]).default({ train: 0.9, val: 0.05, test: 0.05 }),
  /** Seed of the shuffle of the sorted file list before it is cut into splits. */
  seed: z.number().int().default(0),
  /** How each file becomes an item. */
  preprocess: Preprocess.prefault({}),
};

/** Any tree of images, split by seeded shuffle. */
export const FolderSpec = z.strictObject({
  /** A plain folder of images. */
  kind: z.literal("folder"),
  ...folderFields,
});

/** An LSUN category exported to image files (e.g. church_outdoor_train/); handled like a folder. */
export const LsunSpec = z.strictObject({
  /** LSUN export. */
  kind: z.literal("lsun"),
  ...folderFields,
});

/** Aligned CelebA with its official train/val/test partition. */
export const CelebaSpec = z.strictObject({
  /** CelebA. */
  kind: z.literal("celeba"),
  /** Folder holding img_align_celeba/ and list_eval_partition.txt. */
  root: z.string().min(1),
  /**
   * "crop178": centre crop 178×178, then resize to `size` (TransINR / IPC); "resize-crop": shorter
   * side to `size`, then centre crop (the ANR configs). Required: the two are not comparable.
   */
  protocol: z.enum(["crop178", "resize-crop"]),
  /** Output side in pixels. */
  size: Side.default(128),
});

/** Imagenette (imagenette2-320): train/ for training, val/ for both val and test. */
export const ImagenetteSpec = z
  .strictObject({
    /** Imagenette. */
    kind: z.literal("imagenette"),
    /** The imagenette2-320 folder, holding train/<class>/*.JPEG and val/<class>/*.JPEG. */
    root: z.string().min(1),
    /** Output side in pixels (178 as in TransINR / IPC). */
    size: Side.default(178),
    /** Shorter side after resizing, before the (random for training, else centre) crop; default `size`. */
    resize: Side.optional(),
  })
  .refine((p) => p.resize === undefined || p.resize >= p.size, {
    message: "resize must be at least size",
    path: ["resize"],
  });

/** MNIST / Fashion-MNIST IDX files, resized bilinearly as PyTorch does. */
export const IdxSpec = z.strictObject({
  /** IDX files. */
  kind: z.literal("idx"),
  /** Folder holding train-images-idx3-ubyte and t10k-images-idx3-ubyte, each optionally gzipped (.gz). */
  root: z.string().min(1),
  /** Output side; the 28×28 images are resized bilinearly (align_corners=False, no antialias). */
  size: Side.default(32),
  /** Use only the first N training images (default: all but the val_count last). */
  train_count: Side.optional(),
  /** Use only the first N test images. */
  test_count: Side.optional(),
  /** The last N images of the training file form "val" (never used for training). */
  val_count: z.number().int().nonnegative().default(0),
});

const svgFields = {
  /** Output side in pixels: each file is rasterised so that its longer side fills it, centred. */
  size: Side.default(32),
  /** Colour under the transparent parts, "#rrggbb" (Twemoji are drawn on transparency). */
  background: z
    .string()
    .regex(/^#[0-9a-fA-F]{6}$/, 'expected a colour "#rrggbb"')
    .default("#ffffff"),
  /**
   * Fractions of the files given to train, val and test, by a hash of each file's name (see
   * `hashSplit` in src/data/svg.ts): adding files moves none between splits.
   */
  split: SplitFractions.default({ train: 0.9, val: 0.05, test: 0.05 }),
  /**
   * The librsvg version the pixels come from; default: the one sharp carries. It is recorded in the
   * resolved config, and opening fails when sharp's differs, since another librsvg may draw
   * different pixels.
   */
  librsvg: z
    .string()
    .min(1)
    .default(() => LIBRSVG_VERSION ?? "none"),
};

/** A folder of SVG files, rasterised at `size` onto `background`, split by a hash of the file path. */
export const SvgSpec = z.strictObject({
  /** SVG files. */
  kind: z.literal("svg"),
  /** Directory searched recursively for .svg files (extension in any case). */
  root: z.string().min(1),
  ...svgFields,
});

/**
 * Twemoji (the `@twemoji/svg` package: graphics CC-BY 4.0 by Twitter, Inc. and other contributors),
 * rasterised as `svg`; an emoji's skin tones share its split (see `twemojiSplitKey`).
 */
export const TwemojiSpec = z.strictObject({
  /** Twemoji. */
  kind: z.literal("twemoji"),
  /** A folder of the package's SVG files; default: the installed package, found as Node resolves imports. */
  root: z.string().min(1).optional(),
  ...svgFields,
});

/** Where a dataset lives and how its items are prepared; discriminated by `kind`. */
export const DatasetSpec = z.discriminatedUnion("kind", [
  FolderSpec,
  LsunSpec,
  CelebaSpec,
  ImagenetteSpec,
  IdxSpec,
  SvgSpec,
  TwemojiSpec,
]);
export type DatasetSpec = z.infer<typeof DatasetSpec>;
/** What a user may write: defaults filled in on parsing. */
export type DatasetSpecInput = z.input<typeof DatasetSpec>;

/** Which part of a dataset to open. */
export type Split = "train" | "val" | "test";

/** Validate a dataset spec, filling defaults; the error lists every problem with its field path. */
export function parseDatasetSpec(raw: unknown, source = "dataset"): DatasetSpec {
  const r = DatasetSpec.safeParse(raw);
  if (!r.success) {
    throw new ConfigError(source, zodIssueLines(r.error), "dataset spec");
  }
  return r.data;
}

/** Open one split of a dataset; paths, partitions and split sizes are checked here, not on first use. */
export async function openImageDataset(
  spec: DatasetSpecInput,
  split: Split,
  opts: { skipCorrupt?: boolean } = {},
): Promise<ImageDataset> {
  const s = parseDatasetSpec(spec);
  const name = `${s.kind}:${split}`;
  const skipCorrupt = opts.skipCorrupt ?? false;
  switch (s.kind) {
    case "folder":
    case "lsun": {
      const files =
        s.split === "folders"
          ? (await listImages(join(s.root, split))).map((f) => `${split}/${f}`)
          : splitFiles(await listImages(s.root), s.split, s.seed, split, s.root);
      return fileDataset(name, s.root, files, preprocessTransform(s.preprocess), skipCorrupt);
    }
    case "celeba": {
      const files = await celebaFiles(s.root, split);
      const t: Transform =
        s.protocol === "crop178"
          ? { mode: "crop-resize", size: s.size, crop: 178 }
          : { mode: "resize-crop", size: s.size };
      return fileDataset(name, s.root, files, t, skipCorrupt);
    }
    case "imagenette": {
      const sub = split === "train" ? "train" : "val";
      const files = (await listImages(join(s.root, sub))).map((f) => `${sub}/${f}`);
      const t: Transform = {
        mode: "resize-crop",
        size: s.size,
        resize: s.resize,
        randomCrop: true,
        flip: 0.5,
      };
      return fileDataset(name, s.root, files, t, skipCorrupt);
    }
    case "idx":
      return idxDataset(name, s, split);
    case "svg":
      return svgDataset(name, s.root, s, split, (file) => file, skipCorrupt);
    case "twemoji":
      return svgDataset(name, s.root ?? twemojiRoot(), s, split, twemojiSplitKey, skipCorrupt);
  }
}

/**
 * Decode an image file with sharp and apply `t`: alpha dropped, grayscale replicated to RGB, no EXIF
 * rotation (like PIL in the reference pipelines). Geometry follows torchvision: the resized long side
 * is truncated, centre offsets are rounded half to even. Resampling is sharp's Lanczos-3 on the fully
 * decoded image: JPEG shrink-on-load is off because it would make pixels depend on the file format.
 * Random draws, in order: crop top, crop left, flip. Errors start with the file path.
 */
export async function decodeTransformed(path: string, t: Transform, rng?: Rng): Promise<HostImage> {
  try {
    const img = sharp(path);
    const { width, height } = await img.metadata();
    if (!width || !height) throw new Error("no image dimensions in the header");
    if (t.mode === "crop-resize") {
      const side = t.crop ?? Math.min(width, height);
      if (side > width || side > height) {
        throw new Error(`a ${side}×${side} centre crop does not fit the ${width}×${height} image`);
      }
      img.extract({ left: centred(width, side), top: centred(height, side), width: side, height: side });
      if (side !== t.size) img.resize(t.size, t.size, { fit: "fill", fastShrinkOnLoad: false });
    } else {
      const [h, w] = shorterSideTo(height, width, t.resize ?? t.size);
      const random = rng !== undefined && t.randomCrop === true;
      const top = random ? rng.int(h - t.size + 1) : centred(h, t.size);
      const left = random ? rng.int(w - t.size + 1) : centred(w, t.size);
      if (w !== width || h !== height) img.resize(w, h, { fit: "fill", fastShrinkOnLoad: false });
      img.extract({ left, top, width: t.size, height: t.size });
    }
    const out = await img.removeAlpha().toColourspace("srgb").raw().toBuffer({ resolveWithObject: true });
    const item = fromInterleaved(out.data, out.info.height, out.info.width, out.info.channels);
    if (rng !== undefined && t.flip !== undefined && t.flip > 0 && rng.uniform() < t.flip)
      flipHorizontal(item);
    return item;
  } catch (e) {
    throw new InputError(path, `cannot read image (${(e as Error).message})`);
  }
}

function preprocessTransform(p: Preprocess): Transform {
  const flip = p.flip ? 0.5 : 0;
  return p.mode === "crop-resize"
    ? { mode: "crop-resize", size: p.size, flip }
    : { mode: "resize-crop", size: p.size, resize: p.resize, randomCrop: p.mode === "random-crop", flip };
}

const IMAGE_EXT = /\.(jpe?g|png|webp)$/i;

/** Image files under `root`, recursively (see {@link listFiles}). */
async function listImages(root: string): Promise<string[]> {
  return listFiles(root, IMAGE_EXT, ".jpg/.jpeg/.png/.webp images");
}

/**
 * Files under `root` whose names match `ext`, recursively, as "/"-separated relative paths sorted
 * by UTF-16 code units (not locale, not filesystem order). Dot files are skipped: they are metadata
 * (e.g. macOS "._x.jpg"). `what` names the files in errors.
 */
export async function listFiles(root: string, ext: RegExp, what: string): Promise<string[]> {
  await expectDirectory(root, `a folder of ${what}`);
  const out: string[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.name.startsWith(".")) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(join(dir, e.name), r);
      else if (ext.test(e.name) && (e.isFile() || (e.isSymbolicLink() && (await isFile(join(dir, e.name))))))
        out.push(r);
    }
  };
  await walk(root, "");
  if (out.length === 0) throw new InputError(root, `no ${what} found (searched recursively)`);
  return out.sort(byCodeUnits);
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** Fail with the path and what was expected unless `path` is a directory. */
export async function expectDirectory(path: string, expected: string): Promise<void> {
  const s = await stat(path).catch(() => null);
  if (s === null) throw new InputError(path, `no such directory (expected ${expected})`);
  if (!s.isDirectory()) throw new InputError(path, `not a directory (expected ${expected})`);
}

/**
 * The [lo, hi) positions of `split` among n items cut at the cumulative fractions (rounded); an
 * empty split is an error naming `root` and the `what` being split.
 */
export function splitRange(
  n: number,
  f: SplitFractions,
  split: Split,
  root: string,
  what: string,
): [number, number] {
  const cut1 = Math.round(n * f.train);
  const cut2 = Math.round(n * (f.train + f.val));
  const [lo, hi] = split === "train" ? [0, cut1] : split === "val" ? [cut1, cut2] : [cut2, n];
  if (hi <= lo) {
    throw new InputError(
      root,
      `the ${split} split is empty (${n} ${what}, fractions train ${f.train} / val ${f.val} / test ${f.test})`,
    );
  }
  return [lo, hi];
}

/** The files of one split: sorted list, permuted by `seed`, cut at the cumulative fractions. */
function splitFiles(sorted: string[], f: SplitFractions, seed: number, split: Split, root: string): string[] {
  const perm = new Rng(seed).permutation(sorted.length);
  const [lo, hi] = splitRange(sorted.length, f, split, root, "images");
  return perm.slice(lo, hi).map((i) => sorted[i]!);
}

const CELEBA_PARTS: Record<Split, string> = { train: "0", val: "1", test: "2" };

/** The split's files from list_eval_partition.txt, checked to exist in img_align_celeba/. */
async function celebaFiles(root: string, split: Split): Promise<string[]> {
  await expectDirectory(root, "a CelebA folder with img_align_celeba/ and list_eval_partition.txt");
  const imgDir = join(root, "img_align_celeba");
  await expectDirectory(imgDir, "the aligned CelebA images, 000001.jpg …");
  const listPath = join(root, "list_eval_partition.txt");
  const text = await readFile(listPath, "utf8").catch(() => {
    throw new InputError(
      listPath,
      `cannot read (expected CelebA's official partition, lines "000001.jpg 0")`,
    );
  });
  const files: string[] = [];
  text.split(/\r?\n/).forEach((line, k) => {
    if (line.trim() === "") return;
    const m = /^\s*(\S+)\s+([012])\s*$/.exec(line);
    if (!m) throw new InputError(`${listPath}:${k + 1}`, `expected "<file> <0|1|2>", got "${line}"`);
    if (m[2] === CELEBA_PARTS[split]) files.push(m[1]!);
  });
  if (files.length === 0)
    throw new InputError(listPath, `no image is in the ${split} partition (${CELEBA_PARTS[split]})`);
  const present = new Set(await readdir(imgDir));
  const missing = files.filter((f) => !present.has(f));
  if (missing.length > 0) {
    throw new InputError(
      imgDir,
      `${missing.length} of the ${files.length} ${split} images listed in list_eval_partition.txt are missing (first: ${missing[0]})`,
    );
  }
  return files.map((f) => `img_align_celeba/${f}`);
}

/**
 * A dataset of image files, each file's header read now (sharp's metadata: format and size, no
 * pixel decoding), so that unreadable files are found before training, all of them: an error
 * listing every one, or, with `skipCorrupt`, left out and listed in `skippedIds`. A file whose
 * header reads but whose pixels do not (a truncated JPEG) is found on first use.
 */
async function fileDataset(
  name: string,
  root: string,
  files: string[],
  t: Transform,
  skipCorrupt: boolean,
): Promise<ImageDataset> {
  const bad = await unreadableHeaders(root, files);
  if (bad.length > 0 && !skipCorrupt)
    throw new InputError(
      root,
      `${bad.length} of the ${files.length} image files of ${name} cannot be read (fix or remove them, or set train.skip_corrupt: true to leave them out):\n${bad.map((b) => `  ${b.file}: ${b.reason}`).join("\n")}`,
    );
  const unreadable = new Set(bad.map((b) => b.file));
  const good = files.filter((f) => !unreadable.has(f));
  if (good.length === 0)
    throw new InputError(root, `none of the ${files.length} image files of ${name} is readable`);
  return new Items(
    name,
    [t.size, t.size],
    good,
    (i, rng) => decodeTransformed(join(root, good[i]!), t, rng),
    skipCorrupt,
    bad.map((b) => b.file),
  );
}

/** Headers read at once: enough to keep the disk busy, few enough file handles. */
const HEADER_READS = 16;

/** The files (in `files` order) whose image header sharp cannot read, with the reason. */
async function unreadableHeaders(root: string, files: string[]): Promise<{ file: string; reason: string }[]> {
  const reasons = await mapLimited(files, HEADER_READS, async (file): Promise<string | null> => {
    try {
      const { width, height } = await sharp(join(root, file)).metadata();
      return width && height ? null : "no image dimensions in the header";
    } catch (e) {
      // libvips stacks one line per loader it tried; one line per file keeps the list readable.
      return (e as Error).message
        .split(/\r?\n/)
        .map((line) => line.trim())
        .filter((line) => line !== "")
        .join("; ");
    }
  });
  return files.flatMap((file, k) => (reasons[k] === null ? [] : [{ file, reason: reasons[k]! }]));
}

async function idxDataset(name: string, s: z.infer<typeof IdxSpec>, split: Split): Promise<ImageDataset> {
  const file = await findIdx(s.root, split === "test" ? "t10k-images-idx3-ubyte" : "train-images-idx3-ubyte");
  const { dims, data } = await readIdx(file, { ndim: 3, what: "images" });
  const [total, h, w] = dims as [number, number, number];
  let first = 0;
  let count: number;
  if (split === "test") {
    count = s.test_count ?? total;
  } else {
    const available = total - s.val_count;
    if (available < 0) throw new InputError(file, `val_count ${s.val_count} exceeds the ${total} images`);
    if (s.train_count !== undefined && s.train_count > available) {
      throw new InputError(
        file,
        `train_count ${s.train_count} + val_count ${s.val_count} exceed the ${total} images`,
      );
    }
    [first, count] = split === "train" ? [0, s.train_count ?? available] : [available, s.val_count];
  }
  if (count > total) throw new InputError(file, `test_count ${count} exceeds the ${total} images`);
  if (count === 0)
    throw new InputError(file, `the ${split} split is empty (set val_count to hold out images)`);
  const ids = Array.from({ length: count }, (_, i) => `${basename(file)}#${first + i}`);
  const load = async (i: number): Promise<HostImage> => {
    const px = data.subarray((first + i) * h * w, (first + i + 1) * h * w);
    const gray = resizeBilinear({ c: 1, h, w, data: Float32Array.from(px, (v) => v / 255) }, s.size, s.size);
    return fromGray(gray);
  };
  return new Items(name, [s.size, s.size], ids, load, false);
}

function fromGray(g: HostImage): HostImage {
  const n = g.h * g.w;
  const data = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) data.set(g.data, c * n);
  return { c: 3, h: g.h, w: g.w, data };
}

/** The IDX file `base` in `root`, uncompressed or with .gz. */
async function findIdx(root: string, base: string): Promise<string> {
  await expectDirectory(root, `MNIST / Fashion-MNIST IDX files (${base}[.gz])`);
  for (const f of [base, `${base}.gz`]) if (await isFile(join(root, f))) return join(root, f);
  throw new InputError(
    root,
    `neither ${base} nor ${base}.gz found (expected MNIST / Fashion-MNIST IDX files)`,
  );
}

/**
 * The files of one split of an SVG folder (by {@link hashSplit} of `splitKey(path)`), all rendered
 * now; with `skipCorrupt`, unrenderable files are left out and listed in `skippedIds`.
 */
async function svgDataset(
  name: string,
  root: string,
  s: z.infer<typeof SvgSpec> | z.infer<typeof TwemojiSpec>,
  split: Split,
  splitKey: (file: string) => string,
  skipCorrupt: boolean,
): Promise<ImageDataset> {
  checkLibrsvg(root, s.librsvg);
  const all = await listFiles(root, SVG_FILE, ".svg files");
  const files = all.filter((f) => hashSplit(splitKey(f), s.split) === split);
  if (files.length === 0) {
    throw new InputError(
      root,
      `the ${split} split is empty (${all.length} SVG files, fractions train ${s.split.train} / val ${s.split.val} / test ${s.split.test} by name hash)`,
    );
  }
  const r = await renderSvgFiles(root, files, s.size, s.background, skipCorrupt);
  if (r.files.length === 0) throw new InputError(name, `none of the ${files.length} SVG files renders`);
  const load = (i: number): Promise<HostImage> =>
    Promise.resolve(fromInterleaved(r.pixels[i]!, s.size, s.size, 3));
  return new Items(name, [s.size, s.size], r.files, load, false, r.skipped);
}

/** A dataset over identified items with a loader; optionally passes over unreadable ones. */
class Items implements ImageDataset {
  readonly #skipped = new Set<number>();
  readonly #skippedIds: string[];

  /** `skippedAtOpen`: ids of unreadable items already left out of `ids` when the dataset opened. */
  constructor(
    readonly name: string,
    readonly size: [number, number],
    readonly ids: readonly string[],
    readonly load: (i: number, rng?: Rng) => Promise<HostImage>,
    readonly skipCorrupt: boolean,
    skippedAtOpen: readonly string[] = [],
  ) {
    this.#skippedIds = [...skippedAtOpen];
  }

  get length(): number {
    return this.ids.length;
  }

  get skipped(): number {
    return this.#skippedIds.length;
  }

  get skippedIds(): readonly string[] {
    return this.#skippedIds;
  }

  id(i: number): string {
    this.#check(i);
    return this.ids[i]!;
  }

  /**
   * With skipCorrupt, an unreadable item is remembered and the next readable one (cyclically) is
   * returned; the rng is rewound after a failure so the substitute draws what the original would have.
   */
  async get(i: number, rng?: Rng): Promise<HostImage> {
    this.#check(i);
    if (!this.skipCorrupt) return this.load(i, rng);
    for (let k = 0; k < this.length; k++) {
      const j = (i + k) % this.length;
      if (this.#skipped.has(j)) continue;
      const saved = rng?.state;
      try {
        return await this.load(j, rng);
      } catch {
        if (rng !== undefined) rng.state = saved!;
        if (!this.#skipped.has(j)) {
          this.#skipped.add(j);
          this.#skippedIds.push(this.ids[j]!);
        }
      }
    }
    throw new InputError(this.name, `none of the ${this.length} items is readable`);
  }

  #check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) {
      throw new RangeError(`${this.name}: index ${i} out of range [0, ${this.length})`);
    }
  }
}

/** The warning for files that `skip_corrupt` left out, the same wherever a dataset is opened. */
export function skippedFilesWarning(ids: readonly string[]): string {
  return `skip_corrupt: ${ids.length} unreadable file(s) left out: ${ids.join(", ")}`;
}
