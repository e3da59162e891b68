/** Shared test fixtures: small model configs and the golden data location. */
import { join, resolve } from "node:path";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import sharp from "sharp";
import { lookAtPose } from "../src/rendering/rays.js";
import type { HyperNetworkConfigInput } from "../src/model/config.js";

/** The golden directory: $ANR_GOLDEN, or the copy of the authors' reference output in test/golden. */
export const golden = resolve(process.env.ANR_GOLDEN ?? join(import.meta.dirname, "golden"));

/** A tiny model of each kind (16×16 images), fast enough for many steps in a test. */
export function tinyConfig(kind: "ANR" | "HypoMlp" | "HypoMlpIPC" = "ANR"): HyperNetworkConfigInput {
  const enc = { dim: 32, depth: 1, n_head: 2, head_dim: 8, ff_dim: 64 };
  const common = { in_dim: 2, out_dim: 3, depth: 2, hidden_dim: 32, pe_dim: 16, pe_sigma: 16 };
  const hyponet =
    kind === "ANR"
      ? {
          name: "ANR" as const,
          args: { ...common, token_len: 8, att_threshold: 0.05, n_head: 2, head_dim: 8 },
        }
      : kind === "HypoMlp"
        ? { name: "HypoMlp" as const, args: common }
        : { name: "HypoMlpIPC" as const, args: common };
  return {
    n_groups: 8,
    direct_wtoken: kind === "ANR",
    grouping_mode: kind === "HypoMlpIPC" ? "mlp_mod" : "mlp",
    tokenizer: { name: "ImgTokenizer", args: { input_size: 16, patch_size: 4, padding: 0, dim: 32 } },
    hyponet,
    tinr_enc: { name: "TInrEncoder", args: enc },
    tinr_dec: { name: "TInrDecoder", args: enc },
  };
}

// ---- A tiny multi-view dataset in the learnit layout (RGBA discs seen from an orbit). ----

/** Side of the synthetic multi-view renders. */
export const W = 16;
/** camera_angle_x of the synthetic views. */
export const ANGLE = 0.69;

/** Camera-to-world (4 × 4 rows) of a camera at `eye` looking at the origin (OpenGL convention). */
export function lookAt(eye: [number, number, number]): number[][] {
  const p = lookAtPose(eye);
  return [0, 1, 2].map((r) => [...p.subarray(4 * r, 4 * r + 4)]).concat([[0, 0, 0, 1]]);
}

/** Colour of the disc in view v of object o: distinct per view so that stacking order is visible. */
export const discColour = (o: number, v: number): [number, number, number] => [40 * o + 20, 50 * v + 10, 200];

/**
 * A W×W RGBA view: an opaque disc (radius 5) on a transparent background whose RGB is not white (so
 * compositing is what makes it white), and one half-transparent pixel at (0, 0).
 */
export async function writeView(path: string, rgb: [number, number, number]): Promise<void> {
  const raw = Buffer.alloc(W * W * 4);
  for (let y = 0; y < W; y++) {
    for (let x = 0; x < W; x++) {
      const inside = Math.hypot(x + 0.5 - W / 2, y + 0.5 - W / 2) < 5;
      raw.set(inside ? [...rgb, 255] : [37, 90, 10, 0], (y * W + x) * 4);
    }
  }
  raw.set([200, 100, 0, 128], 0);
  await writeFile(
    path,
    await sharp(raw, { raw: { width: W, height: W, channels: 4 } })
      .png()
      .toBuffer(),
  );
}

export async function writeObject(
  dir: string,
  o: number,
  nViews: number,
  skip?: number,
): Promise<number[][][]> {
  await mkdir(dir, { recursive: true });
  const mats: number[][][] = [];
  const frames = [];
  for (let v = 0; v < nViews; v++) {
    const t = (2 * Math.PI * v) / nViews;
    const m = lookAt([4 * Math.cos(t), 4 * Math.sin(t), 1 + o]);
    mats.push(m);
    // Both forms occur in the wild: with and without the extension.
    frames.push({ file_path: v === 1 ? `./r_${v}.png` : `./r_${v}`, transform_matrix: m, rotation: 0.1 });
    if (v !== skip) await writeView(join(dir, `r_${v}.png`), discColour(o, v));
  }
  await writeFile(join(dir, "transforms.json"), JSON.stringify({ camera_angle_x: ANGLE, frames }));
  return mats;
}

/**
 * Real-data tests: skip with a reason when `present` is false, except under ANR_REQUIRE_DATA=1 (CI),
 * where missing data fails the test so that a green run never hides tests that did not run.
 * Returns true when the caller should return (skipped).
 */
export function skipWithoutData(t: { skip(reason: string): void }, present: boolean, what: string): boolean {
  if (present) return false;
  if (process.env.ANR_REQUIRE_DATA === "1")
    throw new Error(`${what} is missing, and ANR_REQUIRE_DATA=1 requires it`);
  t.skip(`${what} is missing`);
  return true;
}

/** Fields of metrics.jsonl that measure time, so differ between identical runs. */
const volatileMetrics = new Set(["seconds", "time", "images_per_s", "step_s", "train_seconds"]);

/** The lines of a run's metrics.jsonl, without the timing fields, for comparing runs. */
export async function readMetrics(dir: string): Promise<Record<string, number>[]> {
  return (await readFile(join(dir, "metrics.jsonl"), "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((l) =>
      Object.fromEntries(
        Object.entries(JSON.parse(l) as Record<string, number>).filter(([k]) => !volatileMetrics.has(k)),
      ),
    );
}

/**
 * Safetensors bytes with their JSON header changed by `mutate` and re-encoded in front of the same
 * data block: files that are malformed (or deceptive) in exactly one chosen way.
 */
export function withSafetensorsHeader(
  bytes: Uint8Array,
  mutate: (header: Record<string, unknown>) => void,
): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  mutate(header);
  const hb = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + hb.length + bytes.length - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  out.set(bytes.subarray(8 + n), 8 + hb.length);
  return out;
}

/** The npm packages (sorted) whose files an esbuild metafile's inputs include. */
export function bundledPackages(inputs: string[]): string[] {
  const marker = "node_modules/";
  const packages = new Set(
    inputs
      .filter((f) => f.includes(marker))
      .map((f) => {
        const parts = f.slice(f.lastIndexOf(marker) + marker.length).split("/");
        return parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!;
      }),
  );
  return [...packages].sort();
}
