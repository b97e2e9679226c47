// Account lifecycle end to end, part 2 (issue 16, point 4): DeleteAccount over REST, Connect
// JSON and gRPC (@grpc/grpc-js); restore by Login during the grace period; the erasure by the
// real Agenda job purge-deleted-accounts with the grace shortened by configuration
// (ACCOUNT_DELETION_GRACE_DAYS=0.00003, about 3 s), shown row by row; the erasure inside the
// call with a grace of 0; refusals that change nothing.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { AccountService, DeleteAccountRequestSchema, DeleteAccountResponseSchema } from "../../gen/identity/v1/account_pb.js";
import { OtpPurpose, UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { DeviceService } from "../../gen/identity/v1/device_pb.js";
import { DocumentType, KycService } from "../../gen/identity/v1/kyc_pb.js";
import { PointsService } from "../../gen/identity/v1/points_pb.js";
import { ProfileService } from "../../gen/identity/v1/profile_pb.js";
import { startWorker, type Worker } from "../../src/jobs/worker.js";
import { createLogger } from "../../src/logger.js";
import { createNotifier, type Notifier } from "../../src/notify/index.js";
import { auditActions, auditCount, proveAs, rest, rows, signUpWithEmail } from "../support/account.js";
import { bearer, bearerMetadata, clientFor, grpcJsClient, grpcUnary, signIn, signUp, type SignedUp } from "../support/clients.js";
import { codeOf, failure, violatedFields } from "../support/failures.js";
import { startFakeSmtp, type FakeSmtp } from "../support/fake-smtp.js";
import { startFakeWebhook, type FakeWebhook } from "../support/fake-webhook.js";
import { mintServiceToken } from "../support/service-token.js";
import { startTestServer, TEST_CODE, type TestServer } from "../support/server.js";

const execute = promisify(execFile);
const tsx = join(process.cwd(), "node_modules/.bin/tsx");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(check: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out waiting");
    await sleep(100);
  }
}

/** A LOGIN verification token of a test phone number. */
async function loginToken(url: string, phone: string): Promise<string> {
  const auth = clientFor(UserAuthService, url);
  await auth.requestOtp({ identifier: phone, purpose: OtpPurpose.LOGIN });
  return (await auth.verifyOtp({ identifier: phone, otp: TEST_CODE, purpose: OtpPurpose.LOGIN })).verificationToken;
}

describe("account lifecycle: DeleteAccount, restore by Login, purge-deleted-accounts (e2e)", function () {
  this.timeout(90_000);
  let smtp: FakeSmtp;
  let server: TestServer;
  let grpcClient: grpc.Client;
  const account = (url = server.url) => clientFor(AccountService, url);
  const auth = (url = server.url) => clientFor(UserAuthService, url);
  const deleteToken = (user: SignedUp, url = server.url) => proveAs(url, user.accessToken, user.phone, OtpPurpose.DELETE_ACCOUNT);

  before(async () => {
    smtp = await startFakeSmtp();
    server = await startTestServer({ SMTP_URL: smtp.url, OTP_RESEND_SECONDS: "0" });
    grpcClient = grpcJsClient(server.port);
  });
  after(async () => {
    grpcClient?.close();
    await server?.close();
    await smtp?.close();
  });

  describe("at once, with the default grace of 30 days", () => {
    it("over REST: disabled, every session ended, every device deactivated, audit row; the response says when", async () => {
      const user = await signUp(server.url);
      const second = await signIn(server.url, user.phone);
      const devices = clientFor(DeviceService, server.url);
      for (const id of ["phone-a", "tablet-b"]) await devices.registerDevice({ deviceId: id, fcmToken: `fcm-${id}-${user.userId}`, deviceType: 1 }, bearer(user.accessToken));
      const token = await deleteToken(user);
      const started = Date.now();
      const r = await rest(server, "POST", "/api/users/me/delete", { token: second.accessToken, body: { verification_token: token } });
      expect(r.status).to.equal(200);
      expect(r.body.erased).to.equal(false);
      const due = Date.parse(r.body.deletion_scheduled_for as string);
      expect(due - started).to.be.within(30 * 86400_000 - 60_000, 30 * 86400_000 + 60_000);

      const [u] = await rows<{ is_active: boolean; deletion_scheduled_for: Date; erased_at: Date | null }>(server, "SELECT is_active, deletion_scheduled_for, erased_at FROM users WHERE id = :id", { id: user.userId });
      expect(u).to.deep.include({ is_active: false, erased_at: null });
      expect(u!.deletion_scheduled_for.getTime()).to.equal(due);
      expect(await rows(server, "SELECT id FROM sessions WHERE user_id = :id AND revoked_at IS NULL", { id: user.userId })).to.have.length(0);
      expect(await rows(server, "SELECT id FROM user_devices WHERE user_id = :id AND is_active", { id: user.userId })).to.have.length(0);
      for (const s of [user, second]) {
        expect(await codeOf(auth().getMe({}, bearer(s.accessToken)))).to.equal(Code.Unauthenticated);
        expect(await codeOf(auth().refreshToken({ refreshToken: s.refreshToken }))).to.equal(Code.Unauthenticated);
      }
      const [row] = await rows<{ new_values: Record<string, unknown>; session_id: string }>(server, "SELECT new_values, session_id FROM user_audit_logs WHERE user_id = :id AND action = 'account.deletion_requested'", { id: user.userId });
      expect(row).to.deep.equal({ session_id: second.sessionId, new_values: { is_active: false, deletion_scheduled_for: new Date(due).toISOString(), sessions_ended: 2, devices_deactivated: 2 } });
      const [outbox] = await rows<{ n: number }>(server, "SELECT count(*)::int AS n FROM outbox WHERE user_id = :id AND reason = 'account.deletion_requested'", { id: user.userId });
      expect(outbox!.n).to.equal(1);
    });

    it("Login with a valid verification token during the grace restores the account (account_restored: true over REST, audit row)", async () => {
      const user = await signUp(server.url);
      await account().deleteAccount({ verificationToken: await deleteToken(user) }, bearer(user.accessToken));
      const login = await rest(server, "POST", "/api/auth/login", { body: { identifier: user.phone, verification_token: await loginToken(server.url, user.phone) } });
      expect(login.status).to.equal(200);
      expect(login.body).to.include({ user_id: user.userId, account_restored: true });
      const me = await auth().getMe({}, bearer(login.body.access_token as string));
      expect(me.user).to.include({ id: user.userId, isActive: true });
      const [u] = await rows(server, "SELECT is_active, deletion_requested_at, deletion_scheduled_for, deactivated_at FROM users WHERE id = :id", { id: user.userId });
      expect(u).to.deep.equal({ is_active: true, deletion_requested_at: null, deletion_scheduled_for: null, deactivated_at: null });
      expect((await auditActions(server, user.userId)).slice(-3)).to.deep.equal(["account.restored", "session.created", "user.login"]);
      // The next sign-in is an ordinary one.
      const again = await auth().login({ identifier: user.phone, verificationToken: await loginToken(server.url, user.phone) });
      expect(again.accountRestored).to.equal(false);
    });

    it("over gRPC (@grpc/grpc-js), restored by Login over Connect JSON", async () => {
      const user = await signUp(server.url);
      const res = await grpcUnary(grpcClient, "/identity.v1.AccountService/DeleteAccount", DeleteAccountRequestSchema, DeleteAccountResponseSchema, { $typeName: "identity.v1.DeleteAccountRequest", verificationToken: await deleteToken(user) }, bearerMetadata(user.accessToken));
      expect(res.erased).to.equal(false);
      expect(Number(res.deletionScheduledFor!.seconds) * 1000).to.be.greaterThan(Date.now() + 29 * 86400_000);
      const login = await auth().login({ identifier: user.phone, verificationToken: await loginToken(server.url, user.phone) });
      expect(login).to.include({ userId: user.userId, accountRestored: true });
    });

    it("a DELETE_ACCOUNT proof of an identifier the account no longer has is refused (unauthenticated, nothing changed)", async () => {
      const user = await signUpWithEmail(server.url);
      const stale = await proveAs(server.url, user.accessToken, user.email, OtpPurpose.DELETE_ACCOUNT, smtp);
      const next = `moved.${Date.now()}@example.com`;
      await auth().changeIdentifier({ verificationToken: await proveAs(server.url, user.accessToken, next, OtpPurpose.CHANGE_IDENTIFIER, smtp) }, bearer(user.accessToken));
      const before = await auditCount(server);
      expect(await codeOf(account().deleteAccount({ verificationToken: stale }, bearer(user.accessToken)))).to.equal(Code.Unauthenticated);
      expect(await auditCount(server)).to.equal(before);
      expect((await auth().getMe({}, bearer(user.accessToken))).user!.isActive).to.equal(true);
    });

    it("an account staff deactivated stays permission_denied on Login (no restore)", async () => {
      const user = await signUp(server.url);
      await server.app.stores.models.User.update({ isActive: false, deactivatedAt: new Date() }, { where: { id: user.userId } });
      expect(await codeOf(auth().login({ identifier: user.phone, verificationToken: await loginToken(server.url, user.phone) }))).to.equal(Code.PermissionDenied);
      expect(await auditActions(server, user.userId)).to.not.include("account.restored");
    });

    it("refusals change nothing: missing token, another user's token, another purpose; deleting twice", async () => {
      const alice = await signUpWithEmail(server.url);
      const bob = await signUp(server.url);
      const before = await auditCount(server);
      const missing = await failure(account().deleteAccount({ verificationToken: "" }, bearer(alice.accessToken)));
      expect([missing.code, violatedFields(missing)]).to.deep.equal([Code.InvalidArgument, ["verification_token"]]);
      const bobs = await deleteToken(bob);
      const afterBob = await auditCount(server);
      expect(await codeOf(account().deleteAccount({ verificationToken: bobs }, bearer(alice.accessToken)))).to.equal(Code.Unauthenticated);
      const change = await proveAs(server.url, alice.accessToken, `other.${Date.now()}@example.com`, OtpPurpose.CHANGE_IDENTIFIER, smtp);
      const afterChange = await auditCount(server);
      expect(await codeOf(account().deleteAccount({ verificationToken: change }, bearer(alice.accessToken)))).to.equal(Code.Unauthenticated);
      const anonymous = await rest(server, "POST", "/api/users/me/delete", { body: { verification_token: bobs } });
      expect(anonymous.status).to.equal(401);
      // Only the OTP rows of the proofs were written; both accounts are untouched.
      expect(afterBob - before).to.equal(2);
      expect(await auditCount(server)).to.equal(afterChange);
      const live = await rows(server, "SELECT id FROM users WHERE id IN (:ids) AND is_active AND deletion_scheduled_for IS NULL", { ids: [alice.userId, bob.userId] });
      expect(live).to.have.length(2);

      // Two requests at once from two sessions, each with a token of its own: one deletes, the
      // other is refused (failed_precondition, or unauthenticated once its session has ended).
      const second = await signIn(server.url, bob.phone);
      const other = await proveAs(server.url, second.accessToken, bob.phone, OtpPurpose.DELETE_ACCOUNT);
      const outcomes = await Promise.allSettled([
        account().deleteAccount({ verificationToken: bobs }, bearer(bob.accessToken)),
        account().deleteAccount({ verificationToken: other }, bearer(second.accessToken)),
      ]);
      expect(outcomes.filter((o) => o.status === "fulfilled")).to.have.length(1);
      const refused = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected")!;
      expect([Code.FailedPrecondition, Code.Unauthenticated]).to.include((refused.reason as { code: Code }).code);
      expect((await auditActions(server, bob.userId)).filter((a) => a === "account.deletion_requested")).to.have.length(1);
    });
  });

  describe("erasure", () => {
    let receiver: FakeWebhook;
    let short: TestServer;
    let worker: Worker;
    let notifier: Notifier;

    before(async () => {
      receiver = await startFakeWebhook();
      short = await startTestServer({ ACCOUNT_DELETION_GRACE_DAYS: "0.00003", OTP_RESEND_SECONDS: "0", WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: "purge-secret" });
      const logger = createLogger("silent");
      notifier = createNotifier(short.app.config, logger);
      worker = await startWorker({ config: short.app.config, logger, stores: short.app.stores, notifier, tuning: { processEveryMs: 200, lockLifetimeMs: 5_000 } });
    });
    after(async () => {
      await worker?.stop();
      await notifier?.close();
      await short?.close();
      await receiver?.close();
    });

    /** Every row the database holds about a user, table by table. */
    async function holdings(userId: string) {
      const q = <T extends object>(sql: string) => rows<T>(short, sql, { id: userId });
      return {
        users: await q<Record<string, unknown>>("SELECT username, email, phone_number, is_active, deletion_scheduled_for IS NOT NULL AS scheduled, erased_at IS NOT NULL AS erased FROM users WHERE id = :id"),
        user_profiles: await q("SELECT full_name, address FROM user_profiles WHERE user_id = :id"),
        user_kyc: await q("SELECT status, document_number FROM user_kyc WHERE user_id = :id"),
        user_devices: await q("SELECT device_id, fcm_token FROM user_devices WHERE user_id = :id"),
        sessions: await q("SELECT id, ip_address FROM sessions WHERE user_id = :id"),
        user_points: await q<Record<string, unknown>>("SELECT current_points, total_points FROM user_points WHERE user_id = :id"),
        points_transactions: await q<{ id: string; delta: string }>("SELECT id, delta FROM points_transactions WHERE user_id = :id ORDER BY created_at, id"),
        user_audit_logs: await q<{ action: string; entity_type: string; created_at: Date; ip_address: string | null; user_agent: string | null; old_values: unknown; new_values: unknown }>(
          "SELECT action, entity_type, created_at, ip_address, user_agent, old_values, new_values FROM user_audit_logs WHERE user_id = :id ORDER BY id",
        ),
      };
    }

    it("the real Agenda job erases a seeded account once its grace is over, row by row; the identifiers are free; running it again changes nothing", async () => {
      const user = await signUpWithEmail(short.url);
      const authed = bearer(user.accessToken);
      await clientFor(ProfileService, short.url).updateProfile({ fullName: "Erin Erasure", address: "7 Forget Street", dateOfBirth: "1990-02-03" }, authed);
      await clientFor(KycService, short.url).submitKyc({ documentType: DocumentType.PASSPORT, documentNumber: "P7654321", documentFrontUrl: "https://docs.example.com/erin-front.jpg" }, authed);
      const devices = clientFor(DeviceService, short.url);
      await devices.registerDevice({ deviceId: "erin-phone", fcmToken: `fcm-erin-${user.userId}`, deviceType: 2, deviceName: "Erin's iPhone" }, authed);
      await devices.registerDevice({ deviceId: "erin-web", fcmToken: `fcm-erin-web-${user.userId}`, deviceType: 3 }, authed);
      const second = await signIn(short.url, user.phone);
      const service = await mintServiceToken(short.env, "billing");
      const points = clientFor(PointsService, short.url);
      await points.adjustPoints({ userId: user.userId, delta: 100n, reason: "welcome", idempotencyKey: `w-${user.userId}` }, bearer(service));
      await points.adjustPoints({ userId: user.userId, delta: -30n, reason: "shop", idempotencyKey: `s-${user.userId}` }, bearer(service));

      const seeded = await holdings(user.userId);
      expect(seeded.users).to.deep.equal([{ username: user.username, email: user.email, phone_number: user.phone, is_active: true, scheduled: false, erased: false }]);
      expect(seeded.user_profiles).to.have.length(1);
      expect(seeded.user_kyc).to.deep.equal([{ status: "PENDING", document_number: "P7654321" }]);
      expect(seeded.user_devices).to.have.length(2);
      expect(seeded.sessions).to.have.length(2);
      expect(seeded.points_transactions.map((t) => t.delta)).to.deep.equal(["100", "-30"]);
      expect(seeded.user_audit_logs.some((a) => a.ip_address === "127.0.0.1")).to.equal(true);

      const r = await account(short.url).deleteAccount({ verificationToken: await proveAs(short.url, second.accessToken, user.phone, OtpPurpose.DELETE_ACCOUNT) }, bearer(second.accessToken));
      expect(r.erased).to.equal(false);
      const due = Number(r.deletionScheduledFor!.seconds) * 1000 + Math.ceil(r.deletionScheduledFor!.nanos / 1e6);
      expect(due - Date.now()).to.be.within(0, 3_500);

      // Past the grace, before the purge: signing in no longer restores the account.
      await sleep(Math.max(0, due - Date.now()) + 200);
      expect(await codeOf(auth(short.url).login({ identifier: user.phone, verificationToken: await loginToken(short.url, user.phone) }))).to.equal(Code.PermissionDenied);

      await worker.queue.enqueue("purge-deleted-accounts");
      await until(async () => (await holdings(user.userId)).users[0]!.erased);
      const erased = await holdings(user.userId);
      // users: the row stays, anonymous and disabled.
      expect(erased.users).to.deep.equal([{ username: null, email: null, phone_number: null, is_active: false, scheduled: true, erased: true }]);
      // Profile, KYC (number and document URLs), devices and sessions: gone.
      expect(erased.user_profiles).to.deep.equal([]);
      expect(erased.user_kyc).to.deep.equal([]);
      expect(erased.user_devices).to.deep.equal([]);
      expect(erased.sessions).to.deep.equal([]);
      // The ledger stays, a financial record, under the anonymous id.
      expect(erased.user_points).to.deep.equal([{ current_points: "70", total_points: "100" }]);
      expect(erased.points_transactions).to.deep.equal(seeded.points_transactions);
      // Audit rows: the same actions, entities and times (plus the erasure's own row), without
      // IP, user agent or anything naming the person.
      const shape = (a: { action: string; entity_type: string; created_at: Date }) => [a.action, a.entity_type, a.created_at.getTime()];
      expect(erased.user_audit_logs.slice(0, seeded.user_audit_logs.length).map(shape)).to.deep.equal(seeded.user_audit_logs.map(shape));
      expect(erased.user_audit_logs.at(-1)).to.deep.include({ action: "account.erased", entity_type: "user", ip_address: null, user_agent: null });
      for (const a of erased.user_audit_logs) expect([a.ip_address, a.user_agent], a.action).to.deep.equal([null, null]);
      const text = JSON.stringify(erased.user_audit_logs.map((a) => [a.old_values, a.new_values]));
      for (const personal of [user.username, user.email, user.phone, user.phone.slice(0, 5) + "***", "Erin", "Forget", "1990-02-03", "4321", "docs.example.com", "erin-phone", "Erin's iPhone", "fcm-erin"]) {
        expect(text, personal).to.not.include(personal);
      }
      // Non-personal values stay (e.g. the KYC submission's status, the sign-in's channel).
      expect(text).to.include('"status":"PENDING"').and.include('"via":"phone"');
      const [accountRow] = await rows<{ actor_id: string }>(short, "SELECT actor_id FROM user_audit_logs WHERE user_id = :id AND action = 'account.erased'", { id: user.userId });
      expect(accountRow!.actor_id).to.equal("job:purge-deleted-accounts");

      // Webhook receivers hear account.deleted, with the anonymous snapshot.
      await until(async () =>
        receiver.requests.some((q) => {
          const p = JSON.parse(q.body) as { user_id: string; reasons: string[] };
          return p.user_id === user.userId && p.reasons.includes("account.deleted");
        }),
      );
      const last = receiver.requests.map((q) => JSON.parse(q.body) as { user_id: string; reasons: string[]; user: Record<string, unknown> }).filter((p) => p.user_id === user.userId && p.reasons.includes("account.deleted")).at(-1)!;
      expect(last.user).to.include({ username: null, email: null, phone_number: null, is_active: false });

      // The identifiers are free: both register a new account.
      const again = await signUpWithEmail(short.url, user.email);
      expect(again.userId).to.not.equal(user.userId);
      const c = auth(short.url);
      await c.requestOtp({ identifier: user.phone, purpose: OtpPurpose.REGISTER });
      const reg = await c.verifyOtp({ identifier: user.phone, otp: TEST_CODE, purpose: OtpPurpose.REGISTER });
      const fresh = await c.register({ verificationToken: reg.verificationToken, username: user.username, phoneNumber: user.phone });
      expect(fresh.userId).to.not.equal(user.userId);

      // A second run (here through `npm run job`) finds nothing left to erase and changes nothing.
      const { stdout } = await execute(tsx, ["src/cli/job.ts", "purge-deleted-accounts"], { env: { ...process.env, ...short.env }, timeout: 30_000 });
      expect(JSON.parse(stdout)).to.deep.include({ job: "purge-deleted-accounts", ok: true, erased: 0 });
      expect(await holdings(user.userId)).to.deep.equal(erased);
    });

    it("with ACCOUNT_DELETION_GRACE_DAYS=0 the erasure happens inside the DeleteAccount call", async () => {
      const now = await startTestServer({ ACCOUNT_DELETION_GRACE_DAYS: "0" }, short.env);
      try {
        const user = await signUp(now.url);
        await clientFor(ProfileService, now.url).updateProfile({ fullName: "Instant Gone" }, bearer(user.accessToken));
        const r = await rest(now, "POST", "/api/users/me/delete", { token: user.accessToken, body: { verification_token: await deleteToken(user, now.url) } });
        expect(r.status).to.equal(200);
        expect(r.body.erased).to.equal(true);
        const u = await holdings(user.userId);
        expect(u.users).to.deep.equal([{ username: null, email: null, phone_number: null, is_active: false, scheduled: true, erased: true }]);
        expect([u.user_profiles, u.sessions]).to.deep.equal([[], []]);
        expect(u.user_audit_logs.map((a) => a.action).slice(-2)).to.deep.equal(["account.deletion_requested", "account.erased"]);
        expect(await codeOf(auth(now.url).login({ identifier: user.phone, verificationToken: await loginToken(now.url, user.phone) }))).to.equal(Code.NotFound);
      } finally {
        await now.close();
      }
    });
  });
});
