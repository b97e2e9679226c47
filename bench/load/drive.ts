// The closed loop of a load worker: `inFlight` slots, each running one operation after the
// other until the deadline, so exactly `inFlight` operations are in flight at any time. An
// operation is one request or one whole flow (several requests in a row). With a rate, the
// slots start operations on a fixed schedule instead (the soak's load), never more than
// `inFlight` at once: a server that falls behind gets the calls late, not piled up, and not
// made up later either.
import { performance } from "node:perf_hooks";

/** One operation; `slot` is the index of the slot running it (0 … inFlight-1). */
export type Operation = (slot: number) => Promise<void>;

export interface DriveResult {
  /** Operations completed, successful or not. */
  ops: number;
  errors: number;
  /** Up to five distinct error messages, for the report. */
  errorSamples: string[];
  /** Latency of every operation, in milliseconds. */
  latenciesMs: number[];
  /** From the first start to the last completion. */
  elapsedSeconds: number;
}

export interface DriveOptions {
  inFlight: number;
  /** Stop starting operations after this long. */
  seconds: number;
  /** Or after this many operations (whichever comes first). */
  maxOps?: number;
  /** Operations started per second, on a fixed schedule; a start late by more than a second is dropped (no catching up). */
  rate?: number;
  /** Called about once a second with the operations completed so far. */
  onProgress?: (ops: number, errors: number) => void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function drive(operation: Operation, { inFlight, seconds, maxOps = Infinity, rate, onProgress }: DriveOptions): Promise<DriveResult> {
  const result: DriveResult = { ops: 0, errors: 0, errorSamples: [], latenciesMs: [], elapsedSeconds: 0 };
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let begun = 0;
  /** With a rate: when the next operation is due. */
  let nextAt = started;
  const ticker = onProgress && setInterval(() => onProgress(result.ops, result.errors), 1000);

  async function slot(index: number): Promise<void> {
    while (begun < maxOps && performance.now() < deadline) {
      if (rate) {
        // More than a second behind (the server stalled): the missed starts are dropped, not
        // made up in a burst above the rate.
        const now = performance.now();
        if (nextAt < now - 1000) nextAt = now;
        const at = nextAt;
        if (at >= deadline) break;
        nextAt += 1000 / rate;
        begun++;
        if (at - now > 1) await sleep(at - now);
      } else begun++;
      const t0 = performance.now();
      try {
        await operation(index);
      } catch (err) {
        result.errors++;
        const message = err instanceof Error ? err.message : String(err);
        if (result.errorSamples.length < 5 && !result.errorSamples.includes(message)) result.errorSamples.push(message);
      }
      result.latenciesMs.push(performance.now() - t0);
      result.ops++;
    }
  }

  try {
    await Promise.all(Array.from({ length: inFlight }, (_, i) => slot(i)));
  } finally {
    if (ticker) clearInterval(ticker);
  }
  result.elapsedSeconds = (performance.now() - started) / 1000;
  return result;
}
