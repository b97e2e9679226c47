// Measures one row: warm-up, then the window, with the server sampled (CPU seconds, peak RSS,
// OK calls) right before and right after it. Fixed requests go through h2load when it is
// available, everything else through a Node load worker.
import path from "node:path";
import type { WorkerJob } from "./load/protocol.js";
import { createRpcClient, type RawRequest } from "./load/rpc-client.js";
import { runH2load } from "./h2load.js";
import { runWorker } from "./node-load.js";
import { cpuSeconds, peakRssMb, resetPeakRss, rssMb, storesCpu, storesCpuSpent } from "./proc.js";
import type { RowResult } from "./report.js";
import type { Latencies } from "./stats.js";
import type { RowDef, RowLoad } from "./rows.js";
import type { Target } from "./targets.js";

export interface MeasureSettings {
  seconds: number;
  warmupSeconds: number;
  inFlight: number;
  connections: number;
  /** h2load replays fixed requests; otherwise the Node worker does. */
  h2load: boolean;
  /** Folder for the worker logs and h2load scratch files. */
  runDir: string;
  log: (line: string) => void;
}

interface Sample {
  cpu: number;
  stores: Map<string, number>;
  ok: number;
}

async function sample(target: Target, procedure: string | undefined): Promise<Sample> {
  const ok = procedure ? await target.okCalls(procedure) : 0;
  return { cpu: cpuSeconds(target.pid), stores: storesCpu(), ok };
}

const spent = (before: Sample, after: Sample) => ({ cpu: after.cpu - before.cpu, stores: storesCpuSpent(before.stores, after.stores) });

/** One call before the load: a wrong token or route fails the row at once, with the reason. */
async function probe(url: string, request: RawRequest): Promise<void> {
  const client = createRpcClient(url, request.wire, { connections: 1, inFlight: 1 });
  try {
    await client.send(request);
  } finally {
    client.close();
  }
}

/** A progress line every two seconds while the window runs. */
function ticker(row: RowDef, target: Target, s: MeasureSettings, progress: () => string): () => void {
  const started = Date.now();
  let lastCpu = cpuSeconds(target.pid);
  let last = started;
  const timer = setInterval(() => {
    const now = Date.now();
    const cpu = cpuSeconds(target.pid);
    const cores = (cpu - lastCpu) / ((now - last) / 1000);
    [lastCpu, last] = [cpu, now];
    s.log(`  ${row.id}: ${((now - started) / 1000).toFixed(0)}/${s.seconds} s, server ${cores.toFixed(2)} cores, RSS ${rssMb(target.pid).toFixed(0)} MB${progress()}`);
  }, 2000);
  return () => clearInterval(timer);
}

function result(
  row: RowDef,
  loadGenerator: RowResult["loadGenerator"],
  figures: { ops: number; requests: number; errors: number; errorSamples: string[]; seconds: number } & Latencies,
  cpu: { cpu: number; stores: number },
  peak: number,
): RowResult {
  const good = figures.ops - figures.errors;
  const perOp = (seconds: number) => (good > 0 ? (seconds * 1000) / good : NaN);
  return {
    id: row.id,
    title: row.title,
    unit: row.unit,
    loadGenerator,
    rate: good / figures.seconds,
    ...figures,
    serverCpuSeconds: cpu.cpu,
    serverCpuMsPerOp: perOp(cpu.cpu),
    storesCpuMsPerOp: perOp(cpu.stores),
    peakRssMb: peak,
    ratioToGrpcJs: null,
  };
}

async function withH2load(row: RowDef, load: Extract<RowLoad, { kind: "fixed" }>, target: Target, s: MeasureSettings): Promise<RowResult> {
  const opts = { url: target.url, request: load.request, inFlight: s.inFlight, connections: s.connections, scratch: path.join(s.runDir, `h2load-${row.id}`) };
  if (s.warmupSeconds > 0) await runH2load({ ...opts, seconds: s.warmupSeconds });
  resetPeakRss(target.pid);
  const before = await sample(target, load.procedure);
  const stop = ticker(row, target, s, () => "");
  const r = await runH2load({ ...opts, seconds: s.seconds }).finally(stop);
  const after = await sample(target, load.procedure);
  // h2load counts HTTP statuses only: a gRPC error is a 200 the server did not count as OK.
  const grpcErrors = load.request.wire === "grpc" ? Math.max(0, r.succeeded - (after.ok - before.ok)) : 0;
  const errors = r.failed + grpcErrors;
  const errorSamples = errors ? [`${r.failed} failed at the HTTP level, ${grpcErrors} gRPC errors`] : [];
  return result(row, "h2load", { ops: r.done, requests: r.done, errors, errorSamples, seconds: r.seconds, p50Ms: r.p50Ms, p99Ms: r.p99Ms, p999Ms: r.p999Ms }, spent(before, after), peakRssMb(target.pid));
}

async function withWorker(row: RowDef, load: RowLoad, target: Target, s: MeasureSettings): Promise<{ row: RowResult; usersUsed: number }> {
  const scenario = load.kind === "fixed" ? { kind: "fixed" as const, wire: load.request.wire, verb: load.request.verb, path: load.request.path, bodyBase64: load.request.body.toString("base64"), headers: load.request.headers } : load.scenario;
  const job: WorkerJob = { url: target.url, scenario, inFlight: s.inFlight, connections: s.connections, warmupSeconds: s.warmupSeconds, seconds: s.seconds };
  let before: Sample | undefined;
  let stop = () => {};
  let done = 0;
  const r = await runWorker(job, path.join(s.runDir, `worker-${row.id}.log`), {
    onReady: async () => {
      resetPeakRss(target.pid);
      before = await sample(target, undefined);
      stop = ticker(row, target, s, () => `, ${done.toLocaleString("en-US")} ${row.unit === "flows/s" ? "flows" : "requests"} done`);
    },
    onProgress: (ops) => (done = ops),
  }).finally(() => stop());
  const after = await sample(target, undefined);
  return { row: result(row, "node", { ops: r.ops, requests: r.requests, errors: r.errors, errorSamples: r.errorSamples, seconds: r.elapsedSeconds, p50Ms: r.p50Ms, p99Ms: r.p99Ms, p999Ms: r.p999Ms }, spent(before!, after), peakRssMb(target.pid)), usersUsed: r.usersUsed };
}

export async function measureRow(row: RowDef, load: RowLoad, target: Target, s: MeasureSettings): Promise<{ row: RowResult; usersUsed: number }> {
  if (load.kind === "fixed") await probe(target.url, load.request);
  if (load.kind === "fixed" && s.h2load) return { row: await withH2load(row, load, target, s), usersUsed: 0 };
  return withWorker(row, load, target, s);
}
