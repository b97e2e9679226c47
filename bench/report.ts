// The run's figures: the machine, one line per row, the final table and the JSON file.
import { cpus, loadavg, totalmem } from "node:os";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { RowId } from "./rows.js";
import type { SoakResult } from "./soak.js";
import type { Latencies } from "./stats.js";

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  h2load?: string;
  /** 1-minute load average when the run started: other work on the machine skews the figures. */
  loadAverage: number;
}

export function describeMachine(h2load: string | undefined): Machine {
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model.trim() ?? "unknown", memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, h2load, loadAverage: Math.round(loadavg()[0]! * 100) / 100 };
}

export interface RowResult extends Latencies {
  id: RowId;
  title: string;
  unit: "req/s" | "flows/s";
  loadGenerator: "h2load" | "node";
  /** Successful operations (requests or flows) per second. */
  rate: number;
  ops: number;
  /** RPCs sent (flows: three per flow). */
  requests: number;
  errors: number;
  errorSamples: string[];
  seconds: number;
  serverCpuSeconds: number;
  /** Server CPU per successful operation: the per-request cost. */
  serverCpuMsPerOp: number;
  /** PostgreSQL and Redis CPU per successful operation (all their processes on the machine). */
  storesCpuMsPerOp: number;
  /** Peak RSS of the server during the row (since its start where the peak cannot be reset). */
  peakRssMb: number;
  /** rate ÷ the grpc-js echo ceiling's rate (null when that row did not run). */
  ratioToGrpcJs: number | null;
}

export interface RowFailure {
  id: RowId;
  title: string;
  failed: string;
}

/** The service's memory with the run's sessions live: after signing them in, and at rest after the rows. */
export interface ServiceMemory {
  sessions: number;
  afterSignIn: MemorySample;
  /** After the last row and `idleSeconds` without load (V8 shrinks its heap when idle). */
  atRest?: MemorySample & { idleSeconds: number };
}

export interface MemorySample {
  rssMb: number;
  /** V8 heap in use (nodejs_heap_size_used_bytes of /metrics): live objects plus garbage not yet collected. */
  heapUsedMb: number;
}

export interface Report {
  startedAt: string;
  command: string;
  machine: Machine;
  options: Record<string, unknown>;
  database: { users: number; sessions: number; auditLogs: number };
  peakRssResettable: boolean;
  rows: Array<RowResult | RowFailure>;
  serviceMemory?: ServiceMemory;
}

/** What `--soak` writes: the run's context and the soak's samples and verdict (bench/soak.ts). */
export interface SoakReport extends Omit<Report, "rows" | "peakRssResettable" | "serviceMemory"> {
  soak: SoakResult;
}

const fixed = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : "—");
const grouped = (n: number) => Math.round(n).toLocaleString("en-US");

export function formatRow(r: RowResult): string {
  return `${grouped(r.rate)} ${r.unit}, p50 ${fixed(r.p50Ms, 2)} ms, p99 ${fixed(r.p99Ms, 2)} ms, p99.9 ${fixed(r.p999Ms, 2)} ms, ${r.errors} errors, server ${fixed(r.serverCpuSeconds, 1)} CPU s (${fixed(r.serverCpuMsPerOp, 3)} ms/op; stores ${fixed(r.storesCpuMsPerOp, 3)} ms/op), peak RSS ${fixed(r.peakRssMb, 0)} MB`;
}

export function formatTable(rows: Report["rows"]): string {
  const header = ["row", "load", "rate", "unit", "p50 ms", "p99 ms", "p99.9 ms", "errors", "CPU s", "CPU ms/op", "stores ms/op", "peak RSS MB", "× grpc-js"];
  const lines = rows.map((r) =>
    "failed" in r
      ? [r.id, "—", "failed", ...header.slice(3).map(() => "")]
      : [
          r.id,
          r.loadGenerator,
          grouped(r.rate),
          r.unit,
          fixed(r.p50Ms, 2),
          fixed(r.p99Ms, 2),
          fixed(r.p999Ms, 2),
          String(r.errors),
          fixed(r.serverCpuSeconds, 1),
          fixed(r.serverCpuMsPerOp, 3),
          fixed(r.storesCpuMsPerOp, 3),
          fixed(r.peakRssMb, 0),
          r.ratioToGrpcJs === null ? "—" : fixed(r.ratioToGrpcJs, 2),
        ],
  );
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cells: string[]) => cells.map((c, i) => (i < 2 || i === 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const failures = rows.filter((r): r is RowFailure => "failed" in r).map((r) => `${r.id} failed: ${r.failed}`);
  return [format(header), widths.map((w) => "-".repeat(w)).join("  "), ...lines.map(format), ...failures].join("\n");
}

export function formatMemory(m: ServiceMemory): string {
  const one = (x: MemorySample) => `RSS ${fixed(x.rssMb, 0)} MB (V8 heap in use ${fixed(x.heapUsedMb, 0)} MB)`;
  const rest = m.atRest ? `; at rest after the rows (${m.atRest.idleSeconds} s idle): ${one(m.atRest)}` : "";
  return `service memory with ${grouped(m.sessions)} live sessions: after signing them in, ${one(m.afterSignIn)}${rest}`;
}

/** Writes a run's figures (the rows' Report, or a soak's) to <outDir>/<startedAt>.json. */
export async function writeReport(outDir: string, report: Report | SoakReport): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const file = path.join(outDir, `${report.startedAt.replace(/[:.]/g, "-")}.json`);
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}
