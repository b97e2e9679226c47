// The account-lifecycle methods (DESIGN §10) with a store gone: the real server on a Redis of
// the test's own and on PostgreSQL behind a cuttable proxy. While a store they need is away,
// they answer `unavailable` (retryable) and change nothing; once it is back they work again.
import { expect } from "chai";
import { Code } from "@connectrpc/connect";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AccountService } from "../../gen/identity/v1/account_pb.js";
import { OtpPurpose, UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { proveAs, rest } from "../support/account.js";
import { bearer, clientFor, signUp, testPhone, type SignedUp } from "../support/clients.js";
import { PG_ADMIN_URL } from "../support/env.js";
import { failure } from "../support/failures.js";
import { startPrivateRedis, type PrivateRedis } from "../support/private-redis.js";
import { startTestServer, testServerEnv, type TestServer } from "../support/server.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

/** `call`'s result once the store is back (the clients reconnect with a backoff). */
async function once<T>(call: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await call();
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe("account lifecycle with a store down (e2e)", function () {
  this.timeout(90_000);
  let redis: PrivateRedis;
  let pg: TcpProxy;
  let server: TestServer;
  let user: SignedUp;
  const account = () => clientFor(AccountService, server.url);
  const auth = () => clientFor(UserAuthService, server.url);

  before(async () => {
    redis = await startPrivateRedis();
    pg = await startTcpProxy({ host: "127.0.0.1", port: Number(new URL(PG_ADMIN_URL).port || 5432) });
    const db = new URL(testServerEnv().DATABASE_URL!);
    db.host = `127.0.0.1:${pg.port}`;
    server = await startTestServer({ REDIS_URL: `redis://127.0.0.1:${redis.port}/0`, DATABASE_URL: db.toString(), REDIS_COMMAND_TIMEOUT_MS: "1000" });
    user = await signUp(server.url);
  });
  after(async () => {
    await server?.close();
    await pg?.close();
    await redis?.close();
  });

  it("Redis down: caller-bound codes, ChangeIdentifier proofs and exports answer unavailable; sessions and activity still work", async () => {
    const deleteToken = await proveAs(server.url, user.accessToken, user.phone, OtpPurpose.DELETE_ACCOUNT);
    await redis.stop();
    try {
      for (const call of [
        () => auth().requestOtp({ identifier: testPhone(), purpose: OtpPurpose.CHANGE_IDENTIFIER }, bearer(user.accessToken)),
        () => account().exportAccountData({}, bearer(user.accessToken)),
        // The verification token lives in Redis: without it nothing is deleted.
        () => account().deleteAccount({ verificationToken: deleteToken }, bearer(user.accessToken)),
      ]) {
        const err = await failure(call());
        expect(err.code, err.message).to.equal(Code.Unavailable);
        expect(err.findDetails(RetryInfoSchema)).to.have.length(1);
      }
      const exported = await rest(server, "GET", "/api/users/me/export", { token: user.accessToken });
      expect(exported.status).to.equal(503);
      expect(exported.headers.get("retry-after")).to.equal("1");
      // PostgreSQL alone serves these.
      const activity = await account().listMyActivity({ pageSize: 5 }, bearer(user.accessToken));
      expect(activity.events.length).to.be.greaterThan(0);
      expect((await auth().getMe({}, bearer(user.accessToken))).user?.isActive).to.equal(true);
    } finally {
      await redis.start();
    }
    // Back: the account was not deleted, and the export works.
    const exported = await once(() => account().exportAccountData({}, bearer(user.accessToken)));
    expect(exported.user?.id).to.equal(user.userId);
  });

  it("PostgreSQL down: RevokeAllSessions, ListMyActivity and DeleteAccount answer unavailable and change nothing", async () => {
    const other = await once(() => signUp(server.url));
    const deleteToken = await proveAs(server.url, other.accessToken, other.phone, OtpPurpose.DELETE_ACCOUNT);
    pg.cut();
    try {
      for (const call of [
        () => auth().revokeAllSessions({ keepCurrent: true }, bearer(other.accessToken)),
        () => account().listMyActivity({ pageSize: 5 }, bearer(other.accessToken)),
        () => account().deleteAccount({ verificationToken: deleteToken }, bearer(other.accessToken)),
      ]) {
        const err = await failure(call());
        expect(err.code, err.message).to.equal(Code.Unavailable);
      }
      const revoked = await rest(server, "POST", "/api/auth/sessions/revoke-all", { token: other.accessToken, body: { keep_current: true } });
      expect(revoked.status).to.equal(503);
    } finally {
      await pg.restore();
    }
    // Back: the account is live and was not scheduled for deletion.
    expect((await once(() => auth().getMe({}, bearer(other.accessToken)))).user?.isActive).to.equal(true);
    const activity = await account().listMyActivity({ pageSize: 50 }, bearer(other.accessToken));
    expect(activity.events.map((e) => e.action)).to.not.include("account.deletion_requested");
  });
});
