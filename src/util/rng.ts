/** A small seeded host PRNG (xoshiro128**) for initialisation, shuffles and ray sampling. */
export class Rng {
  #s: Uint32Array;
  #spare: number | null = null;

  constructor(seed: number) {
    // splitmix32 expands the seed into the 128-bit state.
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#s = new Uint32Array([next(), next(), next(), next()]);
  }

  /** The generator state, to save and resume. */
  get state(): number[] {
    return [...this.#s, this.#spare === null ? NaN : this.#spare];
  }

  set state(s: number[]) {
    this.#s = new Uint32Array(s.slice(0, 4));
    this.#spare = s.length > 4 && !Number.isNaN(s[4]) ? s[4]! : null;
  }

  /** Uniform 32-bit integer. */
  u32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.u32() / 4294967296;
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    if (this.#spare !== null) {
      const v = this.#spare;
      this.#spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** A uniformly random permutation of 0..n−1. */
  permutation(n: number): number[] {
    const a = [...Array(n).keys()];
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  }

  /** Fill with N(0, 1) (or U[lo, hi) when given bounds). */
  fill(n: number, dist: { normal: true } | { lo: number; hi: number }): Float32Array {
    const out = new Float32Array(n);
    if ("normal" in dist) for (let i = 0; i < n; i++) out[i] = this.normal();
    else for (let i = 0; i < n; i++) out[i] = dist.lo + (dist.hi - dist.lo) * this.uniform();
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * A 32-bit seed from several integers (step, epoch, micro-batch…; murmur3-style mixing), so that
 * per-step randomness needs no state and nearby tuples give unrelated streams.
 */
export function mixSeed(...xs: number[]): number {
  let h = 0x9e3779b9;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}
