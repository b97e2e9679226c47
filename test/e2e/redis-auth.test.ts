// Managed Redis requires a password: a Redis Cluster and a Sentinel set whose servers require
// AUTH (test/support/redis-cluster.ts, redis-sentinel.ts), reached with REDIS_PASSWORD (and, for
// sentinels that require one of their own, REDIS_SENTINEL_PASSWORD). With the passwords the OTP
// flow works and its keys land on the servers; without them the service refuses to start,
// naming Redis, rather than serving calls that would all fail.
import { expect } from "chai";
import { rest } from "../support/account.js";
import { testPhone } from "../support/clients.js";
import { freePort, redisKeys } from "../support/private-redis.js";
import { startRedisCluster, type RedisCluster } from "../support/redis-cluster.js";
import { startRedisSentinels, type RedisSentinelSet } from "../support/redis-sentinel.js";
import { startTestServer, TEST_CODE, type TestServer } from "../support/server.js";

const PASSWORD = "data nodes' secret";
const SENTINEL_PASSWORD = "sentinels' secret";

/** RequestOtp then VerifyOtp over REST: both need Redis. */
async function otpFlow(server: TestServer): Promise<void> {
  const identifier = testPhone();
  const sent = await rest(server, "POST", "/api/auth/otp/request", { body: { identifier, purpose: "OTP_PURPOSE_REGISTER" } });
  expect(sent.status, JSON.stringify(sent.body)).to.equal(200);
  const verified = await rest(server, "POST", "/api/auth/otp/verify", { body: { identifier, otp: TEST_CODE, purpose: "OTP_PURPOSE_REGISTER" } });
  expect(verified.status, JSON.stringify(verified.body)).to.equal(200);
}

async function startFails(env: Record<string, string>): Promise<string> {
  const started = await startTestServer(env).then(
    async (server) => {
      await server.close();
      return undefined;
    },
    (err: Error) => err.message,
  );
  expect(started, "the service started without the Redis password").to.be.a("string");
  return started!;
}

describe("Redis with a password", function () {
  this.timeout(120_000);

  describe("a Redis Cluster", () => {
    let cluster: RedisCluster;
    let env: Record<string, string>;
    before(async () => {
      cluster = await startRedisCluster(3, { password: PASSWORD });
      env = { REDIS_URL: `redis://127.0.0.1:${await freePort()}/0`, REDIS_CLUSTER_NODES: cluster.nodesEnv };
    });
    after(async () => cluster?.close());

    it("serves with REDIS_PASSWORD", async () => {
      const server = await startTestServer({ ...env, REDIS_PASSWORD: PASSWORD });
      try {
        await otpFlow(server);
        const keys = (await Promise.all(cluster.masters.map((m) => redisKeys(m.port)))).flat();
        expect(keys.filter((k) => k.startsWith(server.env.REDIS_KEY_PREFIX!))).to.not.be.empty;
      } finally {
        await server.close();
      }
    });

    it("refuses to start without it, naming Redis", async () => {
      expect(await startFails(env)).to.match(/^Redis at cluster 127\.0\.0\.1:\d+.* is unavailable/);
    });
  });

  describe("a Sentinel set", () => {
    let set: RedisSentinelSet;
    let env: Record<string, string>;
    before(async () => {
      set = await startRedisSentinels("identity", { password: PASSWORD, sentinelPassword: SENTINEL_PASSWORD });
      env = { REDIS_URL: `redis://127.0.0.1:${await freePort()}/0`, REDIS_SENTINELS: set.sentinelsEnv, REDIS_SENTINEL_NAME: set.name };
    });
    after(async () => set?.close());

    it("serves with REDIS_PASSWORD and REDIS_SENTINEL_PASSWORD", async () => {
      const server = await startTestServer({ ...env, REDIS_PASSWORD: PASSWORD, REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD });
      try {
        await otpFlow(server);
        expect((await redisKeys(set.primary.port)).filter((k) => k.startsWith(server.env.REDIS_KEY_PREFIX!))).to.not.be.empty;
      } finally {
        await server.close();
      }
    });

    it("refuses to start without either password, naming Redis", async () => {
      expect(await startFails({ ...env, REDIS_PASSWORD: PASSWORD })).to.match(/^Redis at sentinels .* is unavailable/);
      expect(await startFails({ ...env, REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD })).to.match(/^Redis at sentinels .* is unavailable/);
    });
  });
});
