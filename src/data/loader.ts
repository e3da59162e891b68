/**
 * Batches from an ImageDataset, shuffled per epoch, decoded ahead of use. Everything random about a
 * batch is a function of (seed, epoch, batch index), so prefetch depth and decode order cannot change
 * results, and a position is all a checkpoint needs to resume the exact sequence.
 */
import { Rng, mixSeed } from "../util/rng.js";
import { InputError } from "../util/errors.js";
import type { ImageDataset } from "./datasets.js";
import { stackImages } from "./image.js";

/** Where a loader stands: JSON-serialisable, for exact resume. */
export interface LoaderState {
  /** Epoch of the next batch. */
  epoch: number;
  /** Index within its epoch of the next batch. */
  index: number;
  /** Reserved: always empty, since (epoch, index) determine everything; kept for forward compatibility. */
  rng: number[];
}

/** Options of a BatchLoader. */
export interface LoaderOptions {
  /** Images per batch; the last incomplete batch of an epoch is dropped. */
  batchSize: number;
  /** Seed of the per-epoch permutations and the per-item augmentation. */
  seed: number;
  /** Permute the items every epoch (default true); otherwise dataset order. */
  shuffle?: boolean;
  /** Batches decoded concurrently ahead, counting the one being waited for (default 4). */
  prefetch?: number;
  /** Give `get` an rng, i.e. use the dataset's training transform (default true). */
  augment?: boolean;
}

/** One batch: images stacked (B, C, H, W) and the ids of the items. */
export interface Batch {
  /** The images, (B, C, H, W) in C order. */
  data: Float32Array;
  /** [B, C, H, W]. */
  shape: [number, number, number, number];
  /** `ds.id` of each image, in batch order. */
  ids: string[];
}

/** Shuffled, augmented, prefetched batches with an exactly resumable position. */
export class BatchLoader {
  /** Full batches per epoch. */
  readonly batchesPerEpoch: number;
  readonly #ds: ImageDataset;
  readonly #batchSize: number;
  readonly #seed: number;
  readonly #shuffle: boolean;
  readonly #prefetch: number;
  readonly #augment: boolean;
  /** Position of the next batch handed out by next(). */
  #pos = { epoch: 0, index: 0 };
  /** Batches already started, in order, the first being at #pos. */
  #queue: Promise<Batch>[] = [];
  #perm: { epoch: number; order: number[] } | null = null;

  constructor(ds: ImageDataset, opts: LoaderOptions) {
    const { batchSize, seed, shuffle = true, prefetch = 4, augment = true } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new Error(`batchSize ${batchSize}: a positive integer expected`);
    if (!Number.isInteger(prefetch) || prefetch < 1)
      throw new Error(`prefetch ${prefetch}: a positive integer expected`);
    if (!Number.isInteger(seed)) throw new Error(`seed ${seed}: an integer expected`);
    this.batchesPerEpoch = Math.floor(ds.length / batchSize);
    if (this.batchesPerEpoch === 0) {
      throw new InputError(ds.name, `${ds.length} items, fewer than one batch of ${batchSize}`);
    }
    this.#ds = ds;
    this.#batchSize = batchSize;
    this.#seed = seed;
    this.#shuffle = shuffle;
    this.#prefetch = prefetch;
    this.#augment = augment;
  }

  /** The next batch; epochs roll over with a fresh permutation. */
  next(): Promise<Batch> {
    this.#fill();
    const batch = this.#queue.shift()!;
    this.#pos = this.#after(this.#pos);
    this.#fill();
    return batch;
  }

  /** The position of the next batch. */
  get state(): LoaderState {
    return { ...this.#pos, rng: [] };
  }

  /** Continue from `s`: the following batches are those a loader with the same options yielded after `s`. */
  restore(s: LoaderState): void {
    if (
      !Number.isInteger(s.epoch) ||
      s.epoch < 0 ||
      !Number.isInteger(s.index) ||
      s.index < 0 ||
      s.index >= this.batchesPerEpoch
    ) {
      throw new Error(
        `loader state (epoch ${s.epoch}, index ${s.index}) invalid for ${this.batchesPerEpoch} batches per epoch`,
      );
    }
    this.#pos = { epoch: s.epoch, index: s.index };
    this.#queue = [];
  }

  #after(p: { epoch: number; index: number }): { epoch: number; index: number } {
    return p.index + 1 < this.batchesPerEpoch
      ? { epoch: p.epoch, index: p.index + 1 }
      : { epoch: p.epoch + 1, index: 0 };
  }

  #fill(): void {
    let p = this.#pos;
    for (let k = 0; k < this.#queue.length; k++) p = this.#after(p);
    while (this.#queue.length < this.#prefetch) {
      const batch = this.#load(p.epoch, p.index);
      // A prefetched batch may fail before anyone awaits it; the failure surfaces from next() instead.
      batch.catch(() => undefined);
      this.#queue.push(batch);
      p = this.#after(p);
    }
  }

  async #load(epoch: number, index: number): Promise<Batch> {
    const order = this.#permutation(epoch).slice(index * this.#batchSize, (index + 1) * this.#batchSize);
    // Per-item generators are drawn synchronously, so concurrent decoding cannot reorder the draws.
    const batchRng = new Rng(mixSeed(this.#seed, epoch, index));
    const rngs = order.map(() => (this.#augment ? new Rng(batchRng.u32()) : undefined));
    const items = await Promise.all(order.map((i, k) => this.#ds.get(i, rngs[k])));
    const { data, shape } = stackImages(items, (k) => this.#ds.id(order[k]!));
    return { data, shape, ids: order.map((i) => this.#ds.id(i)) };
  }

  /** Batches are started in order, so only the latest epoch's permutation is ever needed again. */
  #permutation(epoch: number): number[] {
    if (this.#perm?.epoch !== epoch) {
      const n = this.#ds.length;
      const order = this.#shuffle ? new Rng(this.#seed + epoch).permutation(n) : [...Array(n).keys()];
      this.#perm = { epoch, order };
    }
    return this.#perm.order;
  }
}
