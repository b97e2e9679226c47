import { expect } from "chai";
import { ConfigError, loadConfig } from "../../src/config.js";

describe("config", () => {
  it("has the DESIGN defaults", () => {
    const c = loadConfig({});
    expect(c.port).to.equal(8080);
    expect(c.nodeEnv).to.equal("development");
    expect(c.databaseUrl).to.equal("postgres://postgres@127.0.0.1:5432/identity");
    expect(c.redisUrl).to.equal("redis://127.0.0.1:6379/0");
    expect(c.redisCommandTimeoutMs).to.equal(1000);
    expect(c.redisTopology).to.deep.equal({ mode: "standalone" });
    expect(c.otp).to.include({ ttlSeconds: 300, maxAttempts: 5, resendSeconds: 60, sendsPerIdentifierPerHour: 10, failuresPerIdentifierPerHour: 20, requestsPerIpPerHour: 100 });
    expect(c.jwt).to.include({ accessTtlSeconds: 900, refreshTtlSeconds: 2592000, refreshGraceSeconds: 10 });
    expect(c.maxRequestBytes).to.equal(1048576);
    expect(c.pointsValue).to.equal("0.01");
    expect(c).to.include({ auditRetentionDays: 365, inactiveUserDays: 180, webhookMaxAttempts: 8, webhookBackoffSeconds: 60, jobBatchSize: 500, jobTimeBudgetSeconds: 300 });
    expect(c.fcm).to.equal(undefined);
    expect(c).to.include({ accountDeletionGraceSeconds: 30 * 86400, accountExportsPerHour: 5 });
  });

  it("reads ACCOUNT_DELETION_GRACE_DAYS as days, fractions allowed, 0 meaning at once", () => {
    expect(loadConfig({ ACCOUNT_DELETION_GRACE_DAYS: "7" }).accountDeletionGraceSeconds).to.equal(7 * 86400);
    expect(loadConfig({ ACCOUNT_DELETION_GRACE_DAYS: "0.0001" }).accountDeletionGraceSeconds).to.equal(9);
    expect(loadConfig({ ACCOUNT_DELETION_GRACE_DAYS: "0" }).accountDeletionGraceSeconds).to.equal(0);
  });

  it("reads the FCM settings", () => {
    const c = loadConfig({ FCM_ENDPOINT: "http://127.0.0.1:9/", FCM_PROJECT_ID: "demo", FCM_ACCESS_TOKEN: "t" });
    expect(c.fcm).to.deep.equal({ endpoint: "http://127.0.0.1:9", projectId: "demo", accessToken: "t" });
  });

  it("connects directly and prepares statements unless a direct URL says DATABASE_URL is a pooler", () => {
    const plain = loadConfig({ DATABASE_URL: "postgres://u@db:5432/identity" });
    expect(plain).to.include({ databaseDirectUrl: "postgres://u@db:5432/identity", databasePreparedStatements: true });
    const pooled = loadConfig({ DATABASE_URL: "postgres://u@pooler:6432/identity", DATABASE_DIRECT_URL: "postgres://u@db:5432/identity" });
    expect(pooled).to.include({ databaseUrl: "postgres://u@pooler:6432/identity", databaseDirectUrl: "postgres://u@db:5432/identity", databasePreparedStatements: false });
    const optedIn = loadConfig({ DATABASE_URL: "postgres://u@pooler:6432/identity", DATABASE_DIRECT_URL: "postgres://u@db:5432/identity", DATABASE_PREPARED_STATEMENTS: "true" });
    expect(optedIn.databasePreparedStatements).to.equal(true);
    expect(loadConfig({ DATABASE_PREPARED_STATEMENTS: "off" }).databasePreparedStatements).to.equal(false);
  });

  it("selects Redis Cluster or Sentinel from their node lists", () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: "10.0.0.1:7000, redis-b:7001,[::1]:7002" }).redisTopology).to.deep.equal({
      mode: "cluster",
      nodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "redis-b", port: 7001 },
        { host: "::1", port: 7002 },
      ],
    });
    expect(loadConfig({ REDIS_SENTINELS: "s1:26379,s2:26380", REDIS_SENTINEL_NAME: "identity" }).redisTopology).to.deep.equal({
      mode: "sentinel",
      sentinels: [
        { host: "s1", port: 26379 },
        { host: "s2", port: 26380 },
      ],
      name: "identity",
    });
  });

  it("takes a cluster's or Sentinel set's credentials from variables of their own", () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: "a:7000", REDIS_PASSWORD: " p w " }).redisTopology).to.deep.equal({ mode: "cluster", nodes: [{ host: "a", port: 7000 }], auth: { password: " p w " } });
    expect(loadConfig({ REDIS_SENTINELS: "s:26379", REDIS_SENTINEL_NAME: "m", REDIS_USERNAME: "app", REDIS_PASSWORD: "pw", REDIS_SENTINEL_PASSWORD: "spw" }).redisTopology).to.deep.equal({
      mode: "sentinel",
      sentinels: [{ host: "s", port: 26379 }],
      name: "m",
      auth: { username: "app", password: "pw" },
      sentinelPassword: "spw",
    });
    expect(loadConfig({ REDIS_PASSWORD: "" }).redisTopology).to.deep.equal({ mode: "standalone" });
  });

  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: "eighty" }, /^PORT: expected a whole number/],
    [{ PORT: "70000" }, /^PORT: must be between 0 and 65535/],
    [{ NODE_ENV: "staging" }, /^NODE_ENV: expected one of/],
    [{ DATABASE_URL: "mysql://x" }, /^DATABASE_URL: expected a postgres: or postgresql: URL/],
    [{ DATABASE_DIRECT_URL: "http://db/identity" }, /^DATABASE_DIRECT_URL: expected a postgres: or postgresql: URL/],
    [{ DATABASE_PREPARED_STATEMENTS: "maybe" }, /^DATABASE_PREPARED_STATEMENTS: expected true or false/],
    [{ REDIS_URL: "not a url" }, /^REDIS_URL: not a valid URL/],
    [{ REDIS_CLUSTER_NODES: "a:1", REDIS_SENTINELS: "b:2", REDIS_SENTINEL_NAME: "m" }, /^REDIS_CLUSTER_NODES: set either REDIS_CLUSTER_NODES or REDIS_SENTINELS, not both/],
    [{ REDIS_SENTINELS: "b:26379" }, /^REDIS_SENTINEL_NAME: required when REDIS_SENTINELS is set/],
    [{ REDIS_SENTINEL_NAME: "m" }, /^REDIS_SENTINEL_NAME: needs REDIS_SENTINELS/],
    [{ REDIS_CLUSTER_NODES: "a:1,b" }, /^REDIS_CLUSTER_NODES: "b" is not host:port/],
    [{ REDIS_CLUSTER_NODES: "a:70000" }, /^REDIS_CLUSTER_NODES: "a:70000" is not host:port/],
    [{ REDIS_SENTINELS: "::1:26379", REDIS_SENTINEL_NAME: "m" }, /^REDIS_SENTINELS: "::1:26379" is not host:port/],
    [{ REDIS_CLUSTER_NODES: "a:7000", REDIS_KEY_PREFIX: "{app}:" }, /^REDIS_KEY_PREFIX: must not contain { or } with REDIS_CLUSTER_NODES/],
    [{ REDIS_PASSWORD: "secret" }, /^REDIS_PASSWORD: only with REDIS_CLUSTER_NODES or REDIS_SENTINELS; a standalone server's credentials go in REDIS_URL/],
    [{ REDIS_USERNAME: "app" }, /^REDIS_USERNAME: only with REDIS_CLUSTER_NODES or REDIS_SENTINELS/],
    [{ REDIS_CLUSTER_NODES: "a:7000", REDIS_USERNAME: "app" }, /^REDIS_USERNAME: needs REDIS_PASSWORD/],
    [{ REDIS_CLUSTER_NODES: "a:7000", REDIS_SENTINEL_PASSWORD: "s" }, /^REDIS_SENTINEL_PASSWORD: needs REDIS_SENTINELS/],
    [{ OTP_TTL_SECONDS: "0" }, /^OTP_TTL_SECONDS: must be between/],
    [{ REDIS_COMMAND_TIMEOUT_MS: "0" }, /^REDIS_COMMAND_TIMEOUT_MS: must be between 10 and 60000/],
    [{ REDIS_COMMAND_TIMEOUT_MS: "1s" }, /^REDIS_COMMAND_TIMEOUT_MS: expected a whole number/],
    [{ TRUSTED_PROXIES: "10.0.0.0/99" }, /^TRUSTED_PROXIES: "10.0.0.0\/99" is not an IP address or CIDR/],
    [{ SMS_API_URL: "http://127.0.0.1:9" }, /^SMS_ACCOUNT_SID: required when SMS_API_URL is set/],
    [{ OTP_TEST_IDENTIFIERS: "+1555" }, /^OTP_TEST_CODE: required/],
    [{ POINTS_VALUE: "-1" }, /^POINTS_VALUE:/],
    [{ FCM_ENDPOINT: "http://127.0.0.1:9" }, /^FCM_PROJECT_ID: required when FCM_ENDPOINT is set/],
    [{ WEBHOOK_MAX_ATTEMPTS: "0" }, /^WEBHOOK_MAX_ATTEMPTS: must be between 1 and 100/],
    [{ JOB_BATCH_SIZE: "many" }, /^JOB_BATCH_SIZE: expected a whole number/],
    [{ ACCOUNT_DELETION_GRACE_DAYS: "-1" }, /^ACCOUNT_DELETION_GRACE_DAYS: expected a number of days/],
    [{ ACCOUNT_DELETION_GRACE_DAYS: "4000" }, /^ACCOUNT_DELETION_GRACE_DAYS: must be at most 3650/],
    [{ TLS_CERT_FILE: "/x.pem" }, /^TLS_KEY_FILE:/],
    [{ NODE_ENV: "production" }, /^SERVER_SECRET: required in production/],
    [{ NODE_ENV: "production", SERVER_SECRET: "x".repeat(32) }, /^JWT_KEYS_DIR: required in production/],
    [{ NODE_ENV: "production", SERVER_SECRET: "x".repeat(32), JWT_KEYS_DIR: "/k", SMS_API_URL: "http://s", SMS_ACCOUNT_SID: "a", SMS_AUTH_TOKEN: "b", SMS_FROM: "c" }, /^SMTP_URL: required in production/],
    [{ NODE_ENV: "production", SERVER_SECRET: "x".repeat(32), OTP_TEST_IDENTIFIERS: "+1555", OTP_TEST_CODE: "123456" }, /^OTP_TEST_IDENTIFIERS: refused in production/],
  ];
  for (const [env, message] of bad) {
    it(`rejects ${JSON.stringify(env)}`, () => {
      expect(() => loadConfig(env)).to.throw(ConfigError, message);
    });
  }
});
