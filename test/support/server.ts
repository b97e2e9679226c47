// Starts the real app in-process on a free port with its own database and Redis prefix.
import { Writable } from "node:stream";
import { startApp, type App } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { testEnv } from "./env.js";

/** Fixed code of the test identifiers (phone numbers starting with TEST_PHONE_PREFIX). */
export const TEST_CODE = "424242";
export const TEST_PHONE_PREFIX = "+1555";

export interface TestServer {
  app: App;
  url: string;
  port: number;
  /** The log lines the server wrote (JSON objects), e.g. to read development OTP codes. */
  logs: Array<Record<string, unknown>>;
  env: Record<string, string>;
  close(): Promise<void>;
}

/**
 * Env for a test server: test identifiers on (+1555… get TEST_CODE) and a per-IP limit high
 * enough for a suite that signs up many users from 127.0.0.1. Pass `share` to run a second
 * instance on the same stores (same database, Redis prefix and secret).
 */
export function testServerEnv(extra: Record<string, string> = {}, share?: Record<string, string>): Record<string, string> {
  const base = testEnv({
    // API only: the job worker has its own tests (pass ROLE=all to run both).
    ROLE: "api",
    OTP_TEST_IDENTIFIERS: TEST_PHONE_PREFIX,
    OTP_TEST_CODE: TEST_CODE,
    OTP_REQUESTS_PER_IP_PER_HOUR: "100000",
    SHUTDOWN_GRACE_SECONDS: "2",
  });
  const shared: Record<string, string> = share ? { DATABASE_URL: share.DATABASE_URL!, REDIS_KEY_PREFIX: share.REDIS_KEY_PREFIX!, SERVER_SECRET: share.SERVER_SECRET! } : {};
  return { ...base, ...shared, ...extra };
}

export async function startTestServer(extra: Record<string, string> = {}, share?: Record<string, string>): Promise<TestServer> {
  const env = testServerEnv({ LOG_LEVEL: "info", ...extra }, share);
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const config = loadConfig(env);
  const app = await startApp(config, createLogger(config.logLevel, {}, sink));
  if (!app.server) throw new Error("startTestServer needs ROLE api or all");
  return { app, url: app.server.url, port: app.server.port, logs, env, close: () => app.close() };
}
