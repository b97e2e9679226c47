// `npm run bench`: measures the service and two echo ceilings on this machine, one row after
// the other, and ends with a table and bench/out/<timestamp>.json; or, with --soak, one long
// run of a mix at half capacity with the service's memory every minute. See bench/RESULTS.md.
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { clearRedisPrefix, prepareDatabase, seedUsers, tableSizes } from "./database.js";
import { h2loadVersion } from "./h2load.js";
import type { MeasureSettings } from "./measure.js";
import { parseOptions, USAGE, type BenchOptions } from "./options.js";
import { describeMachine, formatMemory, formatTable, writeReport, type RowResult, type SoakReport } from "./report.js";
import { buildService } from "./processes.js";
import { CEILING_ROW, ROWS } from "./rows.js";
import { runRows } from "./run-rows.js";
import { formatSoakTable, formatVerdict, runSoak } from "./soak.js";
import { startScriptNodeFlags } from "./targets.js";

const log = (line: string) => console.log(line);
const grouped = (n: number) => n.toLocaleString("en-US");

async function seed(o: BenchOptions, count: number): Promise<void> {
  log(`seeding ${grouped(count)} users into ${o.databaseUrl} (every table is emptied first)`);
  const started = Date.now();
  await seedUsers(o.databaseUrl, count, (done) => log(`  ${grouped(done)} users`));
  log(`seeded in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function run(o: BenchOptions): Promise<void> {
  await prepareDatabase(o.databaseUrl);
  if (o.seedUsers !== undefined) return seed(o, o.seedUsers);

  const startedAt = new Date().toISOString();
  const runDir = path.join(o.outDir, startedAt.replace(/[:.]/g, "-"));
  await mkdir(runDir, { recursive: true });
  const h2load = o.useH2load ? await h2loadVersion() : undefined;
  const machine = describeMachine(h2load);
  log(`machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, node ${machine.node}, ${h2load ?? "no h2load"}, load average ${machine.loadAverage}`);
  if (!h2load) log(o.useH2load ? "h2load not found (apt-get install nghttp2-client): fixed-request rows use the Node load worker" : "--no-h2load: fixed-request rows use the Node load worker");
  if ((await tableSizes(o.databaseUrl)).users === 0) await seed(o, o.defaultUsers);
  const database = await tableSizes(o.databaseUrl);
  log(`database: ${grouped(database.users)} users, ${grouped(database.sessions)} sessions, ${grouped(database.auditLogs)} audit rows; logs in ${runDir}`);
  log(`redis: ${grouped(await clearRedisPrefix(o.redisUrl, o.redisPrefix))} keys under "${o.redisPrefix}" deleted`);

  if (o.soak || o.rows.some((id) => ROWS[id].target === "service")) {
    log("building the service (npm run build), as npm start does");
    await buildService();
  }

  const settings: MeasureSettings = { seconds: o.seconds, warmupSeconds: o.warmupSeconds, inFlight: o.inFlight, connections: o.connections, h2load: Boolean(h2load), runDir, log };
  const command = `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim();
  if (o.soak) return soak(o, settings, { startedAt, command, machine, database });
  const { rows, peakRssResettable, serviceMemory } = await runRows(o, settings, database.users);

  const ceiling = rows.find((r): r is RowResult => r.id === CEILING_ROW && !("failed" in r));
  for (const r of rows) if (ceiling && !("failed" in r)) r.ratioToGrpcJs = r.rate / ceiling.rate;
  const options = { rows: o.rows, seconds: o.seconds, warmupSeconds: o.warmupSeconds, restSeconds: o.restSeconds, inFlight: o.inFlight, connections: o.connections, sessions: o.sessions, smoke: o.smoke, profile: o.profile, serviceNodeFlags: [...startScriptNodeFlags(), ...o.serviceNodeFlags] };
  const file = await writeReport(o.outDir, { startedAt, command, machine, options, database, peakRssResettable, rows, serviceMemory });
  log("");
  log(`${o.inFlight} in flight on every row (HTTP/2: over ${o.connections} connections); ${o.seconds} s per row after ${o.warmupSeconds} s of warm-up; service: node ${options.serviceNodeFlags.join(" ")}`);
  log(formatTable(rows));
  if (!peakRssResettable) log("peak RSS could not be reset between rows: it is the peak since the server started");
  if (serviceMemory) log(formatMemory(serviceMemory));
  log(`figures: ${file}`);
  if (rows.some((r) => "failed" in r)) process.exitCode = 1;
}

async function soak(o: BenchOptions, settings: MeasureSettings, context: Pick<SoakReport, "startedAt" | "command" | "machine" | "database">): Promise<void> {
  const result = await runSoak(o, settings, context.database.users);
  const options = { soak: o.soak, inFlight: o.inFlight, connections: o.connections, sessions: o.sessions, smoke: o.smoke, serviceNodeFlags: [...startScriptNodeFlags(), ...o.serviceNodeFlags] };
  const file = await writeReport(o.outDir, { ...context, options, soak: result });
  log("");
  log(`soak of ${grouped(Math.round(result.seconds))} s at ${grouped(Math.round(result.rate))} operations/s${result.capacity === null ? "" : ` (half of ${grouped(Math.round(result.capacity))})`}: ${grouped(result.ops)} operations, ${grouped(result.requests)} RPCs, ${grouped(result.errors)} errors${result.errors ? ` (${result.errorSamples.join("; ")})` : ""}; service: node ${options.serviceNodeFlags.join(" ")}`);
  log(formatSoakTable(result));
  log(formatVerdict(result));
  if (result.snapshots.length) log(`heap snapshots (the RSS around them is inflated): ${result.snapshots.join(", ")}`);
  log(`figures: ${file}`);
}

let options: BenchOptions | "help";
try {
  options = parseOptions(process.argv.slice(2));
} catch (err) {
  console.error(`${(err as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
if (options === "help") console.log(USAGE);
else await run(options);
