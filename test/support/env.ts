// Per-run isolation: every test run gets its own PostgreSQL databases (identity_t_<run>…)
// and Redis key prefix (t:<run>:), so runs never collide; hooks.ts removes them at the end.
import { randomBytes } from "node:crypto";

export const RUN_ID = `${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
export const PG_ADMIN_URL = process.env.TEST_PG_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379/0";
export const DB_PREFIX = `identity_t_${RUN_ID}`;
export const REDIS_PREFIX = `t:${RUN_ID}:`;

let dbCounter = 0;

/** A database URL no one has used yet in this run (created on first connect by the service). */
export function uniqueDatabaseUrl(label = "db"): string {
  const name = `${DB_PREFIX}_${label.replace(/[^a-z0-9_]/gi, "").toLowerCase()}_${++dbCounter}`;
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

let prefixCounter = 0;

/** A Redis key prefix no one has used yet in this run. */
export function uniqueRedisPrefix(label = "r"): string {
  return `${REDIS_PREFIX}${label}${++prefixCounter}:`;
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
