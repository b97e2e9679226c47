// Runs the selected rows one after the other: each against its server (the service, started
// once and shared by its rows; an echo server per ceiling row), signing sessions in first for
// the rows that need them. A row that fails is reported as failed; the others still run.
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import type { SessionTokens, UserCursor } from "./load/protocol.js";
import { measureRow, type MeasureSettings } from "./measure.js";
import { runWorker } from "./node-load.js";
import type { BenchOptions } from "./options.js";
import { resetPeakRss, rssMb } from "./proc.js";
import { formatMemory, formatRow, type MemorySample, type Report, type ServiceMemory } from "./report.js";
import { ROWS, type RowContext } from "./rows.js";
import { startEcho, startService, type Target } from "./targets.js";

const grouped = (n: number) => n.toLocaleString("en-US");

export function advance(users: UserCursor, used: number): void {
  users.next = ((users.next - 1 + used) % users.population) + 1;
}

/** Signs in `o.sessions` sessions through the real OTP flow (untimed) for the session rows. */
export async function signInSessions(o: BenchOptions, s: MeasureSettings, service: Target, users: UserCursor, sessionsFile: string): Promise<string> {
  s.log(`signing in ${grouped(o.sessions)} sessions for the session rows`);
  let reported = Date.now();
  const r = await runWorker(
    { url: service.url, scenario: { kind: "signin", users, sessionsOut: sessionsFile }, inFlight: o.inFlight, connections: o.connections, warmupSeconds: 0, seconds: 600, maxOps: o.sessions },
    path.join(s.runDir, "worker-sessions.log"),
    {
      onProgress: (ops) => {
        if (Date.now() - reported < 5000) return;
        reported = Date.now();
        s.log(`  ${grouped(ops)} sessions`);
      },
    },
  );
  advance(users, r.usersUsed);
  if (r.ops - r.errors < o.inFlight) throw new Error(`only ${r.ops - r.errors} sessions signed in: ${r.errorSamples.join("; ")}`);
  s.log(`  ${grouped(r.ops - r.errors)} sessions in ${r.elapsedSeconds.toFixed(1)} s${r.errors ? `, ${r.errors} failed (${r.errorSamples.join("; ")})` : ""}`);
  return (JSON.parse(await readFile(sessionsFile, "utf8")) as SessionTokens[])[0]!.accessToken;
}

export interface RowsOutcome {
  rows: Report["rows"];
  peakRssResettable: boolean;
  serviceMemory?: ServiceMemory;
}

async function memorySample(service: Target): Promise<MemorySample> {
  return { rssMb: rssMb(service.pid), heapUsedMb: (await service.heapUsedMb?.()) ?? NaN };
}

export async function runRows(o: BenchOptions, s: MeasureSettings, population: number): Promise<RowsOutcome> {
  const sessionsFile = path.join(s.runDir, "sessions.json");
  const ctx: RowContext = { accessToken: "", sessionsFile, users: { next: 1, population } };
  const processOptions = (name: string) => ({ logFile: path.join(s.runDir, `${name}.log`), cpuProfDir: o.profile ? path.join(s.runDir, "profiles", name) : undefined });
  const outcome: RowsOutcome = { rows: [], peakRssResettable: true };
  let service: Target | undefined;
  try {
    for (const id of o.rows) {
      const row = ROWS[id];
      s.log(`${row.id}: ${row.title}`);
      let target: Target | undefined;
      try {
        if (row.target === "service") {
          service ??= await startService({ nodeFlags: o.serviceNodeFlags, databaseUrl: o.databaseUrl, preparedStatements: o.preparedStatements, redisUrl: o.redisUrl, redisPrefix: o.redisPrefix, ...processOptions("service") });
          target = service;
          if (row.sessions && !ctx.accessToken) {
            ctx.accessToken = await signInSessions(o, s, service, ctx.users, sessionsFile);
            outcome.serviceMemory = { sessions: o.sessions, afterSignIn: await memorySample(service) };
          }
        } else {
          target = await startEcho(row.target, processOptions(row.target));
        }
        outcome.peakRssResettable &&= resetPeakRss(target.pid);
        const measured = await measureRow(row, row.load(ctx), target, s);
        advance(ctx.users, measured.usersUsed);
        outcome.rows.push(measured.row);
        s.log(`${row.id}: ${formatRow(measured.row)}${measured.row.errorSamples.length ? ` — errors: ${measured.row.errorSamples.join("; ")}` : ""}`);
      } catch (err) {
        const failed = err instanceof Error ? err.message : String(err);
        outcome.rows.push({ id: row.id, title: row.title, failed });
        s.log(`${row.id}: FAILED: ${failed}`);
      } finally {
        if (target && target !== service) await target.stop();
      }
    }
    if (service && outcome.serviceMemory) {
      s.log(`service at rest for ${o.restSeconds} s`);
      await new Promise((resolve) => setTimeout(resolve, o.restSeconds * 1000));
      outcome.serviceMemory.atRest = { ...(await memorySample(service)), idleSeconds: o.restSeconds };
      s.log(formatMemory(outcome.serviceMemory));
    }
  } finally {
    await service?.stop();
    // The sessions' tokens are live credentials of the bench database: not kept.
    await rm(sessionsFile, { force: true });
  }
  return outcome;
}
