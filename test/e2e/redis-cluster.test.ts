// The service on a real Redis Cluster (issue 18 part 3): three masters the test starts
// (test/support/redis-cluster.ts), selected by REDIS_CLUSTER_NODES while REDIS_URL names a
// closed port. Real clients over the network run the OTP, limit, refresh (with reuse
// detection) and logout flows for many identifiers, so their keys land in slots of every
// master: every multi-key script must keep its keys in one slot (Redis answers CROSSSLOT
// otherwise), every key must carry the prefix. With every master frozen, a Redis-dependent call
// answers `unavailable` within about REDIS_COMMAND_TIMEOUT_MS while GetMe keeps working, and
// /readyz says not ready; with one master killed, only the calls whose keys it held fail, at once.
import { expect } from "chai";
import { Code } from "@connectrpc/connect";
import { Cluster, Redis } from "ioredis";
import { deleteKeysMatching } from "../../src/store/redis.js";
import { OtpPurpose, UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { rest } from "../support/account.js";
import { bearer, clientFor, signIn, signUp, testPhone } from "../support/clients.js";
import { codeOf } from "../support/failures.js";
import { freePort, redisKeys } from "../support/private-redis.js";
import { autoPipelined } from "../support/redis-client.js";
import { startRedisCluster, type RedisCluster } from "../support/redis-cluster.js";
import { startTestServer, TEST_CODE, type TestServer } from "../support/server.js";

const IDENTIFIERS = 48;
const CONCURRENCY = 8;

/** Runs `work` for 0..count-1, `concurrency` at a time. */
async function eachLimited(count: number, concurrency: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) await work(next++);
  }));
}

describe("Redis Cluster", function () {
  this.timeout(120_000);
  let cluster: RedisCluster;
  let server: TestServer;

  before(async () => {
    cluster = await startRedisCluster();
    server = await startTestServer({
      REDIS_URL: `redis://127.0.0.1:${await freePort()}/0`,
      REDIS_CLUSTER_NODES: cluster.nodesEnv,
      REDIS_COMMAND_TIMEOUT_MS: "1000",
      OTP_RESEND_SECONDS: "0",
      OTP_SENDS_PER_IDENTIFIER_PER_HOUR: "3",
      OTP_FAILURES_PER_IDENTIFIER_PER_HOUR: "2",
    });
  });
  after(async () => {
    await server?.close();
    await cluster?.close();
  });

  const auth = () => clientFor(UserAuthService, server.url);

  /** Waits (20 s at most) for Redis-dependent calls and /readyz to succeed again after an outage. */
  async function untilAnswering(): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = await rest(server, "POST", "/api/auth/otp/request", { body: { identifier: testPhone(), purpose: "OTP_PURPOSE_LOGIN" } });
      if (r.status === 200 && (await fetch(`${server.url}/readyz`)).status === 200) return;
      if (Date.now() > deadline) throw new Error(`still ${r.status} 20 s after the outage`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Sign-up, limits, refresh with reuse detection and logout of one new identifier. */
  async function flows(): Promise<void> {
    const a = auth();
    const phone = testPhone();
    // Sign-up: a wrong code first (one failure of the identifier), then the right one.
    await a.requestOtp({ identifier: phone, purpose: OtpPurpose.REGISTER });
    expect(await codeOf(a.verifyOtp({ identifier: phone, otp: "000000", purpose: OtpPurpose.REGISTER }))).to.equal(Code.InvalidArgument);
    const { verificationToken } = await a.verifyOtp({ identifier: phone, otp: TEST_CODE, purpose: OtpPurpose.REGISTER });
    const first = await a.register({ verificationToken, username: `c${phone.slice(1)}`, phoneNumber: phone, fullName: "" });
    const second = await signIn(server.url, phone);

    // Refresh, then the first refresh token again (outside the grace window: two rotations
    // later): reuse, the whole session is revoked.
    const r1 = await a.refreshToken({ refreshToken: second.refreshToken });
    const r2 = await a.refreshToken({ refreshToken: r1.refreshToken });
    expect(await codeOf(a.refreshToken({ refreshToken: second.refreshToken }))).to.equal(Code.Unauthenticated);
    expect(await codeOf(a.getMe({}, bearer(r2.accessToken)))).to.equal(Code.Unauthenticated);

    // Logout of the other session.
    expect((await a.getMe({}, bearer(first.accessToken))).user?.id).to.equal(first.userId);
    await a.logout({}, bearer(first.accessToken));
    expect(await codeOf(a.getMe({}, bearer(first.accessToken)))).to.equal(Code.Unauthenticated);

    // Limits: a second wrong code reaches the failures limit (2), which then refuses even the
    // right code; the fourth send of the hour is over the sends limit (3).
    await a.requestOtp({ identifier: phone, purpose: OtpPurpose.LOGIN });
    expect(await codeOf(a.verifyOtp({ identifier: phone, otp: "000000", purpose: OtpPurpose.LOGIN }))).to.equal(Code.InvalidArgument);
    expect(await codeOf(a.verifyOtp({ identifier: phone, otp: TEST_CODE, purpose: OtpPurpose.LOGIN }))).to.equal(Code.ResourceExhausted);
    const limited = await rest(server, "POST", "/api/auth/otp/request", { body: { identifier: phone, purpose: "OTP_PURPOSE_LOGIN" } });
    expect(limited.status).to.equal(429);
    expect(Number(limited.headers.get("retry-after"))).to.be.above(0);
  }

  it(`runs the OTP, limit, refresh and logout flows for ${IDENTIFIERS} identifiers, their keys spread over every master, each under the prefix`, async () => {
    const started = Date.now();
    await eachLimited(IDENTIFIERS, CONCURRENCY, flows);
    const flowsMs = Date.now() - started;

    const prefix = server.env.REDIS_KEY_PREFIX!;
    const perMaster = await Promise.all(cluster.masters.map((m) => redisKeys(m.port)));
    for (const keys of perMaster) {
      expect(keys.filter((k) => !k.startsWith(prefix)), "keys without the prefix").to.deep.equal([]);
      // Every master holds OTP state of some identifiers (48 tags spread over 3 masters).
      expect(keys.filter((k) => k.startsWith(`${prefix}otp:{`)), "OTP keys on each master").to.not.be.empty;
    }
    // Each identifier's OTP keys sit in one slot: the slot of its tag.
    const otpKeys = perMaster.flat().filter((k) => k.startsWith(`${prefix}otp:{`));
    const node = new Redis(cluster.masters[0]!.port, "127.0.0.1");
    try {
      const byTag = new Map<string, Set<number>>();
      for (const key of otpKeys) {
        const tag = /\{([^}]+)\}/.exec(key)![1]!;
        const slot = (await node.call("CLUSTER", "KEYSLOT", key)) as number;
        byTag.set(tag, (byTag.get(tag) ?? new Set()).add(slot));
      }
      expect(byTag.size).to.equal(IDENTIFIERS);
      expect([...byTag.values()].filter((slots) => slots.size !== 1), "tags whose keys span slots").to.deep.equal([]);
    } finally {
      node.disconnect();
    }
    console.log(`      ${IDENTIFIERS} identifiers in ${flowsMs} ms; keys per master: ${perMaster.map((k) => k.length).join(", ")} (prefix ${prefix})`);

    // The test hooks' and the bench's cleanup reaches every master.
    const cleaner = new Cluster(cluster.nodesEnv.split(","));
    try {
      expect(await deleteKeysMatching(cleaner, `${prefix}*`)).to.equal(perMaster.flat().length);
    } finally {
      cleaner.disconnect();
    }
    expect((await Promise.all(cluster.masters.map((m) => redisKeys(m.port)))).flat()).to.deep.equal([]);
  });

  it("auto-pipelines commands issued together", async () => {
    expect(await autoPipelined(server.app.stores.redis)).to.equal(3);
  });

  it("answers unavailable within about the command timeout while every master is frozen; GetMe keeps working", async () => {
    const a = auth();
    const user = await signUp(server.url);
    expect((await fetch(`${server.url}/readyz`)).status, "ready before").to.equal(200);
    const logStart = server.logs.length;
    for (const m of cluster.masters) m.pause();
    try {
      const started = Date.now();
      const answer = await rest(server, "POST", "/api/auth/otp/request", { body: { identifier: testPhone(), purpose: "OTP_PURPOSE_LOGIN" } });
      const ms = Date.now() - started;
      expect(answer.status, JSON.stringify(answer.body)).to.equal(503);
      expect(answer.body.code).to.equal("unavailable");
      expect(answer.headers.get("retry-after")).to.equal("1");
      // REDIS_COMMAND_TIMEOUT_MS is 1 s; slack for a loaded machine.
      expect(ms).to.be.below(3000);
      const again = Date.now();
      expect(await codeOf(a.verifyOtp({ identifier: testPhone(), otp: TEST_CODE, purpose: OtpPurpose.LOGIN }))).to.equal(Code.Unavailable);
      const againMs = Date.now() - again;
      expect(againMs).to.be.below(3000);
      expect((await a.getMe({}, bearer(user.accessToken))).user).to.not.equal(undefined);
      expect((await fetch(`${server.url}/readyz`)).status, "ready while frozen").to.equal(503);
      const logged = server.logs.slice(logStart);
      expect(logged.filter((l) => (l.level as number) >= 50).map((l) => l.msg), "error lines (stack traces)").to.deep.equal([]);
      expect(logged.filter((l) => l.msg === "store unavailable" && l.store === "redis")).to.have.length(1);
      console.log(`      cluster frozen: RequestOtp answered 503 after ${ms} ms, VerifyOtp unavailable after ${againMs} ms`);
    } finally {
      for (const m of cluster.masters) m.resume();
    }
    await untilAnswering();
  });

  it("with one master killed, calls whose keys it held answer unavailable at once, the other masters' go on", async () => {
    const logStart = server.logs.length;
    // Every RequestOtp counts the client's IP in one key first: keep its master alive.
    const ipMaster = await cluster.masterOf(`${server.env.REDIS_KEY_PREFIX!}otp:ip:127.0.0.1`);
    const dead = cluster.masters.find((m) => m !== ipMaster)!;
    await dead.stop();
    try {
      const answers = await Promise.all(
        Array.from({ length: 30 }, async () => {
          const started = Date.now();
          const r = await rest(server, "POST", "/api/auth/otp/request", { body: { identifier: testPhone(), purpose: "OTP_PURPOSE_LOGIN" } });
          return { status: r.status, ms: Date.now() - started };
        }),
      );
      const statuses = answers.map((a) => a.status);
      expect([...new Set(statuses)].sort(), `only 200 and 503; error lines: ${JSON.stringify(server.logs.slice(logStart).filter((l) => (l.level as number) >= 50))}`).to.deep.equal([200, 503]);
      expect(Math.max(...answers.map((a) => a.ms))).to.be.below(3000);
      expect(server.logs.slice(logStart).filter((l) => l.msg === "store unavailable" && l.store === "redis")).to.have.length(1);
      console.log(`      one master killed: ${statuses.filter((s) => s === 200).length} ok, ${statuses.filter((s) => s === 503).length} unavailable, slowest ${Math.max(...answers.map((a) => a.ms))} ms`);
    } finally {
      await dead.start();
    }
    await cluster.waitHealthy(30_000);
    await untilAnswering();
  });
});
