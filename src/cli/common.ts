/** What the command files share: the model a command runs, and the parsing of common flags. */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import type { WeightsChoice } from "../io/weights.js";
import { UsageError } from "../util/errors.js";

/** What is at `p`: a file, a folder, or nothing (or something unreadable). */
async function pathKind(p: string): Promise<"file" | "folder" | null> {
  return stat(p).then(
    (s) => (s.isFile() ? "file" : s.isDirectory() ? "folder" : null),
    () => null,
  );
}

/**
 * The model file and the weights to load from it for `--model`/RUN and `--weights`, the same for
 * eval, encode and decode. A finished run folder holds one file per weight set (model.safetensors,
 * model-ema.safetensors); a run still training holds both sets in checkpoint.safetensors. A model
 * file given by name is loaded as it is: `--weights ema` on it is checked by `loadModel`
 * (accepted for an EMA model file, refused for an online one).
 */
export async function resolveModelFile(
  p: string,
  weights: WeightsChoice,
): Promise<{ path: string; weights: WeightsChoice }> {
  if ((await pathKind(p)) !== "folder") return { path: p, weights };
  if ((await pathKind(join(p, "model.safetensors"))) === "file") {
    if (weights === "online") return { path: join(p, "model.safetensors"), weights };
    const ema = join(p, "model-ema.safetensors");
    if ((await pathKind(ema)) !== "file")
      throw new UsageError(
        `${p}: no model-ema.safetensors (the run was trained without EMA: train.ema is null); use --weights online`,
      );
    return { path: ema, weights };
  }
  const checkpoint = join(p, "checkpoint.safetensors");
  if ((await pathKind(checkpoint)) === "file") return { path: checkpoint, weights };
  throw new UsageError(`${p}: not a run folder (no model.safetensors or checkpoint.safetensors)`);
}

/** `--weights online|ema`. */
export function parseWeightsChoice(text: string | undefined): WeightsChoice {
  if (text !== "online" && text !== "ema")
    throw new UsageError(`--weights must be online or ema, not ${text}`);
  return text;
}

/** `--size HxW` (or `--size N` for N×N). */
export function parseSize(text: string): [number, number] {
  const m = text.match(/^(\d+)(?:x(\d+))?$/);
  if (!m) throw new UsageError(`--size ${text}: expected HxW, e.g. 512x512`);
  return [Number(m[1]), Number(m[2] ?? m[1])];
}
