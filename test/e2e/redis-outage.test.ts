// Redis going away (issue 15, points 2-4), with the real server on a redis-server of the
// test's own (test/support/private-redis.ts), behind a cuttable proxy where the test needs one:
// - down or stalled, every Redis-dependent call answers `unavailable` (RetryInfo; REST 503 with
//   Retry-After) within REDIS_COMMAND_TIMEOUT_MS instead of waiting; calls that do not need
//   Redis (GetMe, RefreshToken, Logout) keep working; OTP stays fail-closed; one warn line per outage;
// - restarted without persistence, a refresh retried within the grace window still answers
//   the rotated pair (no reuse revocation), and a revoked service token stays revoked.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import { Code, ConnectError } from "@connectrpc/connect";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { OtpPurpose, UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { PointsService } from "../../gen/identity/v1/points_pb.js";
import { bearer, clientFor, signUp, testPhone } from "../support/clients.js";
import { failure } from "../support/failures.js";
import { startPrivateRedis, type PrivateRedis } from "../support/private-redis.js";
import { mintServiceToken } from "../support/service-token.js";
import { startTestServer, TEST_CODE, type TestServer } from "../support/server.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

const run = promisify(execFile);

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** How long a call took to settle, and its error (undefined when it succeeded). */
async function timed(call: Promise<unknown>): Promise<{ ms: number; error?: ConnectError }> {
  const started = Date.now();
  try {
    await call;
    return { ms: Date.now() - started };
  } catch (e) {
    return { ms: Date.now() - started, error: ConnectError.from(e) };
  }
}

describe("Redis outage", function () {
  this.timeout(90_000);
  let redis: PrivateRedis;
  let proxy: TcpProxy;
  let server: TestServer;

  before(async () => {
    redis = await startPrivateRedis();
    proxy = await startTcpProxy({ host: "127.0.0.1", port: redis.port });
    server = await startTestServer({ REDIS_URL: `redis://127.0.0.1:${proxy.port}/0`, REDIS_COMMAND_TIMEOUT_MS: "1000" });
  });
  after(async () => {
    await server?.close();
    await proxy?.close();
    await redis?.close();
  });

  const auth = () => clientFor(UserAuthService, server.url);
  const otpRequest = () => auth().requestOtp({ identifier: testPhone(), purpose: OtpPurpose.LOGIN }, { timeoutMs: 10_000 });
  const waitForRedis = () => waitFor(async () => (await timed(otpRequest())).error === undefined, 20_000, "Redis-dependent calls to work again");

  for (const mode of ["down", "stalled"] as const) {
    it(`answers unavailable within the command timeout while Redis is ${mode}; GetMe and RefreshToken keep working`, async () => {
      const user = await signUp(server.url);
      const logStart = server.logs.length;
      if (mode === "down") proxy.cut();
      else proxy.stall();
      try {
        const requested = await timed(otpRequest());
        expect(requested.error?.code, requested.error?.message).to.equal(Code.Unavailable);
        expect(requested.error!.findDetails(RetryInfoSchema)).to.have.length(1);
        // Bounded by REDIS_COMMAND_TIMEOUT_MS (1 s) plus slack for a loaded machine; today's
        // code waits 15-24 s (down) or forever (stalled).
        expect(requested.ms).to.be.below(4000);
        // gRPC (the unary fast path) carries the same status and details.
        const overGrpc = await failure(clientFor(UserAuthService, server.url, "grpc").requestOtp({ identifier: testPhone(), purpose: OtpPurpose.LOGIN }, { timeoutMs: 10_000 }));
        expect(overGrpc.code).to.equal(Code.Unavailable);
        expect(overGrpc.findDetails(RetryInfoSchema)[0]?.retryDelay?.seconds).to.equal(1n);

        // OTP stays fail-closed: nothing is verified without Redis.
        const verified = await timed(auth().verifyOtp({ identifier: user.phone, otp: TEST_CODE, purpose: OtpPurpose.LOGIN }, { timeoutMs: 10_000 }));
        expect(verified.error?.code).to.equal(Code.Unavailable);

        const rest = await fetch(`${server.url}/api/auth/otp/request`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ identifier: testPhone(), purpose: "OTP_PURPOSE_LOGIN" }), signal: AbortSignal.timeout(10_000) });
        expect(rest.status).to.equal(503);
        expect(rest.headers.get("retry-after")).to.equal("1");
        expect(((await rest.json()) as { code: string }).code).to.equal("unavailable");

        // Calls that do not need Redis.
        expect((await auth().getMe({}, bearer(user.accessToken))).user?.id).to.equal(user.userId);
        const refreshed = await auth().refreshToken({ refreshToken: user.refreshToken }, { timeoutMs: 10_000 });
        expect((await auth().getMe({}, bearer(refreshed.accessToken))).user?.id).to.equal(user.userId);
        await auth().logout({}, { ...bearer(refreshed.accessToken), timeoutMs: 10_000 });
        expect((await failure(auth().getMe({}, bearer(refreshed.accessToken)))).code).to.equal(Code.Unauthenticated);

        const logged = server.logs.slice(logStart);
        expect(logged.filter((l) => (l.level as number) >= 50).map((l) => l.msg)).to.deep.equal([], "no error lines (stack traces)");
        expect(logged.filter((l) => l.msg === "store unavailable" && l.store === "redis")).to.have.length(1);
        console.log(`      Redis ${mode}: RequestOtp answered ${Code[requested.error!.code]} after ${requested.ms} ms, VerifyOtp after ${verified.ms} ms`);
      } finally {
        await proxy.restore();
      }
      await waitForRedis();
    });
  }
});

describe("Redis restarted without persistence", function () {
  this.timeout(90_000);
  let redis: PrivateRedis;
  let server: TestServer;

  before(async () => {
    redis = await startPrivateRedis();
    server = await startTestServer({ REDIS_URL: redis.url, REFRESH_GRACE_SECONDS: "60" });
  });
  after(async () => {
    await server?.close();
    await redis?.close();
  });

  const auth = () => clientFor(UserAuthService, server.url);
  async function restartRedis(): Promise<void> {
    await redis.restart();
    // The server's client reconnects by itself (backoff up to 3 s).
    await waitFor(() => server.app.stores.redis.status === "ready", 20_000, "the server's Redis client to reconnect");
  }

  it("a refresh retried within the grace window returns the rotated pair instead of revoking the session", async () => {
    const user = await signUp(server.url);
    const first = await auth().refreshToken({ refreshToken: user.refreshToken });
    await restartRedis();
    // The app retries with the token it sent (its first answer was lost): the grace cache is gone.
    const retried = await auth().refreshToken({ refreshToken: user.refreshToken });
    expect(retried.refreshToken).to.equal(first.refreshToken);
    expect((await auth().getMe({}, bearer(retried.accessToken))).user?.id).to.equal(user.userId);
    // The session lives on: the rotated token rotates again.
    const next = await auth().refreshToken({ refreshToken: first.refreshToken });
    expect((await auth().getMe({}, bearer(next.accessToken))).user?.id).to.equal(user.userId);
  });

  it("a revoked service token stays revoked", async () => {
    const user = await signUp(server.url);
    const token = await mintServiceToken(server.env, "billing");
    const { jti, exp } = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")) as { jti: string; exp: number };
    const points = clientFor(PointsService, server.url);
    const adjust = () => points.adjustPoints({ userId: user.userId, delta: 1n, reason: "test", idempotencyKey: `k-${Math.random()}` }, bearer(token));
    await adjust();
    await run(join(process.cwd(), "node_modules/.bin/tsx"), ["src/cli/token-service.ts", "--revoke", jti, "--expires", String(exp)], { env: { ...process.env, ...server.env } });
    expect((await failure(adjust())).code).to.equal(Code.Unauthenticated);
    await restartRedis();
    expect((await failure(adjust())).code).to.equal(Code.Unauthenticated);
  });
});
