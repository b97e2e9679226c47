// Account lifecycle end to end, part 3 (issue 16, points 5–6): ExportAccountData and
// ListMyActivity over REST, Connect JSON and gRPC (@grpc/grpc-js).
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { AccountService, ExportAccountDataRequestSchema, ExportAccountDataResponseSchema, ListMyActivityRequestSchema, ListMyActivityResponseSchema } from "../../gen/identity/v1/account_pb.js";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { OtpPurpose, UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { DeviceService } from "../../gen/identity/v1/device_pb.js";
import { DocumentType, KycService } from "../../gen/identity/v1/kyc_pb.js";
import { PointsService } from "../../gen/identity/v1/points_pb.js";
import { ProfileService } from "../../gen/identity/v1/profile_pb.js";
import { proveAs, rest, rows, signUpWithEmail, type Json } from "../support/account.js";
import { bearer, bearerMetadata, clientFor, grpcJsClient, grpcUnary, signIn, signUp, testPhone, type SignedUp } from "../support/clients.js";
import { failure, violatedFields } from "../support/failures.js";
import { mintServiceToken } from "../support/service-token.js";
import { startTestServer, type TestServer } from "../support/server.js";

describe("account lifecycle: ExportAccountData and ListMyActivity (e2e)", function () {
  this.timeout(90_000);
  let server: TestServer;
  let grpcClient: grpc.Client;
  let service: string;
  let alice: SignedUp & { email: string };
  let aliceSecond: Awaited<ReturnType<typeof signIn>>;
  let bob: SignedUp;
  const LEDGER = 130; // more than one internal page of 100
  const account = () => clientFor(AccountService, server.url);

  async function seed(user: SignedUp, label: string, ledger: number): Promise<void> {
    const authed = bearer(user.accessToken);
    await clientFor(ProfileService, server.url).updateProfile({ fullName: `${label} Person`, address: `1 ${label} Road` }, authed);
    await clientFor(KycService, server.url).submitKyc({ documentType: DocumentType.PASSPORT, documentNumber: `P${label.length}7654321`.slice(0, 9), documentFrontUrl: `https://docs.example.com/${label}.jpg` }, authed);
    await clientFor(DeviceService, server.url).registerDevice({ deviceId: `${label}-phone`, fcmToken: `fcm-token-of-${label}-${user.userId}`, deviceType: 1, deviceName: `${label}'s phone` }, authed);
    const points = clientFor(PointsService, server.url);
    for (let i = 0; i < ledger; i += 10) {
      await Promise.all(Array.from({ length: Math.min(10, ledger - i) }, (_, j) => points.adjustPoints({ userId: user.userId, delta: 10n, reason: `grant ${i + j}`, idempotencyKey: `${user.userId}-${i + j}` }, bearer(service))));
    }
  }

  before(async () => {
    server = await startTestServer({ OTP_RESEND_SECONDS: "0", ACCOUNT_EXPORTS_PER_HOUR: "100", REFRESH_GRACE_SECONDS: "0" });
    grpcClient = grpcJsClient(server.port);
    service = await mintServiceToken(server.env, "billing");
    alice = await signUpWithEmail(server.url);
    aliceSecond = await signIn(server.url, alice.phone);
    bob = await signUp(server.url);
    await seed(alice, "alice", LEDGER);
    await seed(bob, "bob", 3);
  });
  after(async () => {
    grpcClient?.close();
    await server?.close();
  });

  describe("5. ExportAccountData", () => {
    it("over REST: everything held about the caller, typed; KYC number last 4 only; FCM tokens masked; the whole ledger; only the caller's rows", async () => {
      const r = await rest(server, "GET", "/api/users/me/export", { token: alice.accessToken });
      expect(r.status).to.equal(200);
      const x = r.body as Record<string, Json & Json[]>;
      expect(Object.keys(x).sort()).to.deep.equal(["audit_events", "devices", "exported_at", "kyc", "points_transactions", "profile", "sessions", "user", "wallet"]);
      expect(x.user).to.include({ id: alice.userId, username: alice.username, email: alice.email, phone_number: alice.phone });
      expect(x.profile).to.include({ full_name: "alice Person", address: "1 alice Road" });
      expect(x.kyc).to.include({ status: "KYC_STATUS_PENDING", document_type: "DOCUMENT_TYPE_PASSPORT", document_number_last4: "4321", document_front_url: "https://docs.example.com/alice.jpg" });
      const devices = x.devices as unknown as Json[];
      expect(devices).to.have.length(1);
      expect(devices[0]).to.include({ device_id: "alice-phone", device_name: "alice's phone", fcm_token: `…${alice.userId.slice(-6)}` });
      const sessions = x.sessions as unknown as Json[];
      expect(sessions.map((s) => s.session_id).sort()).to.deep.equal([alice.sessionId, aliceSecond.sessionId].sort());
      expect(sessions.find((s) => s.session_id === alice.sessionId)).to.include({ current: true, ip_address: "127.0.0.1" });
      expect(x.wallet).to.include({ points: String(10 * LEDGER), total_points: String(10 * LEDGER), balance: (LEDGER / 10).toFixed(2) });
      const ledger = x.points_transactions as unknown as Json[];
      expect(ledger).to.have.length(LEDGER);
      expect(new Set(ledger.map((t) => t.id)).size).to.equal(LEDGER);
      const audit = x.audit_events as unknown as Json[];
      expect(audit.map((a) => a.action)).to.include.members(["user.registered", "user.login", "profile.updated", "kyc.submitted", "device.registered", "points.adjusted"]);
      expect(audit.find((a) => a.action === "profile.updated")!.new_values).to.include({ full_name: "alice Person" });

      const text = JSON.stringify(r.body);
      for (const secret of ["P57654321", "7654321", `fcm-token-of-alice-${alice.userId}`]) expect(text, secret).to.not.include(secret);
      for (const foreign of [bob.userId, bob.phone, bob.username, "bob Person", "fcm-token-of-bob"]) expect(text, foreign).to.not.include(foreign);
      const [row] = await rows<{ document_number: string }>(server, "SELECT document_number FROM user_kyc WHERE user_id = :id", { id: alice.userId });
      expect(text).to.not.include(row!.document_number);
    });

    it("over gRPC (@grpc/grpc-js) and Connect JSON: the same typed export", async () => {
      const g = await grpcUnary(grpcClient, "/identity.v1.AccountService/ExportAccountData", ExportAccountDataRequestSchema, ExportAccountDataResponseSchema, { $typeName: "identity.v1.ExportAccountDataRequest" }, bearerMetadata(bob.accessToken));
      expect(g.user!.id).to.equal(bob.userId);
      expect(g.pointsTransactions).to.have.length(3);
      expect(g.kyc!.documentNumberLast4).to.equal("4321");
      const c = await account().exportAccountData({}, bearer(bob.accessToken));
      expect(c.devices[0]!.fcmToken).to.equal(`…${bob.userId.slice(-6)}`);
      expect(c.auditEvents.every((e) => e.id)).to.equal(true);
    });

    it("is rate-limited per user: resource_exhausted with RetryInfo (REST 429)", async () => {
      const strict = await startTestServer({ ACCOUNT_EXPORTS_PER_HOUR: "2" }, server.env);
      try {
        const user = await signUp(strict.url);
        const c = clientFor(AccountService, strict.url);
        await c.exportAccountData({}, bearer(user.accessToken));
        await c.exportAccountData({}, bearer(user.accessToken));
        const err = await failure(c.exportAccountData({}, bearer(user.accessToken)));
        expect(err.code).to.equal(Code.ResourceExhausted);
        const [retry] = err.findDetails(RetryInfoSchema);
        expect(Number(retry!.retryDelay!.seconds)).to.be.within(1, 3600);
        const r = await rest(strict, "GET", "/api/users/me/export", { token: user.accessToken });
        expect([r.status, r.body.code]).to.deep.equal([429, "resource_exhausted"]);
        // Another user is not held back.
        const other = await signUp(strict.url);
        expect((await c.exportAccountData({}, bearer(other.accessToken))).user!.id).to.equal(other.userId);
        // Without a token: unauthenticated.
        expect((await rest(strict, "GET", "/api/users/me/export")).status).to.equal(401);
      } finally {
        await strict.close();
      }
    });
  });

  describe("6. ListMyActivity", () => {
    it("over REST: security events newest first with time, IP, user agent and session id; pages stable while new events arrive", async () => {
      const user = await signUp(server.url);
      for (let i = 0; i < 3; i++) await signIn(server.url, user.phone);
      await clientFor(DeviceService, server.url).registerDevice({ deviceId: "act-1", fcmToken: `fcm-act-${user.userId}`, deviceType: 3 }, bearer(user.accessToken));
      await clientFor(ProfileService, server.url).updateProfile({ address: "not a security event" }, bearer(user.accessToken));

      const first = await rest(server, "GET", "/api/users/me/activity?page_size=2", { token: user.accessToken });
      expect(first.status).to.equal(200);
      const events = (p: { body: Json }) => (p.body.events as Json[] | undefined) ?? [];
      expect(events(first).map((e) => e.action)).to.deep.equal(["device.registered", "user.login"]);
      expect(events(first)[1]).to.include({ ip_address: "127.0.0.1", entity_type: "user" });
      expect(events(first)[1]!.session_id).to.be.a("string").with.length(36);
      expect(events(first)[1]!.user_agent).to.be.a("string").and.not.equal("");
      expect(events(first)[0]!.new_values ?? null).to.equal(null);

      // New events arrive between pages: they come before the first page, never inside a later one.
      await signIn(server.url, user.phone);
      const seen = [...events(first)];
      let token = first.body.next_page_token as string;
      while (token) {
        const page = await rest(server, "GET", `/api/users/me/activity?page_size=2&page_token=${token}`, { token: user.accessToken });
        expect(page.status).to.equal(200);
        seen.push(...events(page));
        token = (page.body.next_page_token as string) ?? "";
      }
      expect(seen.map((e) => e.action)).to.deep.equal(["device.registered", "user.login", "user.login", "user.login", "user.registered"]);
      const ids = seen.map((e) => BigInt(e.id as string));
      expect(ids).to.deep.equal([...ids].sort((a, b) => (a > b ? -1 : 1)));
      const fresh = await account().listMyActivity({ pageSize: 1 }, bearer(user.accessToken));
      expect(fresh.events[0]!.action).to.equal("user.login");
      expect(BigInt(fresh.events[0]!.id) > ids[0]!).to.equal(true);
    });

    it("lists every kind of security event: sign-ins, refresh reuse, logouts, revocations, identifier changes, devices, KYC, deletion and restore", async () => {
      const user = await signUp(server.url);
      const authClient = clientFor(UserAuthService, server.url);
      // Refresh reuse (no grace window on this server): the old refresh token presented again.
      const other = await signIn(server.url, user.phone);
      await authClient.refreshToken({ refreshToken: other.refreshToken });
      await authClient.refreshToken({ refreshToken: other.refreshToken }).catch(() => undefined);
      const third = await signIn(server.url, user.phone);
      await authClient.logout({}, bearer(third.accessToken));
      await clientFor(DeviceService, server.url).registerDevice({ deviceId: "all-1", fcmToken: `fcm-all-${user.userId}`, deviceType: 1 }, bearer(user.accessToken));
      await clientFor(DeviceService, server.url).deactivateDevice({ deviceId: "all-1" }, bearer(user.accessToken));
      await clientFor(KycService, server.url).submitKyc({ documentType: DocumentType.PASSPORT, documentNumber: "X1234567", documentFrontUrl: "https://docs.example.com/x.jpg" }, bearer(user.accessToken));
      const next = testPhone();
      await authClient.changeIdentifier({ verificationToken: await proveAs(server.url, user.accessToken, next, OtpPurpose.CHANGE_IDENTIFIER) }, bearer(user.accessToken));
      await clientFor(AccountService, server.url).deleteAccount({ verificationToken: await proveAs(server.url, user.accessToken, next, OtpPurpose.DELETE_ACCOUNT) }, bearer(user.accessToken));
      const back = await signIn(server.url, next);
      expect(back.accountRestored).to.equal(true);
      const all = await account().listMyActivity({ pageSize: 100 }, bearer(back.accessToken));
      expect(all.events.map((e) => e.action)).to.deep.equal([
        "user.login",
        "account.restored",
        "account.deletion_requested",
        "identifier.changed",
        "kyc.submitted",
        "device.deactivated",
        "device.registered",
        "user.logout",
        "user.login",
        "session.reuse_detected",
        "user.login",
        "user.registered",
      ]);
      for (const e of all.events) expect([e.ipAddress, e.createdAt !== undefined], e.action).to.deep.equal(["127.0.0.1", true]);
    });

    it("covers revocations and never another user's events; over gRPC; bad page arguments are invalid_argument", async () => {
      const user = await signUp(server.url);
      const second = await signIn(server.url, user.phone);
      await clientFor(UserAuthService, server.url).revokeSession({ sessionId: second.sessionId }, bearer(user.accessToken));
      await clientFor(UserAuthService, server.url).revokeAllSessions({ keepCurrent: true }, bearer(user.accessToken));
      const res = await grpcUnary(grpcClient, "/identity.v1.AccountService/ListMyActivity", ListMyActivityRequestSchema, ListMyActivityResponseSchema, { $typeName: "identity.v1.ListMyActivityRequest", pageSize: 10, pageToken: "" }, bearerMetadata(user.accessToken));
      expect(res.events.map((e) => e.action)).to.deep.equal(["sessions.revoked_all", "session.revoked", "user.login", "user.registered"]);
      // Bob's page token on Alice's list: still only Alice's rows.
      const bobsPage = await account().listMyActivity({ pageSize: 1 }, bearer(bob.accessToken));
      const mixed = await account().listMyActivity({ pageSize: 100, pageToken: bobsPage.nextPageToken }, bearer(user.accessToken));
      const bobsIds = new Set((await account().listMyActivity({ pageSize: 100 }, bearer(bob.accessToken))).events.map((e) => e.id));
      expect(mixed.events.filter((e) => bobsIds.has(e.id))).to.deep.equal([]);

      const badToken = await failure(account().listMyActivity({ pageToken: "garbage!" }, bearer(user.accessToken)));
      expect([badToken.code, violatedFields(badToken)]).to.deep.equal([Code.InvalidArgument, ["page_token"]]);
      const badSize = await failure(account().listMyActivity({ pageSize: 101 }, bearer(user.accessToken)));
      expect([badSize.code, violatedFields(badSize)]).to.deep.equal([Code.InvalidArgument, ["page_size"]]);
      expect((await rest(server, "GET", "/api/users/me/activity")).status).to.equal(401);
    });
  });
});
