// Account lifecycle end to end, part 1 (issue 16, points 1–3): the OTP purposes that need a
// caller, ChangeIdentifier and RevokeAllSessions, over REST, Connect JSON and gRPC
// (@grpc/grpc-js), against the real server with real SMTP and SMS peers.
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import {
  ChangeIdentifierRequestSchema,
  ChangeIdentifierResponseSchema,
  OtpPurpose,
  RequestOtpRequestSchema,
  RequestOtpResponseSchema,
  RevokeAllSessionsRequestSchema,
  RevokeAllSessionsResponseSchema,
  UserAuthService,
} from "../../gen/identity/v1/auth_pb.js";
import { auditActions, auditCount, mailedCode, proveAs, rest, rows, signUpWithEmail, uniqueEmail } from "../support/account.js";
import { bearer, bearerMetadata, clientFor, grpcJsClient, grpcUnary, signIn, signUp, testPhone } from "../support/clients.js";
import { codeOf, failure, violatedFields } from "../support/failures.js";
import { startFakeSms, type FakeSms } from "../support/fake-sms.js";
import { startFakeSmtp, type FakeSmtp } from "../support/fake-smtp.js";
import { startTestServer, TEST_CODE, type TestServer } from "../support/server.js";

describe("account lifecycle: caller-bound OTP purposes, ChangeIdentifier, RevokeAllSessions (e2e)", function () {
  this.timeout(60_000);
  let server: TestServer;
  let smtp: FakeSmtp;
  let sms: FakeSms;
  let grpcClient: grpc.Client;
  const auth = () => clientFor(UserAuthService, server.url);

  before(async () => {
    [smtp, sms] = await Promise.all([startFakeSmtp(), startFakeSms()]);
    server = await startTestServer({ SMTP_URL: smtp.url, SMS_API_URL: sms.url, SMS_ACCOUNT_SID: "AC1", SMS_AUTH_TOKEN: "t", SMS_FROM: "+15550000000", OTP_RESEND_SECONDS: "0" });
    grpcClient = grpcJsClient(server.port);
  });
  after(async () => {
    grpcClient?.close();
    await server?.close();
    await Promise.all([smtp?.close(), sms?.close()]);
  });

  describe("1. purposes that need a caller", () => {
    it("RequestOtp/VerifyOtp refuse CHANGE_IDENTIFIER and DELETE_ACCOUNT without an access token, over REST, Connect and gRPC, recording nothing", async () => {
      const before = await auditCount(server);
      for (const purpose of ["OTP_PURPOSE_CHANGE_IDENTIFIER", "OTP_PURPOSE_DELETE_ACCOUNT"]) {
        const r = await rest(server, "POST", "/api/auth/otp/request", { body: { identifier: uniqueEmail(), purpose } });
        expect([r.status, r.body.code]).to.deep.equal([401, "unauthenticated"]);
        const v = await rest(server, "POST", "/api/auth/otp/verify", { body: { identifier: uniqueEmail(), otp: "123456", purpose } });
        expect([v.status, v.body.code]).to.deep.equal([401, "unauthenticated"]);
        // A token that does not verify counts as none.
        const bad = await rest(server, "POST", "/api/auth/otp/request", { token: "not.a.jwt", body: { identifier: uniqueEmail(), purpose } });
        expect(bad.status).to.equal(401);
      }
      expect(await codeOf(auth().requestOtp({ identifier: uniqueEmail(), purpose: OtpPurpose.CHANGE_IDENTIFIER }))).to.equal(Code.Unauthenticated);
      const grpcErr = await grpcUnary(grpcClient, "/identity.v1.UserAuthService/RequestOtp", RequestOtpRequestSchema, RequestOtpResponseSchema, {
        $typeName: "identity.v1.RequestOtpRequest",
        identifier: uniqueEmail(),
        purpose: OtpPurpose.DELETE_ACCOUNT,
        channel: 0,
      }).catch((e: grpc.ServiceError) => e);
      expect((grpcErr as grpc.ServiceError).code).to.equal(grpc.status.UNAUTHENTICATED);
      expect(smtp.messages).to.have.length(0);
      expect(await auditCount(server)).to.equal(before);
    });

    it("DELETE_ACCOUNT: the identifier must be one of the caller's own (invalid_argument with a field violation)", async () => {
      const user = await signUpWithEmail(server.url);
      const before = await auditCount(server);
      const err = await failure(auth().requestOtp({ identifier: uniqueEmail(), purpose: OtpPurpose.DELETE_ACCOUNT }, bearer(user.accessToken)));
      expect(err.code).to.equal(Code.InvalidArgument);
      expect(violatedFields(err)).to.deep.equal(["identifier"]);
      expect(await auditCount(server)).to.equal(before);
      // Either of the caller's own identifiers is fine, and the rows name the caller.
      await proveAs(server.url, user.accessToken, user.email, OtpPurpose.DELETE_ACCOUNT, smtp);
      await proveAs(server.url, user.accessToken, user.phone, OtpPurpose.DELETE_ACCOUNT);
      expect((await auditActions(server, user.userId)).slice(-4)).to.deep.equal(["otp.requested", "otp.verified", "otp.requested", "otp.verified"]);
    });

    it("the verification token serves only its user, purpose and identifier (unauthenticated, nothing changed)", async () => {
      const alice = await signUpWithEmail(server.url);
      const bob = await signUpWithEmail(server.url);
      const target = uniqueEmail("target");
      const token = await proveAs(server.url, alice.accessToken, target, OtpPurpose.CHANGE_IDENTIFIER, smtp);
      const before = await auditCount(server);
      // Another user.
      expect(await codeOf(auth().changeIdentifier({ verificationToken: token }, bearer(bob.accessToken)))).to.equal(Code.Unauthenticated);
      // Another purpose: the DELETE_ACCOUNT token of Alice cannot change her identifier, nor hers delete.
      const del = await proveAs(server.url, alice.accessToken, alice.email, OtpPurpose.DELETE_ACCOUNT, smtp);
      expect(await codeOf(auth().changeIdentifier({ verificationToken: del }, bearer(alice.accessToken)))).to.equal(Code.Unauthenticated);
      // Another identifier / flow: a CHANGE_IDENTIFIER token does not sign in.
      expect(await codeOf(auth().login({ identifier: target, verificationToken: token }))).to.equal(Code.Unauthenticated);
      // Nothing changed (the two OTP rows of the DELETE_ACCOUNT proof are the only new ones).
      expect(await auditCount(server)).to.equal(before + 2);
      const me = await auth().getMe({}, bearer(bob.accessToken));
      expect(me.user!.email).to.equal(bob.email);
      // Alice's token is still good for Alice.
      const changed = await auth().changeIdentifier({ verificationToken: token }, bearer(alice.accessToken));
      expect(changed.user!.email).to.equal(target);
    });

    it("keeps the cooldown of the other purposes", async () => {
      const strict = await startTestServer({ SMTP_URL: smtp.url }, server.env);
      try {
        const user = await signUpWithEmail(strict.url);
        const c = clientFor(UserAuthService, strict.url);
        const target = uniqueEmail();
        await mailedCode(smtp, target, () => c.requestOtp({ identifier: target, purpose: OtpPurpose.CHANGE_IDENTIFIER }, bearer(user.accessToken)));
        const err = await failure(c.requestOtp({ identifier: target, purpose: OtpPurpose.CHANGE_IDENTIFIER }, bearer(user.accessToken)));
        expect(err.code).to.equal(Code.ResourceExhausted);
      } finally {
        await strict.close();
      }
    });
  });

  describe("2. ChangeIdentifier", () => {
    it("replaces the e-mail over Connect JSON: notice to the old address, masked audit row, GetMe and Login see the new one, the old one is free", async () => {
      const user = await signUpWithEmail(server.url);
      const next = uniqueEmail("next");
      const token = await proveAs(server.url, user.accessToken, next, OtpPurpose.CHANGE_IDENTIFIER, smtp);
      const mails = smtp.messages.length;
      const res = await auth().changeIdentifier({ verificationToken: token }, bearer(user.accessToken));
      expect(res.user).to.include({ id: user.userId, email: next, phoneNumber: user.phone, username: user.username });

      const notice = await smtp.waitFor(mails + 1);
      expect(notice.to).to.deep.equal([user.email]);
      expect(notice.subject).to.equal("Your e-mail address was changed");
      expect(notice.text).to.include(`${next[0]}***@example.com`).and.not.include(next);

      const [row] = await rows<{ old_values: unknown; new_values: unknown; ip_address: string; session_id: string }>(
        server,
        "SELECT old_values, new_values, ip_address, session_id FROM user_audit_logs WHERE user_id = :id AND action = 'identifier.changed'",
        { id: user.userId },
      );
      expect(row).to.deep.include({ old_values: { email: `${user.email[0]}***@example.com` }, new_values: { email: `${next[0]}***@example.com` }, session_id: user.sessionId });

      expect((await auth().getMe({}, bearer(user.accessToken))).user!.email).to.equal(next);
      // Login: the new address signs in, the old one names no account.
      const c = auth();
      const loginCode = await mailedCode(smtp, next, () => c.requestOtp({ identifier: next, purpose: OtpPurpose.LOGIN }));
      const { verificationToken } = await c.verifyOtp({ identifier: next, otp: loginCode, purpose: OtpPurpose.LOGIN });
      expect((await c.login({ identifier: next, verificationToken })).userId).to.equal(user.userId);
      const oldCode = await mailedCode(smtp, user.email, () => c.requestOtp({ identifier: user.email, purpose: OtpPurpose.LOGIN }));
      const oldToken = (await c.verifyOtp({ identifier: user.email, otp: oldCode, purpose: OtpPurpose.LOGIN })).verificationToken;
      expect(await codeOf(c.login({ identifier: user.email, verificationToken: oldToken }))).to.equal(Code.NotFound);
      // The old address can register a new account.
      const again = await signUpWithEmail(server.url, user.email);
      expect(again.userId).to.not.equal(user.userId);
    });

    it("replaces the phone number over gRPC (@grpc/grpc-js); the notice goes by SMS to the old number", async () => {
      // A real (non-test) number first, so that the notice is delivered by the SMS provider.
      const user = await signUp(server.url);
      const real = testPhone().replace("+1555", "+44790");
      // Real numbers get a real code, by SMS.
      const c0 = auth();
      const before = sms.messages.length;
      await c0.requestOtp({ identifier: real, purpose: OtpPurpose.CHANGE_IDENTIFIER }, bearer(user.accessToken));
      const smsCode = /\b(\d{6})\b/.exec(sms.messages[before]!.form.Body!)![1]!;
      const toReal = (await c0.verifyOtp({ identifier: real, otp: smsCode, purpose: OtpPurpose.CHANGE_IDENTIFIER }, bearer(user.accessToken))).verificationToken;
      const first = await grpcUnary(grpcClient, "/identity.v1.UserAuthService/ChangeIdentifier", ChangeIdentifierRequestSchema, ChangeIdentifierResponseSchema, { $typeName: "identity.v1.ChangeIdentifierRequest", verificationToken: toReal }, bearerMetadata(user.accessToken));
      expect(first.user).to.include({ phoneNumber: real });
      // The old number was a test identifier: nothing is delivered to it (like its codes).
      const smsBefore = sms.messages.length;
      const next = testPhone();
      const token = await proveAs(server.url, user.accessToken, next, OtpPurpose.CHANGE_IDENTIFIER);
      const res = await grpcUnary(grpcClient, "/identity.v1.UserAuthService/ChangeIdentifier", ChangeIdentifierRequestSchema, ChangeIdentifierResponseSchema, { $typeName: "identity.v1.ChangeIdentifierRequest", verificationToken: token }, bearerMetadata(user.accessToken));
      expect(res.user).to.include({ id: user.userId, phoneNumber: next });
      expect(sms.messages.length).to.equal(smsBefore + 1);
      expect(sms.messages.at(-1)!.form).to.include({ To: real });
      expect(sms.messages.at(-1)!.form.Body).to.match(/phone number of your account was changed/);
      const changes = await rows<{ old_values: Record<string, string>; new_values: Record<string, string> }>(
        server,
        "SELECT old_values, new_values FROM user_audit_logs WHERE user_id = :id AND action = 'identifier.changed' ORDER BY id",
        { id: user.userId },
      );
      expect(changes.map((c) => [c.old_values.phone_number, c.new_values.phone_number])).to.deep.equal([
        [`${user.phone.slice(0, 5)}***${user.phone.slice(-2)}`, `${real.slice(0, 5)}***${real.slice(-2)}`],
        [`${real.slice(0, 5)}***${real.slice(-2)}`, `${next.slice(0, 5)}***${next.slice(-2)}`],
      ]);
      // The old test number is free: it registers a new account.
      const c = auth();
      await c.requestOtp({ identifier: user.phone, purpose: OtpPurpose.REGISTER });
      const reg = await c.verifyOtp({ identifier: user.phone, otp: TEST_CODE, purpose: OtpPurpose.REGISTER });
      const fresh = await c.register({ verificationToken: reg.verificationToken, username: `fresh_${Date.now() % 1e8}`, phoneNumber: user.phone });
      expect(fresh.userId).to.not.equal(user.userId);
    });

    it("a notice that cannot be delivered does not undo or fail the change (it is logged)", async () => {
      const user = await signUp(server.url);
      const real = testPhone().replace("+1555", "+44790"); // every +44790… number is a valid UK mobile (some +44791… are not)
      const c = auth();
      const before = sms.messages.length;
      await c.requestOtp({ identifier: real, purpose: OtpPurpose.CHANGE_IDENTIFIER }, bearer(user.accessToken));
      const code = /\b(\d{6})\b/.exec(sms.messages[before]!.form.Body!)![1]!;
      const token = (await c.verifyOtp({ identifier: real, otp: code, purpose: OtpPurpose.CHANGE_IDENTIFIER }, bearer(user.accessToken))).verificationToken;
      await c.changeIdentifier({ verificationToken: token }, bearer(user.accessToken));
      // Now the old number is a real one: its notice fails at the provider.
      sms.status = 500;
      try {
        const next = testPhone();
        const res = await c.changeIdentifier({ verificationToken: await proveAs(server.url, user.accessToken, next, OtpPurpose.CHANGE_IDENTIFIER) }, bearer(user.accessToken));
        expect(res.user!.phoneNumber).to.equal(next);
        expect(server.logs.some((l) => l.msg === "notice delivery failed" && l.reason === "sms delivery failed: HTTP 500")).to.equal(true);
      } finally {
        sms.status = 201;
      }
    });

    it("over REST: POST /api/users/me/identifier answers the user; already_exists after proof for a taken identifier, changing nothing", async () => {
      const alice = await signUpWithEmail(server.url);
      const bob = await signUpWithEmail(server.url);
      // Alice proves Bob's address (she can read its mail here): told only now that it is taken.
      const token = await proveAs(server.url, alice.accessToken, bob.email, OtpPurpose.CHANGE_IDENTIFIER, smtp);
      const before = await auditCount(server);
      const mails = smtp.messages.length;
      const taken = await rest(server, "POST", "/api/users/me/identifier", { token: alice.accessToken, body: { verification_token: token } });
      expect([taken.status, taken.body.code]).to.deep.equal([409, "already_exists"]);
      expect(await auditCount(server)).to.equal(before);
      expect(smtp.messages.length).to.equal(mails);
      expect((await auth().getMe({}, bearer(alice.accessToken))).user!.email).to.equal(alice.email);

      const missing = await rest(server, "POST", "/api/users/me/identifier", { token: alice.accessToken, body: {} });
      expect([missing.status, missing.body.code]).to.deep.equal([400, "invalid_argument"]);
      const anonymous = await rest(server, "POST", "/api/users/me/identifier", { body: { verification_token: token } });
      expect(anonymous.status).to.equal(401);

      const next = uniqueEmail();
      const ok = await rest(server, "POST", "/api/users/me/identifier", { token: alice.accessToken, body: { verification_token: await proveAs(server.url, alice.accessToken, next, OtpPurpose.CHANGE_IDENTIFIER, smtp) } });
      expect(ok.status).to.equal(200);
      expect(ok.body).to.include({ id: alice.userId, email: next, phone_number: alice.phone, is_active: true });
      // The same identifier again: failed_precondition.
      const same = await rest(server, "POST", "/api/users/me/identifier", { token: alice.accessToken, body: { verification_token: await proveAs(server.url, alice.accessToken, next, OtpPurpose.CHANGE_IDENTIFIER, smtp) } });
      expect([same.status, same.body.code]).to.deep.equal([400, "failed_precondition"]);
    });
  });

  describe("3. RevokeAllSessions", () => {
    it("keep_current over REST: every other session's tokens stop working, on another instance too; count and audit row", async () => {
      const user = await signUp(server.url);
      const second = await signIn(server.url, user.phone);
      const third = await signIn(server.url, user.phone);
      const other = await startTestServer({}, server.env);
      try {
        expect((await clientFor(UserAuthService, other.url).getMe({}, bearer(second.accessToken))).user!.id).to.equal(user.userId);
        const r = await rest(server, "POST", "/api/auth/sessions/revoke-all", { token: third.accessToken, body: { keep_current: true } });
        expect(r.status).to.equal(200);
        expect(r.body).to.deep.equal({ revoked_count: 2 });
        for (const url of [server.url, other.url]) {
          const c = clientFor(UserAuthService, url);
          expect(await codeOf(c.getMe({}, bearer(second.accessToken)))).to.equal(Code.Unauthenticated);
          expect(await codeOf(c.getMe({}, bearer(user.accessToken)))).to.equal(Code.Unauthenticated);
          expect((await c.getMe({}, bearer(third.accessToken))).user!.id).to.equal(user.userId);
        }
        expect(await codeOf(auth().refreshToken({ refreshToken: second.refreshToken }))).to.equal(Code.Unauthenticated);
        expect(await codeOf(auth().refreshToken({ refreshToken: user.refreshToken }))).to.equal(Code.Unauthenticated);
        const [row] = await rows<{ new_values: unknown; session_id: string }>(server, "SELECT new_values, session_id FROM user_audit_logs WHERE user_id = :id AND action = 'sessions.revoked_all'", { id: user.userId });
        expect(row).to.deep.equal({ new_values: { revoked_count: 2, keep_current: true }, session_id: third.sessionId });
      } finally {
        await other.close();
      }
    });

    it("without keep_current over gRPC and Connect: the calling session ends too", async () => {
      const user = await signUp(server.url);
      const second = await signIn(server.url, user.phone);
      const res = await grpcUnary(grpcClient, "/identity.v1.UserAuthService/RevokeAllSessions", RevokeAllSessionsRequestSchema, RevokeAllSessionsResponseSchema, { $typeName: "identity.v1.RevokeAllSessionsRequest", keepCurrent: false }, bearerMetadata(second.accessToken));
      expect(res.revokedCount).to.equal(2);
      expect(await codeOf(auth().getMe({}, bearer(second.accessToken)))).to.equal(Code.Unauthenticated);
      expect(await codeOf(auth().refreshToken({ refreshToken: second.refreshToken }))).to.equal(Code.Unauthenticated);
      expect(await codeOf(auth().revokeAllSessions({ keepCurrent: false }, bearer(second.accessToken)))).to.equal(Code.Unauthenticated);
      const third = await signIn(server.url, user.phone);
      expect((await auth().revokeAllSessions({ keepCurrent: true }, bearer(third.accessToken))).revokedCount).to.equal(0);
      expect((await auditActions(server, user.userId)).filter((a) => a === "sessions.revoked_all")).to.have.length(2);
    });
  });
});
