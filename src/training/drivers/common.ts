/** What the task drivers share: the optimiser settings of a run and the size check of its data. */
import { sizeHW } from "../../model/config.js";
import { InputError } from "../../util/errors.js";
import type { ResolvedRunConfig } from "../run-config.js";
import type { TrainStepArgs } from "../step.js";

/** The run's Adam and gradient-clipping settings, as the training step takes them. */
export function adamOf(run: ResolvedRunConfig): TrainStepArgs {
  const t = run.train;
  return { adam: { lr: t.lr, beta1: t.betas[0], beta2: t.betas[1], eps: t.eps }, clipNorm: t.clip_norm };
}

/** Refuse a split (named `name`) whose items are not the model's input size. */
export function checkSize(name: string, size: [number, number], run: ResolvedRunConfig): void {
  const [h, w] = sizeHW(run.model.tokenizer.args.input_size);
  if (size[0] !== h || size[1] !== w) {
    throw new InputError(
      name,
      `images are ${size[0]}×${size[1]} but the model's tokenizer.args.input_size is ${h}×${w} (set the data's size to match)`,
    );
  }
}
