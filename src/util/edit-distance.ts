/**
 * "Did you mean …?": the nearest of some known words to a mistyped one, for config keys, preset
 * names and option values (commander suggests commands and options itself).
 */

/**
 * Edit distance of `a` and `b`: insertions, deletions, substitutions and swaps of two adjacent
 * characters each cost 1 (the optimal-string-alignment distance), so "modle" is 1 from "model".
 */
export function editDistance(a: string, b: string): number {
  // Three rows of the dynamic programme: the one before the previous is needed for swaps.
  let before = new Array<number>(b.length + 1).fill(0);
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d = Math.min(d, before[j - 2]! + 1);
      row.push(d);
    }
    [before, prev] = [prev, row];
  }
  return prev[b.length]!;
}

/**
 * The candidate nearest to `word` (the first of equals), if it is close enough to be a likely
 * typo: at most a third of the longer word's characters off (at least 1).
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    if (c === word) continue;
    const d = editDistance(word, c);
    if (d < bestD && d <= Math.max(1, Math.floor(Math.max(word.length, c.length) / 3))) {
      best = c;
      bestD = d;
    }
  }
  return best;
}

/** ` (did you mean "x"?)` for the nearest candidate, or "" when none is near. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const c = closest(word, candidates);
  return c === undefined ? "" : ` (did you mean "${c}"?)`;
}
