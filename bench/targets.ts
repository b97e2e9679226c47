// The servers the rows measure, each in its own process: the identity service (as `npm start`
// runs it, dist/src/main.js, against the bench's database and Redis prefix) and the two echo servers
// of the ceiling rows.
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { ServerMessage } from "./servers/ipc.js";
import { exited, forkTs, freePort, spawnJs, stopChild } from "./processes.js";
import { BENCH_OTP_CODE, TEST_PHONE_PREFIX } from "./users.js";

export type TargetKind = "service" | "echo-connect" | "echo-grpcjs";

export interface Target {
  readonly kind: TargetKind;
  readonly pid: number;
  readonly url: string;
  /** Calls of `procedure` ("/pkg.Service/Method") the server completed with OK so far. */
  okCalls(procedure: string): Promise<number>;
  /** The service's V8 heap in use, MB (from its /metrics); undefined for the echo servers. */
  heapUsedMb?(): Promise<number>;
  stop(): Promise<void>;
}

export interface ProcessOptions {
  logFile: string;
  /** Write a V8 CPU profile of the server's whole life into this folder. */
  cpuProfDir?: string;
}

export interface ServiceOptions extends ProcessOptions {
  nodeFlags: string[];
  databaseUrl: string;
  preparedStatements?: boolean;
  redisUrl: string;
  redisPrefix: string;
  /** Added to the service's environment (the soak's memory probe). */
  extraEnv?: NodeJS.ProcessEnv;
}

const profiling = (o: ProcessOptions) => (o.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${o.cpuProfDir}`] : []);

/** What `npm start` runs after building (see buildService). */
const SERVICE_ENTRY = fileURLToPath(new URL("../dist/src/main.js", import.meta.url));

/** The node flags `npm start` gives the service (package.json, scripts.start), so that the bench runs it the same way. */
export function startScriptNodeFlags(): string[] {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { scripts: { start: string } };
  const flags = /\bnode((?: --\S+)*) dist\/src\/main\.js\b/.exec(pkg.scripts.start);
  if (!flags) throw new Error(`package.json scripts.start does not run "node … dist/src/main.js": ${pkg.scripts.start}`);
  return flags[1]!.split(" ").filter(Boolean);
}
const ECHO_ENTRIES = {
  "echo-connect": fileURLToPath(new URL("./servers/echo-connect.ts", import.meta.url)),
  "echo-grpcjs": fileURLToPath(new URL("./servers/echo-grpcjs.ts", import.meta.url)),
};
const READY_TIMEOUT_MS = 60_000;

/**
 * The service's environment: production-like except that test identifiers (+1555…) sign in
 * with a fixed code, and the limits that would stop one client at 127.0.0.1 signing in
 * thousands of users are raised (the resend cooldown is off so that a small user population
 * can be cycled through; limit checks still run on every call).
 */
export function serviceEnv(o: ServiceOptions, port: number): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: "development",
    ROLE: "api",
    HOST: "127.0.0.1",
    PORT: String(port),
    LOG_LEVEL: "warn",
    DATABASE_URL: o.databaseUrl,
    ...(o.preparedStatements === undefined ? {} : { DATABASE_PREPARED_STATEMENTS: String(o.preparedStatements) }),
    REDIS_URL: o.redisUrl,
    REDIS_KEY_PREFIX: o.redisPrefix,
    SERVER_SECRET: "bench-secret-bench-secret-bench-secret-0123456789",
    OTP_TEST_IDENTIFIERS: TEST_PHONE_PREFIX,
    OTP_TEST_CODE: BENCH_OTP_CODE,
    OTP_REQUESTS_PER_IP_PER_HOUR: "100000000",
    OTP_SENDS_PER_IDENTIFIER_PER_HOUR: "1000000",
    OTP_RESEND_SECONDS: "0",
    SHUTDOWN_GRACE_SECONDS: "2",
    ...o.extraEnv,
  };
}

/** OK calls per procedure from the service's Prometheus counters. */
export function parseOkCalls(metrics: string, procedure: string): number {
  const [, service, method] = procedure.split("/");
  let total = 0;
  for (const line of metrics.split("\n")) {
    if (!line.startsWith("identity_rpc_requests_total{")) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (labels.service === service && labels.method === method && labels.code === "ok") total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

/** A gauge's value from Prometheus text (the first sample of that name). */
export function parseGauge(metrics: string, name: string): number | undefined {
  const line = metrics.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

async function waitReady(child: ChildProcess, url: string, logFile: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let stopped = false;
  void exited(child).then(() => (stopped = true));
  while (Date.now() < deadline) {
    if (stopped) throw new Error(`the service exited during start-up (exit code ${child.exitCode}); see ${logFile}`);
    const ready = await fetch(`${url}/readyz`).then((r) => r.ok, () => false);
    if (ready) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the service was not ready within ${READY_TIMEOUT_MS / 1000} s; see ${logFile}`);
}

export async function startService(o: ServiceOptions): Promise<Target> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // Flags given to the bench come after npm start's: V8 takes the last value of a flag.
  const child = spawnJs(SERVICE_ENTRY, { env: serviceEnv(o, port), logFile: o.logFile, nodeFlags: [...startScriptNodeFlags(), ...o.nodeFlags, ...profiling(o)] });
  try {
    await waitReady(child, url, o.logFile);
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  return {
    kind: "service",
    pid: child.pid!,
    url,
    okCalls: async (procedure) => parseOkCalls(await (await fetch(`${url}/metrics`)).text(), procedure),
    heapUsedMb: async () => (parseGauge(await (await fetch(`${url}/metrics`)).text(), "nodejs_heap_size_used_bytes") ?? NaN) / 2 ** 20,
    stop: () => stopChild(child),
  };
}

export async function startEcho(kind: "echo-connect" | "echo-grpcjs", o: ProcessOptions): Promise<Target> {
  const { logFile } = o;
  const child = forkTs(ECHO_ENTRIES[kind], { logFile, nodeFlags: profiling(o) });
  const [first] = (await Promise.race([once(child, "message"), exited(child).then(() => [undefined])])) as [ServerMessage | undefined];
  if (first?.type !== "listening") {
    await stopChild(child);
    throw new Error(`${kind} did not start; see ${logFile}`);
  }
  const ask = async (): Promise<number> => {
    const reply = once(child, "message") as Promise<[ServerMessage]>;
    child.send({ type: "calls" });
    const [m] = await reply;
    if (m.type !== "calls") throw new Error(`${kind}: unexpected message ${m.type}`);
    return m.ok;
  };
  return { kind, pid: child.pid!, url: `http://127.0.0.1:${first.port}`, okCalls: ask, stop: () => stopChild(child) };
}
