// Small numeric helpers for the benchmark: medians over repeats and ratios that tolerate missing figures.

export function median(values: number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Median of each numeric field over the repeats (fields missing in a repeat are skipped). */
export function medians<T extends Record<string, number>>(runs: T[]): T {
  const out: Record<string, number> = {};
  for (const key of new Set(runs.flatMap((r) => Object.keys(r)))) out[key] = median(runs.map((r) => r[key]));
  return out as T;
}

export function ratio(a: number | undefined, b: number | undefined): number {
  return a !== undefined && b !== undefined && b > 0 ? a / b : NaN;
}
