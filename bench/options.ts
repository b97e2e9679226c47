// Command line of `npm run bench`.
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { ROW_IDS, type RowId } from "./rows.js";

/** `--soak`: one long run of a mix of reads and writes at a fixed rate, the service's memory sampled as it goes. */
export interface SoakOptions {
  seconds: number;
  /** Operations per second of the mix; unset: half the capacity measured first. */
  rate?: number;
  /** Seconds of the mix at full speed (64 in flight) that measure the capacity. */
  capacitySeconds: number;
  /** A memory sample (and a printed line) this often. */
  sampleSeconds: number;
  /** The sample the end is compared with (the first sample at or after this, at most half the soak). */
  baselineSeconds: number;
  /** Heap snapshots of the service at these seconds into the soak (node's --heapsnapshot-signal), in the run's folder. */
  snapshotsAt: number[];
}

export interface BenchOptions {
  rows: RowId[];
  soak?: SoakOptions;
  smoke: boolean;
  /** Measured window of each row. */
  seconds: number;
  /** Untimed load before each row's window. */
  warmupSeconds: number;
  /** Idle seconds after the rows before the service's memory is sampled at rest. */
  restSeconds: number;
  inFlight: number;
  connections: number;
  /** Sessions signed in for the session-based rows. */
  sessions: number;
  /** Set: seed this many users into the bench database and exit. */
  seedUsers?: number;
  /** Users seeded before a run when the database has none. */
  defaultUsers: number;
  useH2load: boolean;
  profile: boolean;
  /** Extra node flags for the service process (e.g. V8 heap sizes). */
  serviceNodeFlags: string[];
  databaseUrl: string;
  /** DATABASE_PREPARED_STATEMENTS of the service; unset: the service's default. */
  preparedStatements?: boolean;
  redisUrl: string;
  redisPrefix: string;
  outDir: string;
}

function onOff(name: string, raw: string | undefined): boolean | undefined {
  if (raw === undefined) return undefined;
  if (raw !== "on" && raw !== "off") throw new Error(`--${name}: expected on or off, got "${raw}"`);
  return raw === "on";
}

export const USAGE = `npm run bench -- [options]

  --smoke                every row for ~2 s, 200 sessions (the test suite runs this)
  --soak DURATION        instead of the rows: a mix of reads and writes (GetMe, refresh, UpdateProfile, sign-in)
                         at half capacity for DURATION (e.g. 30m, 90s), the service's RSS and V8 heap printed every minute
  --rate N               soak: N operations per second instead of half the measured capacity
  --capacity-seconds N   soak: seconds of the mix at full speed that measure the capacity (default 20; smoke 1)
  --sample-every DUR     soak: a memory sample this often (default 1m; smoke 1s)
  --baseline DUR         soak: the sample the end RSS is compared with (default 5m, at most half the soak)
  --snapshots-at A,B,…   soak: heap snapshots of the service at these times (e.g. 3m,10m), in the run's folder
  --rows a,b,…           rows to run (default: all): ${ROW_IDS.join(", ")}
  --seconds N            measured seconds per row (default 10; smoke 2)
  --warmup N             warm-up seconds per row (default 2; smoke 0.5)
  --rest N               idle seconds after the rows before the service's memory is sampled (default 15; smoke 1)
  --in-flight N          requests (or flows) in flight, every row (default 64)
  --connections N        HTTP/2 connections they are spread over (default 8; HTTP/1.1: one per request in flight)
  --sessions N           sessions signed in for the session rows (default 10000; smoke 200)
  --seed-users N         empty the bench database, seed N users, and exit
  --no-h2load            fixed-request rows use the Node client even when h2load is installed
  --profile              V8 CPU profiles (--cpu-prof) of every server, in the run's folder
  --node-flags=FLAGS     node flags for the service, after those of npm start (package.json), e.g. --node-flags="--max-semi-space-size=16"
  --database-url URL     default postgres://postgres@127.0.0.1:5432/identity_bench
  --prepared-statements on|off   the service's DATABASE_PREPARED_STATEMENTS (default: its own default, on)
  --redis-url URL        default redis://127.0.0.1:6379/0
  --redis-prefix P       default bench: (its keys are deleted at the start of a run)
  --out DIR              default bench/out`;

/** "30m", "90s", "1h" or plain seconds, in seconds. */
export function parseDuration(name: string, raw: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(raw.trim());
  const seconds = m ? Number(m[1]) * { s: 1, m: 60, h: 3600 }[(m[2] ?? "s") as "s" | "m" | "h"] : NaN;
  if (!(seconds > 0)) throw new Error(`--${name}: expected a duration such as 30m, 90s or 1h, got "${raw}"`);
  return seconds;
}

function positive(name: string, raw: string | undefined, def: number, integer = true): number {
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!(n > 0) || (integer && !Number.isInteger(n))) throw new Error(`--${name}: expected a positive ${integer ? "whole " : ""}number, got "${raw}"`);
  return n;
}

export function parseOptions(argv: string[]): BenchOptions | "help" {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      help: { type: "boolean" },
      smoke: { type: "boolean" },
      soak: { type: "string" },
      rate: { type: "string" },
      "capacity-seconds": { type: "string" },
      "sample-every": { type: "string" },
      baseline: { type: "string" },
      "snapshots-at": { type: "string" },
      rows: { type: "string" },
      seconds: { type: "string" },
      warmup: { type: "string" },
      rest: { type: "string" },
      "in-flight": { type: "string" },
      connections: { type: "string" },
      sessions: { type: "string" },
      "seed-users": { type: "string" },
      "no-h2load": { type: "boolean" },
      profile: { type: "boolean" },
      "node-flags": { type: "string" },
      "database-url": { type: "string" },
      "prepared-statements": { type: "string" },
      "redis-url": { type: "string" },
      "redis-prefix": { type: "string" },
      out: { type: "string" },
    },
  });
  if (values.help) return "help";
  const smoke = values.smoke ?? false;
  const rows = values.rows ? values.rows.split(",").map((r) => r.trim()) : [...ROW_IDS];
  const unknown = rows.filter((r) => !(ROW_IDS as readonly string[]).includes(r));
  if (unknown.length) throw new Error(`--rows: unknown ${unknown.join(", ")} (rows: ${ROW_IDS.join(", ")})`);
  const inFlight = positive("in-flight", values["in-flight"], 64);
  const sessions = positive("sessions", values.sessions, smoke ? 200 : 10_000);
  if (sessions < inFlight) throw new Error(`--sessions (${sessions}) must be at least --in-flight (${inFlight}): a session is refreshed by one call at a time`);
  const soakOnly = ["rate", "capacity-seconds", "sample-every", "baseline", "snapshots-at"] as const;
  const stray = soakOnly.filter((name) => values[name] !== undefined && values.soak === undefined);
  if (stray.length) throw new Error(`--${stray.join(", --")}: only with --soak`);
  const soak: SoakOptions | undefined =
    values.soak === undefined
      ? undefined
      : {
          seconds: parseDuration("soak", values.soak),
          rate: values.rate === undefined ? undefined : positive("rate", values.rate, 0, false),
          capacitySeconds: positive("capacity-seconds", values["capacity-seconds"], smoke ? 1 : 20, false),
          sampleSeconds: values["sample-every"] === undefined ? (smoke ? 1 : 60) : parseDuration("sample-every", values["sample-every"]),
          baselineSeconds: values.baseline === undefined ? 300 : parseDuration("baseline", values.baseline),
          snapshotsAt: values["snapshots-at"]?.split(",").map((t) => parseDuration("snapshots-at", t)) ?? [],
        };
  return {
    rows: ROW_IDS.filter((id) => rows.includes(id)),
    soak,
    smoke,
    seconds: positive("seconds", values.seconds, smoke ? 2 : 10, false),
    warmupSeconds: values.warmup === "0" ? 0 : positive("warmup", values.warmup, smoke ? 0.5 : 2, false),
    restSeconds: positive("rest", values.rest, smoke ? 1 : 15, false),
    inFlight,
    connections: positive("connections", values.connections, 8),
    sessions,
    seedUsers: values["seed-users"] === undefined ? undefined : positive("seed-users", values["seed-users"], 0),
    defaultUsers: smoke ? 1_000 : 10_000,
    useH2load: !values["no-h2load"],
    profile: values.profile ?? false,
    serviceNodeFlags: values["node-flags"]?.split(/\s+/).filter(Boolean) ?? [],
    databaseUrl: values["database-url"] ?? "postgres://postgres@127.0.0.1:5432/identity_bench",
    preparedStatements: onOff("prepared-statements", values["prepared-statements"]),
    redisUrl: values["redis-url"] ?? "redis://127.0.0.1:6379/0",
    redisPrefix: values["redis-prefix"] ?? "bench:",
    outDir: values.out ?? fileURLToPath(new URL("./out/", import.meta.url)),
  };
}
