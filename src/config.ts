// Environment configuration (DESIGN §8), validated once at start. A bad value throws a
// ConfigError whose message is one line naming the variable.
import { isIP } from "node:net";

export class ConfigError extends Error {
  override name = "ConfigError";
}

export type NodeEnv = "development" | "production" | "test";
export type Role = "api" | "worker" | "all";

export interface Config {
  nodeEnv: NodeEnv;
  role: Role;
  port: number;
  host: string;
  databaseUrl: string;
  /**
   * DATABASE_DIRECT_URL: the same database without a transaction pooler in between (default:
   * DATABASE_URL). Creating the database, migrations and the job store (Agenda's LISTEN, session
   * advisory locks) connect here; requests go through DATABASE_URL.
   */
  databaseDirectUrl: string;
  /**
   * DATABASE_PREPARED_STATEMENTS: the hot paths' SQL as named prepared statements (src/store/prepared.ts).
   * Default: on, unless DATABASE_DIRECT_URL names another address than DATABASE_URL (a pooler).
   */
  databasePreparedStatements: boolean;
  redisUrl: string;
  /**
   * Which Redis deployment: REDIS_CLUSTER_NODES (seed nodes of a Redis Cluster), REDIS_SENTINELS
   * with REDIS_SENTINEL_NAME (a primary found through Sentinel), or else the server at REDIS_URL.
   */
  redisTopology: RedisTopology;
  /** Prefix of every Redis key this process writes (tests use one per run). */
  redisKeyPrefix: string;
  /** Longest a Redis command may take, queued or sent, before it fails (the call answers `unavailable`). */
  redisCommandTimeoutMs: number;
  mongodbUri?: string;
  logLevel: string;
  tls?: { certFile: string; keyFile: string };
  /** Largest request body accepted, in bytes. */
  maxRequestBytes: number;
  /** Seconds in-flight calls get to finish after SIGTERM/SIGINT. */
  shutdownGraceSeconds: number;
  trustedProxies: string[];
  corsOrigins: string[];
  jwt: {
    keysDir?: string;
    /** Key id that signs new tokens; unset: the newest key file in keysDir (see src/domain/keys.ts). */
    signingKid?: string;
    issuer: string;
    audience: string;
    accessTtlSeconds: number;
    refreshTtlSeconds: number;
    refreshGraceSeconds: number;
  };
  /** SERVER_SECRET: keys every HMAC of the service (OTP codes, verification and refresh tokens); see domain/server-secret.ts. */
  secret?: string;
  otp: {
    ttlSeconds: number;
    maxAttempts: number;
    resendSeconds: number;
    sendsPerIdentifierPerHour: number;
    failuresPerIdentifierPerHour: number;
    requestsPerIpPerHour: number;
    verificationTtlSeconds: number;
    /** Exact identifiers, or phone prefixes ending the list entry (e.g. "+1555"), that get testCode. */
    testIdentifiers: string[];
    testCode?: string;
    allowTestIdentifiersInProduction: boolean;
  };
  smtpUrl?: string;
  emailFrom: string;
  sms?: { apiUrl: string; accountSid: string; authToken: string; from: string };
  /**
   * Push through FCM HTTP v1 (src/notify/push.ts): POST {endpoint}/v1/projects/{projectId}/messages:send,
   * with `Authorization: Bearer accessToken` when set (unset: a local relay adds credentials).
   */
  fcm?: { endpoint: string; projectId: string; accessToken?: string };
  pointsValue: string;
  auditRetentionDays: number;
  webhookUrls: string[];
  webhookSecret?: string;
  /** Failed deliveries to one endpoint before the delivery is dead-lettered. */
  webhookMaxAttempts: number;
  /** First retry delay of a webhook delivery; doubles on every further failure (capped at 6 h). */
  webhookBackoffSeconds: number;
  /** Users with no login (nor activity) for this many days are deactivated by the daily job. */
  inactiveUserDays: number;
  /**
   * ACCOUNT_DELETION_GRACE_DAYS (default 30; decimals allowed, e.g. 0.0001 ≈ 9 s for tests),
   * in seconds: a deleted account can be restored by signing in for this long, then
   * purge-deleted-accounts erases it. 0: DeleteAccount erases at once.
   */
  accountDeletionGraceSeconds: number;
  /** ExportAccountData calls allowed per user and hour. */
  accountExportsPerHour: number;
  /** Rows (or users) one batch of a job handles, in one transaction or statement. */
  jobBatchSize: number;
  /** A job run stops starting new batches after this long; the next run goes on where it stopped. */
  jobTimeBudgetSeconds: number;
}

export interface RedisAddress {
  host: string;
  port: number;
}

/** Credentials for the data nodes of a cluster or Sentinel set (REDIS_USERNAME, REDIS_PASSWORD). */
export interface RedisAuth {
  username?: string;
  password: string;
}

export type RedisTopology =
  | { mode: "standalone" }
  | { mode: "cluster"; nodes: RedisAddress[]; auth?: RedisAuth }
  | { mode: "sentinel"; sentinels: RedisAddress[]; name: string; auth?: RedisAuth; sentinelPassword?: string };

type Env = Record<string, string | undefined>;

function fail(name: string, why: string): never {
  throw new ConfigError(`${name}: ${why}`);
}

function str(env: Env, name: string, def?: string): string | undefined {
  const v = env[name];
  if (v === undefined || v.trim() === "") return def;
  return v.trim();
}

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = str(env, name);
  if (raw === undefined) return def;
  if (!/^-?\d+$/.test(raw)) fail(name, `expected a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) fail(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** A non-negative decimal number of days, as whole seconds. */
function days(env: Env, name: string, def: number, maxDays: number): number {
  const raw = str(env, name);
  if (raw === undefined) return def * 86400;
  if (!/^\d+(\.\d+)?$/.test(raw)) fail(name, `expected a number of days such as 30 or 0.5, got "${raw}"`);
  const n = Number(raw);
  if (n > maxDays) fail(name, `must be at most ${maxDays}, got ${n}`);
  return Math.round(n * 86400);
}

function bool(env: Env, name: string, def: boolean): boolean {
  const raw = str(env, name);
  if (raw === undefined) return def;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  return fail(name, `expected true or false, got "${raw}"`);
}

function list(env: Env, name: string): string[] {
  const raw = str(env, name);
  return raw ? raw.split(",").map((s) => s.trim()).filter(Boolean) : [];
}

function url(env: Env, name: string, protocols: string[], def?: string): string | undefined {
  const raw = str(env, name, def);
  if (raw === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return fail(name, `not a valid URL`);
  }
  if (!protocols.includes(u.protocol)) fail(name, `expected a ${protocols.join(" or ")} URL, got "${u.protocol}"`);
  return raw;
}

/** A comma-separated list of host:port (IPv6 hosts in brackets: [::1]:7000). */
function addresses(env: Env, name: string): RedisAddress[] {
  return list(env, name).map((entry) => {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(entry);
    const port = m ? Number(m[3]) : 0;
    if (!m || port < 1 || port > 65535) fail(name, `"${entry}" is not host:port`);
    return { host: (m[1] ?? m[2])!, port };
  });
}

function redisTopology(env: Env, keyPrefix: string): RedisTopology {
  const nodes = addresses(env, "REDIS_CLUSTER_NODES");
  const sentinels = addresses(env, "REDIS_SENTINELS");
  const name = str(env, "REDIS_SENTINEL_NAME");
  if (nodes.length && sentinels.length) fail("REDIS_CLUSTER_NODES", "set either REDIS_CLUSTER_NODES or REDIS_SENTINELS, not both");
  if (name !== undefined && !sentinels.length) fail("REDIS_SENTINEL_NAME", "needs REDIS_SENTINELS");
  // A standalone server's credentials are part of REDIS_URL (redis://user:password@host); the
  // node lists carry none, so a cluster's or Sentinel set's come from variables of their own.
  const password = env.REDIS_PASSWORD || undefined; // as given: a password may have spaces at its ends
  const username = str(env, "REDIS_USERNAME");
  if ((password !== undefined || username !== undefined) && !nodes.length && !sentinels.length) {
    fail(password !== undefined ? "REDIS_PASSWORD" : "REDIS_USERNAME", "only with REDIS_CLUSTER_NODES or REDIS_SENTINELS; a standalone server's credentials go in REDIS_URL");
  }
  if (username !== undefined && !password) fail("REDIS_USERNAME", "needs REDIS_PASSWORD");
  const auth = password ? { auth: { ...(username !== undefined && { username }), password } } : {};
  const sentinelPassword = env.REDIS_SENTINEL_PASSWORD || undefined;
  if (sentinelPassword !== undefined && !sentinels.length) fail("REDIS_SENTINEL_PASSWORD", "needs REDIS_SENTINELS");
  if (sentinels.length) {
    return { mode: "sentinel", sentinels, name: name ?? fail("REDIS_SENTINEL_NAME", "required when REDIS_SENTINELS is set"), ...auth, ...(sentinelPassword && { sentinelPassword }) };
  }
  if (!nodes.length) return { mode: "standalone" };
  // Redis Cluster hashes the first {...} of a key: a brace in the prefix would put every key
  // in one slot (or split the keys a script touches together); see src/store/redis.ts.
  if (/[{}]/.test(keyPrefix)) fail("REDIS_KEY_PREFIX", "must not contain { or } with REDIS_CLUSTER_NODES (it would decide the hash slot)");
  return { mode: "cluster", nodes, ...auth };
}

function oneOf<T extends string>(env: Env, name: string, values: readonly T[], def: T): T {
  const raw = str(env, name, def)!;
  if (!(values as readonly string[]).includes(raw)) fail(name, `expected one of ${values.join(", ")}, got "${raw}"`);
  return raw as T;
}

function cidr(name: string, entry: string): string {
  const [addr, bits, ...rest] = entry.split("/");
  const family = isIP(addr ?? "");
  const max = family === 4 ? 32 : 128;
  if (!family || rest.length || (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > max))) {
    fail(name, `"${entry}" is not an IP address or CIDR`);
  }
  return entry;
}

export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = oneOf(env, "NODE_ENV", ["development", "production", "test"] as const, "development");
  const production = nodeEnv === "production";
  const smsUrl = url(env, "SMS_API_URL", ["http:", "https:"]);
  let sms: Config["sms"];
  if (smsUrl) {
    const need = (n: string) => str(env, n) ?? fail(n, "required when SMS_API_URL is set");
    sms = { apiUrl: smsUrl.replace(/\/+$/, ""), accountSid: need("SMS_ACCOUNT_SID"), authToken: need("SMS_AUTH_TOKEN"), from: need("SMS_FROM") };
  }
  const fcmEndpoint = url(env, "FCM_ENDPOINT", ["http:", "https:"]);
  const fcmProjectId = fcmEndpoint ? (str(env, "FCM_PROJECT_ID") ?? fail("FCM_PROJECT_ID", "required when FCM_ENDPOINT is set")) : undefined;
  const testCode = str(env, "OTP_TEST_CODE");
  if (testCode !== undefined && !/^\d{6}$/.test(testCode)) fail("OTP_TEST_CODE", "must be 6 digits");
  const testIdentifiers = list(env, "OTP_TEST_IDENTIFIERS");
  if (testIdentifiers.length && !testCode) fail("OTP_TEST_CODE", "required when OTP_TEST_IDENTIFIERS is set");
  const allowTestIdentifiersInProduction = bool(env, "OTP_TEST_IDENTIFIERS_IN_PRODUCTION", false);
  if (production && testIdentifiers.length && !allowTestIdentifiersInProduction) {
    fail("OTP_TEST_IDENTIFIERS", "refused in production unless OTP_TEST_IDENTIFIERS_IN_PRODUCTION=true");
  }
  const secret = str(env, "SERVER_SECRET");
  if (secret !== undefined && secret.length < 32) fail("SERVER_SECRET", "must be at least 32 characters");
  if (production && !secret) fail("SERVER_SECRET", "required in production (at least 32 random characters)");
  const pointsValue = str(env, "POINTS_VALUE", "0.01")!;
  if (!/^\d{1,12}(\.\d{1,6})?$/.test(pointsValue)) fail("POINTS_VALUE", `expected a non-negative decimal such as 0.01, got "${pointsValue}"`);
  const tlsCert = str(env, "TLS_CERT_FILE");
  const tlsKey = str(env, "TLS_KEY_FILE");
  if (!!tlsCert !== !!tlsKey) fail(tlsCert ? "TLS_KEY_FILE" : "TLS_CERT_FILE", "TLS_CERT_FILE and TLS_KEY_FILE go together");

  const databaseUrl = url(env, "DATABASE_URL", ["postgres:", "postgresql:"], "postgres://postgres@127.0.0.1:5432/identity")!;
  const databaseDirectUrl = url(env, "DATABASE_DIRECT_URL", ["postgres:", "postgresql:"], databaseUrl)!;
  const redisKeyPrefix = str(env, "REDIS_KEY_PREFIX", "identity:")!;

  const config: Config = {
    nodeEnv,
    role: oneOf(env, "ROLE", ["api", "worker", "all"] as const, "all"),
    port: int(env, "PORT", 8080, 0, 65535),
    host: str(env, "HOST", "0.0.0.0")!,
    databaseUrl,
    databaseDirectUrl,
    // Behind a pooler (a direct URL of its own), named statements are off unless asked for:
    // a transaction pooler hands each transaction to any server connection (README, "PostgreSQL through a pooler").
    databasePreparedStatements: bool(env, "DATABASE_PREPARED_STATEMENTS", databaseDirectUrl === databaseUrl),
    redisUrl: url(env, "REDIS_URL", ["redis:", "rediss:"], "redis://127.0.0.1:6379/0")!,
    redisTopology: redisTopology(env, redisKeyPrefix),
    redisKeyPrefix,
    redisCommandTimeoutMs: int(env, "REDIS_COMMAND_TIMEOUT_MS", 1000, 10, 60_000),
    mongodbUri: url(env, "MONGODB_URI", ["mongodb:", "mongodb+srv:"]),
    logLevel: oneOf(env, "LOG_LEVEL", ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const, "info"),
    tls: tlsCert && tlsKey ? { certFile: tlsCert, keyFile: tlsKey } : undefined,
    maxRequestBytes: int(env, "MAX_REQUEST_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024),
    shutdownGraceSeconds: int(env, "SHUTDOWN_GRACE_SECONDS", 10, 0, 600),
    trustedProxies: list(env, "TRUSTED_PROXIES").map((e) => cidr("TRUSTED_PROXIES", e)),
    corsOrigins: list(env, "CORS_ORIGINS"),
    jwt: {
      keysDir: str(env, "JWT_KEYS_DIR"),
      signingKid: str(env, "JWT_SIGNING_KID"),
      issuer: str(env, "JWT_ISSUER", "identity-service")!,
      audience: str(env, "JWT_AUDIENCE", "identity-api")!,
      accessTtlSeconds: int(env, "ACCESS_TOKEN_TTL_SECONDS", 900, 1, 86400),
      refreshTtlSeconds: int(env, "REFRESH_TOKEN_TTL_SECONDS", 2592000, 60, 31536000),
      refreshGraceSeconds: int(env, "REFRESH_GRACE_SECONDS", 10, 0, 300),
    },
    otp: {
      ttlSeconds: int(env, "OTP_TTL_SECONDS", 300, 1, 3600),
      maxAttempts: int(env, "OTP_MAX_ATTEMPTS", 5, 1, 20),
      resendSeconds: int(env, "OTP_RESEND_SECONDS", 60, 0, 3600),
      sendsPerIdentifierPerHour: int(env, "OTP_SENDS_PER_IDENTIFIER_PER_HOUR", 10, 1, 1_000_000),
      failuresPerIdentifierPerHour: int(env, "OTP_FAILURES_PER_IDENTIFIER_PER_HOUR", 20, 1, 1_000_000),
      requestsPerIpPerHour: int(env, "OTP_REQUESTS_PER_IP_PER_HOUR", 100, 1, 100_000_000),
      verificationTtlSeconds: int(env, "VERIFICATION_TOKEN_TTL_SECONDS", 600, 1, 3600),
      testIdentifiers,
      testCode,
      allowTestIdentifiersInProduction,
    },
    secret,
    smtpUrl: url(env, "SMTP_URL", ["smtp:", "smtps:"]),
    emailFrom: str(env, "EMAIL_FROM", "Identity <no-reply@localhost>")!,
    sms,
    fcm: fcmEndpoint && fcmProjectId ? { endpoint: fcmEndpoint.replace(/\/+$/, ""), projectId: fcmProjectId, accessToken: str(env, "FCM_ACCESS_TOKEN") } : undefined,
    pointsValue,
    auditRetentionDays: int(env, "AUDIT_RETENTION_DAYS", 365, 1, 36500),
    webhookUrls: list(env, "WEBHOOK_URLS").map((u, i) => {
      try {
        return new URL(u).toString();
      } catch {
        return fail("WEBHOOK_URLS", `entry ${i + 1} is not a valid URL`);
      }
    }),
    webhookSecret: str(env, "WEBHOOK_SECRET"),
    webhookMaxAttempts: int(env, "WEBHOOK_MAX_ATTEMPTS", 8, 1, 100),
    webhookBackoffSeconds: int(env, "WEBHOOK_BACKOFF_SECONDS", 60, 1, 86400),
    inactiveUserDays: int(env, "INACTIVE_USER_DAYS", 180, 1, 36500),
    accountDeletionGraceSeconds: days(env, "ACCOUNT_DELETION_GRACE_DAYS", 30, 3650),
    accountExportsPerHour: int(env, "ACCOUNT_EXPORTS_PER_HOUR", 5, 1, 10_000),
    jobBatchSize: int(env, "JOB_BATCH_SIZE", 500, 1, 10_000),
    jobTimeBudgetSeconds: int(env, "JOB_TIME_BUDGET_SECONDS", 300, 1, 86400),
  };
  if (config.webhookUrls.length && !config.webhookSecret) fail("WEBHOOK_SECRET", "required when WEBHOOK_URLS is set");
  if (production) {
    if (!config.jwt.keysDir) fail("JWT_KEYS_DIR", "required in production (generated development keys are refused)");
    if (!config.smtpUrl) fail("SMTP_URL", "required in production (the log sink for e-mail codes is refused)");
    if (!config.sms) fail("SMS_API_URL", "required in production (the log sink for SMS codes is refused)");
  }
  return config;
}
