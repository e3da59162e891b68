/** Small statistics for the benchmark's reports. */

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** [min, max] of a non-empty list. */
export function range(xs: number[]): [number, number] {
  return [Math.min(...xs), Math.max(...xs)];
}
