// Per-run isolation: every test run gets its own PostgreSQL databases (identity_t_<run>…)
// and Redis key prefix (t:<run>:), so runs never collide; hooks.ts removes them at the end.
import { randomBytes } from "node:crypto";

/** The run's id and counters, one per process: the root hooks (hooks.ts, which mocha requires) and
 * some test files can get this module as separate instances, and all must name the same run and
 * never hand out the same name twice (else the hooks miss databases and keys of the run). */
interface RunState {
  id: string;
  databases: number;
  prefixes: number;
}
const RUN_KEY = Symbol.for("identity.test.run");
const run: RunState = ((globalThis as Record<symbol, RunState | undefined>)[RUN_KEY] ??= {
  id: `${Date.now().toString(36)}${randomBytes(3).toString("hex")}`,
  databases: 0,
  prefixes: 0,
});

export const RUN_ID = run.id;
export const PG_ADMIN_URL = process.env.TEST_PG_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379/0";
export const DB_PREFIX = `identity_t_${RUN_ID}`;
export const REDIS_PREFIX = `t:${RUN_ID}:`;

/** A database URL no one has used yet in this run (created on first connect by the service). */
export function uniqueDatabaseUrl(label = "db"): string {
  const name = `${DB_PREFIX}_${label.replace(/[^a-z0-9_]/gi, "").toLowerCase()}_${++run.databases}`;
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

/** A Redis key prefix no one has used yet in this run. */
export function uniqueRedisPrefix(label = "r"): string {
  return `${REDIS_PREFIX}${label}${++run.prefixes}:`;
}

/** Environment for a service under test: its own database and key prefix, quiet logs. */
export function testEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: "test",
    LOG_LEVEL: "silent",
    PORT: "0",
    HOST: "127.0.0.1",
    DATABASE_URL: uniqueDatabaseUrl(),
    REDIS_URL,
    REDIS_KEY_PREFIX: uniqueRedisPrefix(),
    SERVER_SECRET: "test-secret-test-secret-test-secret-0123456789",
    ...extra,
  };
}
