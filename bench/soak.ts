// `npm run bench -- --soak 30m`: the service under a steady mix of reads and writes for a long
// time, its memory sampled as it goes, to tell a leak from a footprint that settles. It signs
// sessions in, measures the mix's capacity briefly at full speed (unless --rate is given), then
// runs the mix at half that rate for the whole soak and samples the service every minute: RSS
// (VmRSS of /proc), and V8's heap used and total, external memory and array buffers
// (process.memoryUsage(), written to a file by bench/memory-probe.mjs loaded into the service),
// with the calls and errors of each interval. The end RSS is compared with the minute-5 one.
import { readFileSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { UserCursor, WorkerJob } from "./load/protocol.js";
import type { MeasureSettings } from "./measure.js";
import { runWorker } from "./node-load.js";
import type { BenchOptions, SoakOptions } from "./options.js";
import { rssMb } from "./proc.js";
import { advance, signInSessions } from "./run-rows.js";
import { startService, type Target } from "./targets.js";

const PROBE = fileURLToPath(new URL("./memory-probe.mjs", import.meta.url));
const MB = 2 ** 20;
/** The end RSS passes when it is within this share of the baseline's. */
export const SOAK_TOLERANCE = 0.05;

export interface SoakSample {
  /** Seconds into the soak (nominal: sample k is taken k × sampleSeconds after the start; the last one at the end). */
  seconds: number;
  rssMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  arrayBuffersMb: number;
  /** Size (committed) and use of each V8 heap space, MB (new_space, old_space, code_space, large_object_space, …). */
  heapSpacesMb?: Record<string, { size: number; used: number }>;
  /** Operations completed (a sign-in flow is one) and failed since the previous sample. */
  calls: number;
  errors: number;
}

export interface SoakResult {
  /** Operations per second of the mix at full speed (null when --rate was given). */
  capacity: number | null;
  /** The soak's rate: half the capacity, or --rate. */
  rate: number;
  seconds: number;
  sampleSeconds: number;
  samples: SoakSample[];
  baseline: SoakSample;
  end: SoakSample;
  /** (end − baseline) ÷ baseline RSS, in per cent. */
  rssChangePercent: number;
  withinTolerance: boolean;
  ops: number;
  requests: number;
  errors: number;
  errorSamples: string[];
  /** Heap snapshots written during the soak (they stop the service for seconds and inflate its RSS). */
  snapshots: string[];
}

const fixed = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "—");
const grouped = (n: number) => Math.round(n).toLocaleString("en-US");

function clock(seconds: number): string {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export function formatSample(x: SoakSample): string {
  return `${clock(x.seconds)}  RSS ${fixed(x.rssMb)} MB, heap used ${fixed(x.heapUsedMb)} / total ${fixed(x.heapTotalMb)} MB, external ${fixed(x.externalMb)} MB, array buffers ${fixed(x.arrayBuffersMb)} MB, ${grouped(x.calls)} calls, ${grouped(x.errors)} errors`;
}

/** The per-sample table, in Markdown (bench/RESULTS.md takes it as it is). */
export function formatSoakTable(r: SoakResult): string {
  const head = "| time | RSS MB | heap used MB | heap total MB | external MB | array buffers MB | calls | errors |";
  const rows = r.samples.map((x) => `| ${clock(x.seconds)} | ${fixed(x.rssMb)} | ${fixed(x.heapUsedMb)} | ${fixed(x.heapTotalMb)} | ${fixed(x.externalMb)} | ${fixed(x.arrayBuffersMb)} | ${grouped(x.calls)} | ${grouped(x.errors)} |`);
  return [head, "|---|---|---|---|---|---|---|---|", ...rows].join("\n");
}

export function formatVerdict(r: SoakResult): string {
  const sign = r.rssChangePercent >= 0 ? "+" : "";
  return `RSS at ${clock(r.baseline.seconds)} ${fixed(r.baseline.rssMb)} MB, at the end (${clock(r.end.seconds)}) ${fixed(r.end.rssMb)} MB: ${sign}${fixed(r.rssChangePercent)} % — ${r.withinTolerance ? "within" : "NOT within"} ±${SOAK_TOLERANCE * 100} %`;
}

/** The sample compared with the end: the first at or after the baseline time, at most half-way. */
export function baselineIndex(samples: readonly SoakSample[], o: Pick<SoakOptions, "baselineSeconds" | "seconds">): number {
  const at = Math.min(o.baselineSeconds, o.seconds / 2);
  const i = samples.findIndex((x) => x.seconds >= at);
  return i < 0 ? samples.length - 1 : i;
}

interface ProbeFigures {
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  spaces: Record<string, { size: number; used: number }>;
}

function readProbe(file: string): ProbeFigures | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as ProbeFigures;
  } catch {
    return undefined;
  }
}

function memory(service: Target, probeFile: string): Omit<SoakSample, "seconds" | "calls" | "errors"> {
  const p = readProbe(probeFile);
  return {
    rssMb: rssMb(service.pid),
    heapUsedMb: p ? p.heapUsed / MB : NaN,
    heapTotalMb: p ? p.heapTotal / MB : NaN,
    externalMb: p ? p.external / MB : NaN,
    arrayBuffersMb: p ? p.arrayBuffers / MB : NaN,
    heapSpacesMb: p && Object.fromEntries(Object.entries(p.spaces).map(([name, x]) => [name, { size: x.size / MB, used: x.used / MB }])),
  };
}

/** Full speed, 64 in flight: operations per second of the mix on this machine right now. */
async function measureCapacity(o: BenchOptions, s: MeasureSettings, service: Target, job: Omit<WorkerJob, "seconds" | "warmupSeconds">, users: UserCursor): Promise<number> {
  const soak = o.soak!;
  s.log(`capacity: the mix at full speed (${o.inFlight} in flight) for ${soak.capacitySeconds} s`);
  const r = await runWorker({ ...job, warmupSeconds: s.warmupSeconds, seconds: soak.capacitySeconds }, path.join(s.runDir, "worker-capacity.log"));
  advance(users, r.usersUsed);
  const capacity = (r.ops - r.errors) / r.elapsedSeconds;
  s.log(`capacity: ${grouped(capacity)} operations/s (${grouped(r.ops)} in ${fixed(r.elapsedSeconds)} s, ${r.errors} errors${r.errors ? `: ${r.errorSamples.join("; ")}` : ""})`);
  if (!(capacity > 0)) throw new Error(`the mix did not run: ${r.errorSamples.join("; ")}`);
  return capacity;
}

export async function runSoak(o: BenchOptions, s: MeasureSettings, population: number): Promise<SoakResult> {
  const soak = o.soak!;
  const sessionsFile = path.join(s.runDir, "sessions.json");
  const probeFile = path.join(s.runDir, "service-memory.json");
  const users: UserCursor = { next: 1, population };
  const snapshotFlags = soak.snapshotsAt.length ? ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${s.runDir}`] : [];
  const service = await startService({
    nodeFlags: [...o.serviceNodeFlags, `--import=${PROBE}`, ...snapshotFlags],
    databaseUrl: o.databaseUrl,
    redisUrl: o.redisUrl,
    redisPrefix: o.redisPrefix,
    logFile: path.join(s.runDir, "service.log"),
    extraEnv: { MEMORY_PROBE_OUT: probeFile },
  });
  const timers: NodeJS.Timeout[] = [];
  try {
    await signInSessions(o, s, service, users, sessionsFile);
    const job = { url: service.url, scenario: { kind: "mix" as const, sessionsFile, users }, inFlight: o.inFlight, connections: o.connections };
    const capacity = soak.rate === undefined ? await measureCapacity(o, s, service, job, users) : null;
    const rate = soak.rate ?? capacity! / 2;
    s.log(`soak: ${grouped(rate)} operations/s (${capacity === null ? "--rate" : "half the capacity"}) for ${clock(soak.seconds)}, a sample every ${soak.sampleSeconds} s; RSS must end within ±${SOAK_TOLERANCE * 100} % of the sample at ${clock(Math.min(soak.baselineSeconds, soak.seconds / 2))}`);

    const samples: SoakSample[] = [];
    let [ops, errors, lastOps, lastErrors, started] = [0, 0, 0, 0, 0];
    const take = (seconds: number) => {
      const sample: SoakSample = { seconds, ...memory(service, probeFile), calls: ops - lastOps, errors: errors - lastErrors };
      [lastOps, lastErrors] = [ops, errors];
      samples.push(sample);
      s.log(`  ${formatSample(sample)}`);
    };
    const snapshots: string[] = [];
    // The job goes to the worker when it starts: the cursor as the capacity run left it.
    const r = await runWorker({ ...job, warmupSeconds: 0, seconds: soak.seconds, rate }, path.join(s.runDir, "worker-soak.log"), {
      onReady: () => {
        started = Date.now();
        take(0);
        // Each sample at its own time from the start, so that the intervals do not drift.
        for (let k = 1; k * soak.sampleSeconds < soak.seconds; k++) timers.push(setTimeout(() => take(k * soak.sampleSeconds), started + k * soak.sampleSeconds * 1000 - Date.now()));
        for (const at of soak.snapshotsAt.filter((t) => t < soak.seconds)) {
          timers.push(
            setTimeout(() => {
              s.log(`  ${clock(at)}  heap snapshot (the service stops while it writes it)`);
              snapshots.push(clock(at));
              process.kill(service.pid, "SIGUSR2");
            }, at * 1000),
          );
        }
      },
      onProgress: (o, e) => ([ops, errors] = [o, e]),
    });
    timers.forEach(clearTimeout);
    [ops, errors] = [r.ops, r.errors];
    take(soak.seconds);
    advance(users, r.usersUsed);

    const baseline = samples[baselineIndex(samples, soak)]!;
    const end = samples[samples.length - 1]!;
    const rssChangePercent = ((end.rssMb - baseline.rssMb) / baseline.rssMb) * 100;
    return {
      capacity,
      rate,
      seconds: soak.seconds,
      sampleSeconds: soak.sampleSeconds,
      samples,
      baseline,
      end,
      rssChangePercent,
      withinTolerance: Math.abs(rssChangePercent) <= SOAK_TOLERANCE * 100,
      ops: r.ops,
      requests: r.requests,
      errors: r.errors,
      errorSamples: r.errorSamples,
      snapshots: await snapshotFiles(s.runDir, snapshots.length),
    };
  } finally {
    timers.forEach(clearTimeout);
    await service.stop();
    // The sessions' tokens are live credentials of the bench database: not kept.
    await rm(sessionsFile, { force: true });
  }
}

async function snapshotFiles(dir: string, expected: number): Promise<string[]> {
  if (!expected) return [];
  return (await readdir(dir)).filter((f) => f.endsWith(".heapsnapshot")).map((f) => path.join(dir, f));
}
