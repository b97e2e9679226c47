// The service on a Redis Sentinel set (issue 18 part 3): one primary, one replica and three
// sentinels the test starts (test/support/redis-sentinel.ts), selected by REDIS_SENTINELS and
// REDIS_SENTINEL_NAME while REDIS_URL names a closed port. Client loops call RequestOtp and
// VerifyOtp (both need Redis) over gRPC and REST while the primary is killed: every error in
// the failover window is `unavailable` (REST: 503 with Retry-After), and calls succeed again
// within 15 s of the kill, on the promoted replica.
import { expect } from "chai";
import { Code, ConnectError } from "@connectrpc/connect";
import { OtpPurpose, UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { rest } from "../support/account.js";
import { clientFor, testPhone } from "../support/clients.js";
import { freePort, redisKeys } from "../support/private-redis.js";
import { autoPipelined } from "../support/redis-client.js";
import { startRedisSentinels, type RedisSentinelSet } from "../support/redis-sentinel.js";
import { startTestServer, TEST_CODE, type TestServer } from "../support/server.js";

/** One call of a load loop: when it started and ended, and its outcome ("ok" or an error code). */
interface Outcome {
  start: number;
  end: number;
  result: string;
}

const LOOPS = 4;
const RECOVERY_LIMIT_MS = 15_000;

describe("Redis Sentinel", function () {
  this.timeout(120_000);
  let set: RedisSentinelSet;
  let server: TestServer;

  before(async () => {
    set = await startRedisSentinels();
    server = await startTestServer({
      REDIS_URL: `redis://127.0.0.1:${await freePort()}/0`,
      REDIS_SENTINELS: set.sentinelsEnv,
      REDIS_SENTINEL_NAME: set.name,
      REDIS_COMMAND_TIMEOUT_MS: "1000",
      OTP_RESEND_SECONDS: "0",
    });
  });
  after(async () => {
    await server?.close();
    await set?.close();
  });

  /** RequestOtp then VerifyOtp for a new identifier: over gRPC, or REST (503 must carry Retry-After). */
  async function otpRound(wire: "grpc" | "rest"): Promise<string> {
    const phone = testPhone();
    if (wire === "rest") {
      for (const [path, body] of [
        ["/api/auth/otp/request", { identifier: phone, purpose: "OTP_PURPOSE_LOGIN" }],
        ["/api/auth/otp/verify", { identifier: phone, otp: TEST_CODE, purpose: "OTP_PURPOSE_LOGIN" }],
      ] as const) {
        const r = await rest(server, "POST", path, { body });
        if (r.status === 503 && r.headers.get("retry-after") === "1") return String(r.body.code);
        if (r.status !== 200) return `rest ${r.status} ${String(r.body.code)}`;
      }
      return "ok";
    }
    const auth = clientFor(UserAuthService, server.url, "grpc");
    try {
      await auth.requestOtp({ identifier: phone, purpose: OtpPurpose.LOGIN }, { timeoutMs: 10_000 });
      await auth.verifyOtp({ identifier: phone, otp: TEST_CODE, purpose: OtpPurpose.LOGIN }, { timeoutMs: 10_000 });
      return "ok";
    } catch (e) {
      const err = ConnectError.from(e);
      return err.code === Code.Unavailable ? "unavailable" : `${Code[err.code]}: ${err.message}`;
    }
  }

  it("auto-pipelines commands issued together", async () => {
    expect(await autoPipelined(server.app.stores.redis)).to.equal(3);
  });

  it("fails over: only unavailable errors while the primary is gone, calls succeed again within 15 s", async () => {
    const outcomes: Outcome[] = [];
    let stopAt = Infinity;
    const loops = Array.from({ length: LOOPS }, async (_, i) => {
      while (Date.now() < stopAt) {
        const start = Date.now();
        const result = await otpRound(i % 2 ? "rest" : "grpc");
        outcomes.push({ start, end: Date.now(), result });
        // Keep the load light on a 2-core machine, and the outcomes countable.
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    try {
      await new Promise((r) => setTimeout(r, 1_500));
      const logStart = server.logs.length;
      const killedAt = Date.now();
      await set.primary.stop();
      // Run until calls started after the kill have succeeded for 2 s, at most 20 s.
      const recovered = () => {
        const okAfter = outcomes.filter((o) => o.start > killedAt && o.result === "ok");
        const lastBad = Math.max(killedAt, ...outcomes.filter((o) => o.result !== "ok").map((o) => o.end));
        return okAfter.some((o) => o.start > lastBad) && Date.now() - lastBad > 2_000;
      };
      let promotedAt: number | undefined;
      while (!recovered() && Date.now() - killedAt < 20_000) {
        if (promotedAt === undefined && (await set.masterPort().catch(() => 0)) === set.replica.port) promotedAt = Date.now();
        await new Promise((r) => setTimeout(r, 100));
      }
      stopAt = Date.now();
      await Promise.all(loops);

      const before = outcomes.filter((o) => o.end < killedAt);
      const window = outcomes.filter((o) => o.end >= killedAt);
      const errors = window.filter((o) => o.result !== "ok");
      const firstOk = window.find((o) => o.start > killedAt && o.result === "ok");
      const lastError = Math.max(...errors.map((o) => o.end), killedAt);
      console.log(
        `      before the kill: ${before.length} ok; after: replica promoted ${promotedAt === undefined ? "?" : promotedAt - killedAt} ms after the kill, first success ${firstOk ? firstOk.end - killedAt : "never"} ms after the kill, ` +
          `last error ${lastError - killedAt} ms after; ${window.length - errors.length} ok, ${errors.length} errors (${[...new Set(errors.map((e) => e.result))].join(", ") || "none"})`,
      );
      expect(before.length, "calls before the kill").to.be.above(0);
      expect(before.filter((o) => o.result !== "ok"), "errors before the kill").to.deep.equal([]);
      expect([...new Set(errors.map((e) => e.result))], "kinds of errors after the kill").to.satisfy((kinds: string[]) => kinds.every((k) => k === "unavailable"));
      expect(firstOk, "a call succeeded after the kill").to.not.equal(undefined);
      expect(lastError - killedAt, "ms from the kill to the last error").to.be.below(RECOVERY_LIMIT_MS);
      expect(await set.masterPort(), "the sentinels promoted the replica").to.equal(set.replica.port);
      expect(server.logs.slice(logStart).filter((l) => (l.level as number) >= 50).map((l) => l.msg), "error lines (stack traces)").to.deep.equal([]);
      // The promoted primary holds the keys written since, all under the prefix.
      const keys = await redisKeys(set.replica.port);
      expect(keys).to.not.be.empty;
      expect(keys.filter((k) => !k.startsWith(server.env.REDIS_KEY_PREFIX!)), "keys without the prefix").to.deep.equal([]);
      // The readiness check sees the promoted primary too.
      expect((await fetch(`${server.url}/readyz`)).status).to.equal(200);
    } finally {
      stopAt = 0;
      await Promise.all(loops);
    }
  });
});
