/**
 * Vector image datasets: folders of SVG files rasterised with sharp (librsvg) at the size asked, and
 * the Twemoji set from the `@twemoji/svg` package. Since the source is vector, the true image
 * exists at every size: the same item can be rendered at 32² for training and at 256² as the
 * ground truth of super-resolution.
 *
 * Every file of a split is rendered when the dataset opens, so a corrupt file fails there (named)
 * rather than mid-training, and training decodes nothing. Items are split by a hash of their name
 * ({@link hashSplit}): a file's split never depends on which other files exist.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import sharp from "sharp";
import { InputError } from "../util/errors.js";
import { mapLimited } from "../util/pool.js";
import type { Split, SplitFractions } from "./datasets.js";

/**
 * The librsvg version the installed sharp carries (e.g. "2.61.2"), or undefined when this sharp
 * build reads no SVG. The same librsvg (and the cairo and pixman sharp bundles with it) renders the
 * same bytes on every machine, so a run records it.
 */
export const LIBRSVG_VERSION: string | undefined = sharp.versions.rsvg;

/** File names of SVG files (extension in any case). */
export const SVG_FILE = /\.svg$/i;

/**
 * Render one SVG file as a `size`×`size` RGB image, 8-bit interleaved (HWC). The drawing is scaled
 * so that its longer side fills `size` (rasterised at that scale, never resampled), centred, and
 * composited onto `background` ("#rrggbb"); librsvg antialiases edges. Text would depend on the
 * fonts installed, so SVGs with `<text>` are not machine-independent (Twemoji has none).
 * Any failure is an InputError naming the file.
 */
export async function renderSvg(path: string, size: number, background: string): Promise<Uint8Array> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new InputError(path, `cannot read the SVG file (${(e as Error).message})`);
  }
  try {
    const { format, width, height } = await sharp(bytes).metadata();
    if (format !== "svg") throw new Error(`the content is ${format}, not SVG`);
    if (!width || !height) throw new Error("no drawing size (width/height or viewBox)");
    // librsvg's raster size is the SVG's size in pixels at 72 dpi, so this density renders the
    // longer side at exactly `size`; the resize only centres a non-square drawing on the background.
    const out = await sharp(bytes, { density: (72 * size) / Math.max(width, height) })
      .resize(size, size, { fit: "contain", background })
      .flatten({ background })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (out.info.width !== size || out.info.height !== size || out.info.channels !== 3) {
      throw new Error(
        `rendered ${out.info.width}×${out.info.height}×${out.info.channels}, not ${size}×${size}×3`,
      );
    }
    return new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength);
  } catch (e) {
    throw new InputError(path, `cannot render the SVG (${(e as Error).message})`);
  }
}

/** SVG files rendered by {@link renderSvgFiles}: the readable ones with their pixels, and the others. */
export interface RenderedSvgs {
  /** Paths (relative to the root) of the files rendered, in the order given. */
  files: string[];
  /** RGB bytes (HWC) of each rendered file. */
  pixels: Uint8Array[];
  /** Paths of the files that could not be rendered (only with `skipCorrupt`). */
  skipped: string[];
}

/** Files rendered at once: sharp renders on libuv's pool of 4 threads, so more only queue. */
const RENDER_CONCURRENCY = 4;

/**
 * Render `files` (relative to `root`) with {@link renderSvg}. The first unrenderable file is an
 * InputError naming it, unless `skipCorrupt`, which leaves such files out and lists them.
 */
export async function renderSvgFiles(
  root: string,
  files: readonly string[],
  size: number,
  background: string,
  skipCorrupt: boolean,
): Promise<RenderedSvgs> {
  const results = await mapLimited(files, RENDER_CONCURRENCY, (file) =>
    renderSvg(join(root, file), size, background).catch((e: unknown) => {
      if (e instanceof InputError) return e;
      throw e;
    }),
  );
  const out: RenderedSvgs = { files: [], pixels: [], skipped: [] };
  results.forEach((r, k) => {
    if (r instanceof Uint8Array) {
      out.files.push(files[k]!);
      out.pixels.push(r);
    } else if (skipCorrupt) {
      out.skipped.push(files[k]!);
    } else {
      throw r;
    }
  });
  return out;
}

/**
 * FNV-1a, 32 bits, of the UTF-8 bytes of `text` (offset basis 2166136261, prime 16777619), as an
 * unsigned integer. E.g. "" → 2166136261, "a" → 0xe40c292c.
 */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * The split of an item from its name alone: u = FNV-1a-32(UTF-8 bytes of `key`) / 2³², in [0, 1);
 * "train" when u < f.train, "val" when u < f.train + f.val, else "test". So the split of a file
 * never depends on the other files: adding or removing files moves none between splits, and
 * anyone with the same files evaluates on the same test items. With the default 0.9 / 0.05 / 0.05
 * the splits hold about 90 %, 5 % and 5 % of the items.
 */
export function hashSplit(key: string, f: SplitFractions): Split {
  const u = fnv1a32(key) / 2 ** 32;
  return u < f.train ? "train" : u < f.train + f.val ? "val" : "test";
}

/**
 * The key Twemoji files are split by: the file name without skin-tone modifiers (U+1F3FB–1F3FF,
 * "-1f3fb" … "-1f3ff" in the name), so that an emoji's five skin tones, which differ only in
 * colour, are all in the same split and a test emoji is never a recoloured training emoji.
 * E.g. "1f44b-1f3fd.svg" → "1f44b.svg".
 */
export function twemojiSplitKey(file: string): string {
  return file.replace(/-1f3f[b-f]/gi, "");
}

/** The `@twemoji/svg` package this module resolves (the version package.json pins). */
export const TWEMOJI_PACKAGE = "@twemoji/svg";

/**
 * The folder of the installed `@twemoji/svg` package (3,720 SVG files in 15.0.0), found by Node's
 * module resolution from `from` (default: this module, as an import of the package would be); an
 * InputError when it is not installed.
 */
export function twemojiRoot(from: string | URL = import.meta.url): string {
  try {
    return dirname(createRequire(from).resolve(`${TWEMOJI_PACKAGE}/package.json`));
  } catch {
    throw new InputError(
      'data kind "twemoji"',
      `the ${TWEMOJI_PACKAGE} package is not installed (npm install ${TWEMOJI_PACKAGE}@15.0.0, or give data.root: a folder of its SVG files)`,
    );
  }
}

/**
 * Fail unless this sharp renders SVG with librsvg `expected` (the `librsvg` a run config recorded):
 * another librsvg may draw different pixels.
 */
export function checkLibrsvg(source: string, expected: string): void {
  if (LIBRSVG_VERSION === undefined) {
    throw new InputError(source, `this sharp ${sharp.versions.sharp} has no librsvg and cannot render SVG`);
  }
  if (expected !== LIBRSVG_VERSION) {
    throw new InputError(
      source,
      `data.librsvg is "${expected}", but sharp ${sharp.versions.sharp} renders with librsvg ${LIBRSVG_VERSION}; its pixels may differ (drop data.librsvg to use ${LIBRSVG_VERSION})`,
    );
  }
}
