// Row operations over next-token scores. -Infinity marks a removed token; NaN is treated like -Infinity.

/** The largest score, or -Infinity when every token is removed. */
export function maxScore(scores: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < scores.length; i++) if (scores[i] > max) max = scores[i];
  return max;
}

/** Index of the first largest score (torch.argmax's choice on ties). */
export function argmax(scores: Float32Array): number {
  let best = -1;
  let max = -Infinity;
  for (let i = 0; i < scores.length; i++) {
    if (scores[i] > max) {
      max = scores[i];
      best = i;
    }
  }
  if (best < 0) throw new Error('Every token was filtered out (all scores are -Infinity or NaN)');
  return best;
}

/** out[i] = exp(scores[i] - max); returns the sum (float64). Removed tokens get 0. */
export function expShifted(scores: Float32Array, out: Float32Array): number {
  const max = maxScore(scores);
  if (max === -Infinity) throw new Error('Every token was filtered out (all scores are -Infinity or NaN)');
  let sum = 0;
  for (let i = 0; i < scores.length; i++) {
    const e = scores[i] > -Infinity ? Math.exp(scores[i] - max) : 0;
    out[i] = e;
    sum += e;
  }
  return sum;
}

/** scores ← log_softmax(scores), in place. */
export function logSoftmaxInPlace(scores: Float32Array): void {
  const max = maxScore(scores);
  if (max === -Infinity) throw new Error('Every token was filtered out (all scores are -Infinity or NaN)');
  let sum = 0;
  for (let i = 0; i < scores.length; i++) if (scores[i] > -Infinity) sum += Math.exp(scores[i] - max);
  const logZ = max + Math.log(sum);
  for (let i = 0; i < scores.length; i++) scores[i] = scores[i] > -Infinity ? scores[i] - logZ : -Infinity;
}

/**
 * The k-th largest score (1-based k), by quickselect over a copy in `scratch` (length >= scores.length),
 * so the row itself is left in place. Expected O(n).
 */
export function kthLargest(scores: Float32Array, k: number, scratch: Float32Array): number {
  const n = scores.length;
  if (k < 1 || k > n) throw new Error(`kthLargest: k=${k} outside 1..${n}`);
  for (let i = 0; i < n; i++) scratch[i] = Number.isNaN(scores[i]) ? -Infinity : scores[i];
  // Looking for the element at position k-1 of the descending order.
  const target = k - 1;
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const pivot = medianOfThree(scratch[lo], scratch[mid], scratch[hi]);
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (scratch[i] > pivot) i++;
      while (scratch[j] < pivot) j--;
      if (i <= j) {
        const t = scratch[i];
        scratch[i] = scratch[j];
        scratch[j] = t;
        i++;
        j--;
      }
    }
    // Now [lo, j] >= pivot, [i, hi] <= pivot, and anything between equals pivot.
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return pivot;
  }
  return scratch[target];
}

function medianOfThree(a: number, b: number, c: number): number {
  if (a > b) [a, b] = [b, a];
  if (b > c) b = c;
  return a > b ? a : b;
}
