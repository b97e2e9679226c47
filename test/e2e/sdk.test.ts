// The SDK (src/client) against the real server with 2-second access tokens: it signs up,
// keeps the session alive by refreshing on its own (one refresh for many failing calls),
// and ends it on logout or when the server refuses to renew it. Imported through the
// package's "exports", as an app would.
import { Code, type Interceptor } from "@connectrpc/connect";
import { expect } from "chai";
import { createIdentityClient, OtpPurpose, UserAuthService, type IdentityClient } from "identity-service/client";
import { createNodeTransport } from "identity-service/client/node";
import { createWebTransport } from "identity-service/client/web";
import { QueryTypes } from "sequelize";
import { codeOf } from "../support/failures.js";
import { bearer, clientFor, testPhone } from "../support/clients.js";
import { startTestServer, TEST_CODE, type TestServer } from "../support/server.js";

interface SentCall {
  method: string;
  authorization: string | null;
}

/** An interceptor under the SDK that records every call actually sent. */
function recorder(): { calls: SentCall[]; interceptor: Interceptor; count(method: string): number } {
  const calls: SentCall[] = [];
  return {
    calls,
    interceptor: (next) => (req) => {
      calls.push({ method: req.method.name, authorization: req.header.get("authorization") });
      return next(req);
    },
    count: (method) => calls.filter((c) => c.method === method).length,
  };
}

/** Signs a new test-range phone number up with the SDK alone (Register starts the session). */
async function signUpWith(client: IdentityClient) {
  const phone = testPhone();
  await client.auth.requestOtp({ identifier: phone, purpose: OtpPurpose.REGISTER });
  const { verificationToken } = await client.auth.verifyOtp({ identifier: phone, otp: TEST_CODE, purpose: OtpPurpose.REGISTER });
  return client.auth.register({ verificationToken, username: `sdk_${Date.now() % 1e8}_${Math.random().toString(36).slice(2, 6)}`, phoneNumber: phone });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until the server refuses `accessToken`. The token lives ACCESS_TOKEN_TTL_SECONDS,
 * but the server also tolerates some clock skew on exp, so a fixed sleep of the TTL is not
 * enough: ask the server itself, with a client that is not the SDK.
 */
async function untilRefused(url: string, accessToken: string): Promise<void> {
  const auth = clientFor(UserAuthService, url);
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(250)) {
    if ((await codeOf(auth.getMe({}, bearer(accessToken))).catch(() => Code.Unknown)) === Code.Unauthenticated) return;
  }
  throw new Error("the access token was still accepted after 20 s");
}

describe("SDK (identity-service/client)", function () {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({ ACCESS_TOKEN_TTL_SECONDS: "2" });
  });
  after(async () => {
    await server?.close();
  });

  async function refreshAudits(userId: string): Promise<number> {
    const [row] = await server.app.stores.sequelize.query<{ n: string }>("SELECT count(*) AS n FROM user_audit_logs WHERE user_id = :userId AND action = 'session.refreshed'", {
      replacements: { userId },
      type: QueryTypes.SELECT,
    });
    return Number(row!.n);
  }

  for (const protocol of ["grpc", "connect"] as const) {
    describe(`over Node ${protocol}`, () => {
      it("signs up, refreshes by itself once for parallel calls, and signs out", async function () {
        this.timeout(60_000);
        const sent = recorder();
        let sessionsEnded = 0;
        const client = createIdentityClient({
          transport: createNodeTransport({ baseUrl: server.url, protocol, interceptors: [sent.interceptor] }),
          onSessionEnded: () => sessionsEnded++,
        });

        const reg = await signUpWith(client);
        expect(await client.tokens.get()).to.deep.equal({ accessToken: reg.accessToken, refreshToken: reg.refreshToken });
        expect((await client.auth.getMe({})).user?.id).to.equal(reg.userId);
        expect(sent.calls.at(-1)).to.deep.equal({ method: "GetMe", authorization: `Bearer ${reg.accessToken}` });
        // Policy NONE methods never carry the token.
        expect(sent.calls.filter((c) => c.method !== "GetMe").every((c) => c.authorization === null)).to.equal(true);

        // Expired: the SDK refreshes by itself and the call succeeds.
        await untilRefused(server.url, reg.accessToken);
        expect((await client.auth.getMe({})).user?.id).to.equal(reg.userId);
        const rotated = (await client.tokens.get())!;
        expect(rotated.refreshToken).to.not.equal(reg.refreshToken);
        expect(rotated.accessToken).to.not.equal(reg.accessToken);
        expect(sent.count("RefreshToken")).to.equal(1);

        // Expired again: five calls fail together, one refresh serves them all.
        await untilRefused(server.url, rotated.accessToken);
        const results = await Promise.all([
          client.auth.getMe({}),
          client.auth.getMe({}),
          client.auth.listSessions({}),
          client.auth.getMe({}),
          client.auth.listSessions({}),
        ]);
        expect(results).to.have.length(5);
        expect(sent.count("RefreshToken")).to.equal(2);
        expect(await refreshAudits(reg.userId)).to.equal(2);
        expect((await client.tokens.get())!.refreshToken).to.not.equal(rotated.refreshToken);

        expect((await client.auth.logout({})).message).to.equal("Logged out");
        expect(await client.tokens.get()).to.equal(undefined);
        expect(await codeOf(client.auth.getMe({}))).to.equal(Code.Unauthenticated);
        expect(sent.calls.at(-1)).to.deep.equal({ method: "GetMe", authorization: null });
        expect(sent.count("RefreshToken")).to.equal(2);
        expect(sessionsEnded).to.equal(0);
      });

      it("ends the session once when the server refuses to renew it", async () => {
        const sent = recorder();
        let sessionsEnded = 0;
        const client = createIdentityClient({
          transport: createNodeTransport({ baseUrl: server.url, protocol, interceptors: [sent.interceptor] }),
          onSessionEnded: () => sessionsEnded++,
        });
        const reg = await signUpWith(client);
        // The session ends elsewhere (another client logs it out).
        await clientFor(UserAuthService, server.url).logout({}, bearer(reg.accessToken));

        const codes = await Promise.all([codeOf(client.auth.getMe({})), codeOf(client.auth.getMe({})), codeOf(client.auth.listSessions({}))]);
        expect(codes).to.deep.equal([Code.Unauthenticated, Code.Unauthenticated, Code.Unauthenticated]);
        expect(sent.count("RefreshToken")).to.equal(1);
        expect(sessionsEnded).to.equal(1);
        expect(await client.tokens.get()).to.equal(undefined);
      });

      it("leaves a call alone when the caller sets authorization itself", async () => {
        const client = createIdentityClient({ transport: createNodeTransport({ baseUrl: server.url, protocol }) });
        const mine = await signUpWith(client);
        const other = await signUpWith(createIdentityClient({ transport: createNodeTransport({ baseUrl: server.url, protocol }) }));
        expect((await client.auth.getMe({}, bearer(other.accessToken))).user?.id).to.equal(other.userId);
        expect((await client.auth.getMe({})).user?.id).to.equal(mine.userId);
      });
    });
  }

  it("carries the session to the account methods and to codes that need a caller, renewing an expired token first", async function () {
    this.timeout(60_000);
    const sent = recorder();
    const client = createIdentityClient({ transport: createNodeTransport({ baseUrl: server.url, protocol: "connect", interceptors: [sent.interceptor] }) });
    const reg = await signUpWith(client);
    const me = (await client.auth.getMe({})).user!;
    expect((await client.account.exportAccountData({})).user?.id).to.equal(reg.userId);
    // The access token expires: the caller-bound code request is refused, renewed and sent again.
    await untilRefused(server.url, reg.accessToken);
    await client.auth.requestOtp({ identifier: me.phoneNumber, purpose: OtpPurpose.DELETE_ACCOUNT });
    expect(sent.count("RefreshToken")).to.equal(1);
    const renewed = (await client.tokens.get())!.accessToken;
    expect(sent.calls.filter((c) => c.method === "RequestOtp").at(-1)).to.deep.equal({ method: "RequestOtp", authorization: `Bearer ${renewed}` });
    const { verificationToken } = await client.auth.verifyOtp({ identifier: me.phoneNumber, otp: TEST_CODE, purpose: OtpPurpose.DELETE_ACCOUNT });
    const deleted = await client.account.deleteAccount({ verificationToken });
    expect(deleted.erased).to.equal(false);
    expect((await client.account.listMyActivity({}).catch((e: unknown) => e)) instanceof Error).to.equal(true);
  });

  for (const protocol of ["connect", "grpc-web"] as const) {
    it(`works with the web transport over ${protocol} (fetch)`, async () => {
      const client = createIdentityClient({ transport: createWebTransport({ baseUrl: server.url, protocol }) });
      const reg = await signUpWith(client);
      const me = await client.auth.getMe({});
      expect(me.user?.id).to.equal(reg.userId);
    });
  }
});
