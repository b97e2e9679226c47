/** The latency percentiles every row reports. */
export interface Latencies {
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
}

/** p50, p99 and p99.9 of latencies in milliseconds, by nearest rank (sorted once); NaN when there are none. */
export function latencyPercentiles(valuesMs: readonly number[]): Latencies {
  const sorted = Float64Array.from(valuesMs).sort();
  const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]! : NaN);
  return { p50Ms: at(0.5), p99Ms: at(0.99), p999Ms: at(0.999) };
}
