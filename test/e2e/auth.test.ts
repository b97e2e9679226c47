// UserAuthService end to end: the real server on a free port, real clients (Connect JSON over
// HTTP/1.1, Connect over HTTP/2, gRPC through connect-node and @grpc/grpc-js, plain REST), real
// PostgreSQL and Redis, real SMTP and SMS peers on loopback.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import jwt from "jsonwebtoken";
import { QueryTypes } from "sequelize";
import {
  GetMeRequestSchema,
  GetMeResponseSchema,
  LoginRequestSchema,
  LoginResponseSchema,
  OtpPurpose,
  RegisterRequestSchema,
  RegisterResponseSchema,
  RequestOtpRequestSchema,
  RequestOtpResponseSchema,
  UserAuthService,
  VerifyOtpRequestSchema,
  VerifyOtpResponseSchema,
} from "../../gen/identity/v1/auth_pb.js";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { codeOf } from "../support/failures.js";
import { bearer, bearerMetadata, clientFor, grpcJsClient, grpcUnary, signIn, signUp, testPhone, type Wire } from "../support/clients.js";
import { startFakeSms, type FakeSms } from "../support/fake-sms.js";
import { startFakeSmtp, type FakeSmtp } from "../support/fake-smtp.js";
import { startTestServer, TEST_CODE, type TestServer } from "../support/server.js";

async function auditActions(server: TestServer, userId: string): Promise<string[]> {
  const rows = await server.app.stores.sequelize.query<{ action: string }>("SELECT action FROM user_audit_logs WHERE user_id = :userId ORDER BY id", {
    replacements: { userId },
    type: QueryTypes.SELECT,
  });
  return rows.map((r) => r.action);
}

describe("UserAuthService end to end", function () {
  let server: TestServer;
  let smtp: FakeSmtp;
  let sms: FakeSms;

  before(async () => {
    smtp = await startFakeSmtp();
    sms = await startFakeSms();
    server = await startTestServer({
      SMTP_URL: smtp.url,
      SMS_API_URL: sms.url,
      SMS_ACCOUNT_SID: "AC123",
      SMS_AUTH_TOKEN: "sms-secret",
      SMS_FROM: "+15550000000",
      OTP_RESEND_SECONDS: "0",
    });
  });
  after(async () => {
    await server?.close();
    await smtp?.close();
    await sms?.close();
  });

  const wires: Wire[] = ["connect-json-h1", "connect-json-h2", "grpc"];
  for (const wire of wires) {
    it(`signs up by e-mail, signs in by SMS, refreshes, lists and ends sessions over ${wire}`, async () => {
      const auth = clientFor(UserAuthService, server.url, wire);
      const email = `Ann.${wire}.${Date.now()}@Example.COM`;
      const before = smtp.messages.length;
      const sent = await auth.requestOtp({ identifier: ` ${email} `, purpose: OtpPurpose.REGISTER });
      expect(sent).to.include({ expiresIn: 300 });
      const mail = await smtp.waitFor(before + 1);
      expect(mail.to).to.deep.equal([email.toLowerCase()]);
      expect(mail.text).to.match(/expires in 5 minutes/);
      const code = /\b(\d{6})\b/.exec(mail.text)![1]!;
      const { verificationToken } = await auth.verifyOtp({ identifier: email.toLowerCase(), otp: code, purpose: OtpPurpose.REGISTER });
      const phone = testPhone().replace("+1555", "+44790"); // a real UK mobile range: delivered by SMS
      const username = `ann_${wire.replace(/-/g, "_")}_${Date.now() % 100000}`;
      const reg = await auth.register({ verificationToken, username, email, phoneNumber: phone, fullName: "Ann O'Neil" });
      expect(reg.userId).to.match(/^[0-9a-f-]{36}$/);

      const me = await auth.getMe({}, bearer(reg.accessToken));
      expect(me.user).to.include({ id: reg.userId, username, email: email.toLowerCase(), phoneNumber: phone, isActive: true, isStaff: false });

      // Sign in on a second device by SMS.
      const smsBefore = sms.messages.length;
      await auth.requestOtp({ identifier: phone, purpose: OtpPurpose.LOGIN, channel: 1 });
      expect(sms.messages.length).to.equal(smsBefore + 1);
      const text = sms.messages.at(-1)!;
      expect(text).to.deep.include({ user: "AC123", password: "sms-secret", path: "/2010-04-01/Accounts/AC123/Messages.json" });
      expect(text.form).to.include({ To: phone, From: "+15550000000" });
      const smsCode = /\b(\d{6})\b/.exec(text.form.Body!)![1]!;
      const { verificationToken: loginToken } = await auth.verifyOtp({ identifier: phone, otp: smsCode, purpose: OtpPurpose.LOGIN });
      const login = await auth.login({ identifier: phone, verificationToken: loginToken, device: { deviceId: "pixel-1", deviceType: 1, deviceName: "Pixel" } });
      expect(login.userId).to.equal(reg.userId);

      const refreshed = await auth.refreshToken({ refreshToken: login.refreshToken });
      expect(refreshed.refreshToken).to.not.equal(login.refreshToken);
      const sessions = await auth.listSessions({}, bearer(refreshed.accessToken));
      expect(sessions.sessions).to.have.length(2);
      const current = sessions.sessions.find((s) => s.current)!;
      expect(current.sessionId).to.equal(login.sessionId);
      expect(current.device).to.include({ deviceId: "pixel-1", deviceName: "Pixel" });

      await auth.revokeSession({ sessionId: reg.sessionId }, bearer(refreshed.accessToken));
      expect(await codeOf(auth.getMe({}, bearer(reg.accessToken)))).to.equal(Code.Unauthenticated);
      const out = await auth.logout({}, bearer(refreshed.accessToken));
      expect(out.message).to.equal("Logged out");
      expect(await codeOf(auth.getMe({}, bearer(refreshed.accessToken)))).to.equal(Code.Unauthenticated);
      expect(await codeOf(auth.refreshToken({ refreshToken: refreshed.refreshToken }))).to.equal(Code.Unauthenticated);

      expect(await auditActions(server, reg.userId)).to.include.members([
        "user.registered",
        "session.created",
        "user.login",
        "session.refreshed",
        "session.revoked",
        "user.logout",
      ]);
    });
  }

  it("works with @grpc/grpc-js as the client", async () => {
    const client = grpcJsClient(server.port);
    try {
      const phone = testPhone();
      const svc = "/identity.v1.UserAuthService";
      await grpcUnary(client, `${svc}/RequestOtp`, RequestOtpRequestSchema, RequestOtpResponseSchema, create(RequestOtpRequestSchema, { identifier: phone, purpose: OtpPurpose.REGISTER }));
      const v = await grpcUnary(client, `${svc}/VerifyOtp`, VerifyOtpRequestSchema, VerifyOtpResponseSchema, create(VerifyOtpRequestSchema, { identifier: phone, otp: TEST_CODE, purpose: OtpPurpose.REGISTER }));
      const reg = await grpcUnary(client, `${svc}/Register`, RegisterRequestSchema, RegisterResponseSchema, create(RegisterRequestSchema, { verificationToken: v.verificationToken, username: `grpcjs_${Date.now() % 100000}`, phoneNumber: phone }));
      const me = await grpcUnary(client, `${svc}/GetMe`, GetMeRequestSchema, GetMeResponseSchema, create(GetMeRequestSchema), bearerMetadata(reg.accessToken));
      expect(me.user?.phoneNumber).to.equal(phone);
      const err = (await grpcUnary(client, `${svc}/GetMe`, GetMeRequestSchema, GetMeResponseSchema, create(GetMeRequestSchema)).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
      expect(err.code).to.equal(grpc.status.UNAUTHENTICATED);
      const unknown = (await grpcUnary(client, `${svc}/Login`, LoginRequestSchema, LoginResponseSchema, create(LoginRequestSchema, { identifier: phone, verificationToken: "x".repeat(43) })).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
      expect(unknown.code).to.equal(grpc.status.UNAUTHENTICATED);
    } finally {
      client.close();
    }
  });

  describe("OTP rules over the wire", () => {
    const auth = () => clientFor(UserAuthService, server.url);

    it("records every request and check in the audit trail, concurrent calls included", async () => {
      const count = async (action: string) =>
        (await server.app.stores.sequelize.query<{ n: number }>("SELECT count(*)::int AS n FROM user_audit_logs WHERE action = :action", { replacements: { action }, type: QueryTypes.SELECT }))[0]!.n;
      const before = { requested: await count("otp.requested"), verified: await count("otp.verified"), failed: await count("otp.failed") };
      const phones = Array.from({ length: 10 }, () => testPhone());
      await Promise.all(phones.map((identifier) => auth().requestOtp({ identifier, purpose: OtpPurpose.LOGIN })));
      await Promise.all(phones.map((identifier, i) => auth().verifyOtp({ identifier, otp: i < 6 ? TEST_CODE : "000001", purpose: OtpPurpose.LOGIN }).catch(() => undefined)));
      expect({ requested: await count("otp.requested"), verified: await count("otp.verified"), failed: await count("otp.failed") }).to.deep.equal({
        requested: before.requested + 10,
        verified: before.verified + 6,
        failed: before.failed + 4,
      });
    });

    it("answers known and unknown identifiers alike (RequestOtp and VerifyOtp)", async () => {
      const known = await signUp(server.url);
      const unknown = testPhone();
      for (const purpose of [OtpPurpose.LOGIN, OtpPurpose.REGISTER]) {
        const a = await auth().requestOtp({ identifier: known.phone, purpose });
        const b = await auth().requestOtp({ identifier: unknown, purpose });
        expect(a).to.deep.equal(b);
        const failure = async (identifier: string) => {
          const e = ConnectError.from(await auth().verifyOtp({ identifier, otp: "000001", purpose }).then(() => new Error("accepted"), (e: unknown) => e));
          return [e.code, e.rawMessage];
        };
        const wrongA = await failure(known.phone);
        expect(wrongA[0]).to.equal(Code.InvalidArgument);
        expect(wrongA).to.deep.equal(await failure(unknown));
      }
      // Same over REST: status and body.
      const rest = async (identifier: string) => {
        const r = await fetch(`${server.url}/api/auth/otp/request`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ identifier, purpose: "OTP_PURPOSE_LOGIN" }) });
        return [r.status, await r.text()];
      };
      expect(await rest(known.phone)).to.deep.equal(await rest(unknown));
    });

    it("tells existence only after proof: Login → not_found, Register → already_exists", async () => {
      const phone = testPhone();
      await auth().requestOtp({ identifier: phone, purpose: OtpPurpose.LOGIN });
      const { verificationToken } = await auth().verifyOtp({ identifier: phone, otp: TEST_CODE, purpose: OtpPurpose.LOGIN });
      expect(await codeOf(auth().login({ identifier: phone, verificationToken }))).to.equal(Code.NotFound);

      const taken = await signUp(server.url);
      const other = testPhone();
      await auth().requestOtp({ identifier: other, purpose: OtpPurpose.REGISTER });
      const v = await auth().verifyOtp({ identifier: other, otp: TEST_CODE, purpose: OtpPurpose.REGISTER });
      expect(await codeOf(auth().register({ verificationToken: v.verificationToken, username: taken.username.toUpperCase(), phoneNumber: other }))).to.equal(Code.AlreadyExists);
      // The token survives a taken username: the user picks another name without a new code.
      const ok = await auth().register({ verificationToken: v.verificationToken, username: `${taken.username}_2`, phoneNumber: other });
      expect(ok.userId).to.be.a("string");
      // …and is single use.
      expect(await codeOf(auth().register({ verificationToken: v.verificationToken, username: `${taken.username}_3`, phoneNumber: other }))).to.equal(Code.Unauthenticated);
    });

    it("never lets a REGISTER proof log in, nor one identifier's proof serve another", async () => {
      const user = await signUp(server.url);
      await auth().requestOtp({ identifier: user.phone, purpose: OtpPurpose.REGISTER });
      const reg = await auth().verifyOtp({ identifier: user.phone, otp: TEST_CODE, purpose: OtpPurpose.REGISTER });
      expect(await codeOf(auth().login({ identifier: user.phone, verificationToken: reg.verificationToken }))).to.equal(Code.Unauthenticated);

      const other = await signUp(server.url);
      await auth().requestOtp({ identifier: other.phone, purpose: OtpPurpose.LOGIN });
      const login = await auth().verifyOtp({ identifier: other.phone, otp: TEST_CODE, purpose: OtpPurpose.LOGIN });
      expect(await codeOf(auth().login({ identifier: user.phone, verificationToken: login.verificationToken }))).to.equal(Code.Unauthenticated);
    });

    it("rejects a wrong code with invalid_argument and a field violation, and kills the code after 5 tries", async () => {
      const phone = testPhone().replace("+1555", "+44790");
      await auth().requestOtp({ identifier: phone, purpose: OtpPurpose.REGISTER });
      const code = /\b(\d{6})\b/.exec(sms.messages.at(-1)!.form.Body!)![1]!;
      const wrong = code === "000000" ? "000001" : "000000";
      for (let i = 0; i < 5; i++) {
        const err = ConnectError.from(await auth().verifyOtp({ identifier: phone, otp: wrong, purpose: OtpPurpose.REGISTER }).catch((e: unknown) => e));
        expect(err.code).to.equal(Code.InvalidArgument);
      }
      expect(await codeOf(auth().verifyOtp({ identifier: phone, otp: code, purpose: OtpPurpose.REGISTER }))).to.equal(Code.InvalidArgument);
    });

    it("refuses malformed input with field violations and changes nothing", async () => {
      const r = await fetch(`${server.url}/api/auth/register`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "a", email: "nope" }) });
      expect(r.status).to.equal(400);
      const body = (await r.json()) as { code: string; details: Array<{ field_violations: Array<{ field: string }> }> };
      expect(body.code).to.equal("invalid_argument");
      expect(body.details[0]!.field_violations.map((f) => f.field)).to.include.members(["verification_token", "username", "email"]);
    });
  });

  describe("rate limits", () => {
    it("answers the resend cooldown with resource_exhausted and RetryInfo, shared by a second instance", async () => {
      const a = await startTestServer({ OTP_RESEND_SECONDS: "60" });
      const b = await startTestServer({}, a.env);
      try {
        const phone = testPhone();
        await clientFor(UserAuthService, a.url).requestOtp({ identifier: phone, purpose: OtpPurpose.LOGIN });
        const err = ConnectError.from(await clientFor(UserAuthService, b.url).requestOtp({ identifier: phone, purpose: OtpPurpose.LOGIN }).catch((e: unknown) => e));
        expect(err.code).to.equal(Code.ResourceExhausted);
        const retry = err.findDetails(RetryInfoSchema)[0];
        expect(Number(retry?.retryDelay?.seconds)).to.be.within(1, 60);
        const rest = await fetch(`${b.url}/api/auth/otp/request`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ identifier: phone, purpose: "OTP_PURPOSE_LOGIN" }) });
        expect(rest.status).to.equal(429);
        expect(Number(rest.headers.get("retry-after"))).to.be.within(1, 60);
      } finally {
        await b.close();
        await a.close();
      }
    });

    it("limits OTP requests per client IP across instances", async () => {
      const a = await startTestServer({ OTP_REQUESTS_PER_IP_PER_HOUR: "3", OTP_RESEND_SECONDS: "0" });
      const b = await startTestServer({ OTP_REQUESTS_PER_IP_PER_HOUR: "3" }, a.env);
      try {
        for (let i = 0; i < 3; i++) await clientFor(UserAuthService, i % 2 ? b.url : a.url).requestOtp({ identifier: testPhone(), purpose: OtpPurpose.LOGIN });
        expect(await codeOf(clientFor(UserAuthService, b.url).requestOtp({ identifier: testPhone(), purpose: OtpPurpose.LOGIN }))).to.equal(Code.ResourceExhausted);
      } finally {
        await b.close();
        await a.close();
      }
    });
  });

  describe("tokens", () => {
    it("refuses tampered, alg=none, HS256-with-public-key, expired and wrong-audience tokens", async () => {
      const user = await signUp(server.url);
      const auth = clientFor(UserAuthService, server.url);
      const [h, p, s] = user.accessToken.split(".") as [string, string, string];
      const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as Record<string, unknown>;
      const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
      const jwks = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
      const { createPublicKey } = await import("node:crypto");
      const publicPem = createPublicKey({ key: jwks.keys[0] as never, format: "jwk" }).export({ type: "spki", format: "pem" }).toString();
      const kid = jwks.keys[0]!.kid;
      const forged = [
        `${h}.${enc({ ...claims, roles: ["staff"] })}.${s}`,
        `${enc({ alg: "none", typ: "JWT", kid })}.${p}.`,
        jwt.sign(claims, publicPem, { algorithm: "HS256", keyid: kid }),
        `${h}.${enc({ ...claims, exp: 1 })}.${s}`,
        `${h}.${enc({ ...claims, aud: "someone-else" })}.${s}`,
      ];
      for (const token of forged) expect(await codeOf(auth.getMe({}, bearer(token)))).to.equal(Code.Unauthenticated);
      expect((await auth.getMe({}, bearer(user.accessToken))).user?.id).to.equal(user.userId);
    });

    it("publishes the signing keys: a backend verifies an access token with the JWKS alone", async () => {
      const user = await signUp(server.url);
      const { keys } = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string; alg: string }> };
      const { kid } = jwt.decode(user.accessToken, { complete: true })!.header;
      const jwk = keys.find((k) => k.kid === kid)!;
      const { createPublicKey } = await import("node:crypto");
      const claims = jwt.verify(user.accessToken, createPublicKey({ key: jwk as never, format: "jwk" }), { algorithms: [jwk.alg as jwt.Algorithm] }) as jwt.JwtPayload;
      expect(claims).to.include({ sub: user.userId, sid: user.sessionId, typ: "access" });
      expect(claims.jti).to.be.a("string");
    });
  });

  describe("refresh rotation", () => {
    it("returns the same pair within the grace window, also to concurrent refreshes", async () => {
      const user = await signUp(server.url);
      const auth = clientFor(UserAuthService, server.url);
      const pairs = await Promise.all([1, 2, 3].map(() => auth.refreshToken({ refreshToken: user.refreshToken })));
      expect(new Set(pairs.map((p) => p.refreshToken)).size).to.equal(1);
      expect(new Set(pairs.map((p) => p.accessToken)).size).to.equal(1);
      // The new token works; the access token issued before the refresh still works too.
      const next = await auth.refreshToken({ refreshToken: pairs[0]!.refreshToken });
      expect((await auth.getMe({}, bearer(user.accessToken))).user?.id).to.equal(user.userId);
      expect((await auth.getMe({}, bearer(next.accessToken))).user?.id).to.equal(user.userId);
    });

    it("rotates once when many refreshes of one token race on two instances: one pair, one audit row", async () => {
      const b = await startTestServer({}, server.env);
      try {
        const user = await signUp(server.url);
        const onA = clientFor(UserAuthService, server.url, "grpc");
        const onB = clientFor(UserAuthService, b.url, "grpc");
        const pairs = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? onA : onB).refreshToken({ refreshToken: user.refreshToken })));
        expect(new Set(pairs.map((p) => `${p.accessToken} ${p.refreshToken}`)).size).to.equal(1);
        expect(pairs[0]!.refreshToken.split(".")[1]).to.equal("1");
        expect((await auditActions(server, user.userId)).filter((a) => a === "session.refreshed")).to.have.length(1);
        // The session moved on by exactly one generation, and goes on from there.
        const next = await onB.refreshToken({ refreshToken: pairs[0]!.refreshToken });
        expect(next.refreshToken.split(".")[1]).to.equal("2");
        expect((await onA.getMe({}, bearer(next.accessToken))).user?.id).to.equal(user.userId);
      } finally {
        await b.close();
      }
    });

    it("answers concurrent refreshes of different sessions each with its own session's pair", async () => {
      const users = await Promise.all([1, 2, 3, 4].map(() => signUp(server.url)));
      const auth = clientFor(UserAuthService, server.url, "grpc");
      const unknown = `00000000-0000-4000-8000-000000000000.0.${"A".repeat(43)}`;
      const [bogus, ...pairs] = await Promise.all([
        codeOf(auth.refreshToken({ refreshToken: unknown })),
        ...users.map((u) => auth.refreshToken({ refreshToken: u.refreshToken })),
      ]);
      expect(bogus).to.equal(Code.Unauthenticated);
      for (const [i, user] of users.entries()) {
        const pair = pairs[i] as { accessToken: string; refreshToken: string };
        expect(pair.refreshToken.split(".").slice(0, 2)).to.deep.equal([user.sessionId, "1"]);
        expect((jwt.decode(pair.accessToken) as { sub: string; sid: string })).to.include({ sub: user.userId, sid: user.sessionId });
      }
    });

    it("refuses a current refresh token once its session is ended, and records nothing", async () => {
      const user = await signUp(server.url);
      const auth = clientFor(UserAuthService, server.url);
      await auth.logout({}, bearer(user.accessToken));
      expect(await codeOf(auth.refreshToken({ refreshToken: user.refreshToken }))).to.equal(Code.Unauthenticated);
      const actions = await auditActions(server, user.userId);
      expect(actions).to.not.include("session.refreshed");
      expect(actions).to.not.include("session.reuse_detected");
    });

    it("revokes the whole session when an old refresh token comes back after the grace window", async () => {
      const s = await startTestServer({ REFRESH_GRACE_SECONDS: "1" });
      try {
        const user = await signUp(s.url);
        const auth = clientFor(UserAuthService, s.url);
        const r1 = await auth.refreshToken({ refreshToken: user.refreshToken });
        await new Promise((r) => setTimeout(r, 1300));
        expect(await codeOf(auth.refreshToken({ refreshToken: user.refreshToken }))).to.equal(Code.Unauthenticated);
        // Both copies are dead now: the legitimate holder must sign in again.
        expect(await codeOf(auth.refreshToken({ refreshToken: r1.refreshToken }))).to.equal(Code.Unauthenticated);
        expect(await codeOf(auth.getMe({}, bearer(r1.accessToken)))).to.equal(Code.Unauthenticated);
        expect(await auditActions(s, user.userId)).to.include("session.reuse_detected");
      } finally {
        await s.close();
      }
    });

    it("does not let a forged token for a known session id revoke it", async () => {
      const user = await signUp(server.url);
      const auth = clientFor(UserAuthService, server.url);
      const forged = `${user.sessionId}.0.${"A".repeat(43)}`;
      expect(await codeOf(auth.refreshToken({ refreshToken: forged }))).to.equal(Code.Unauthenticated);
      expect((await auth.getMe({}, bearer(user.accessToken))).user?.id).to.equal(user.userId);
    });
  });

  describe("a second instance on the same stores", () => {
    it("honours the first one's logouts and sessions", async () => {
      const b = await startTestServer({}, server.env);
      try {
        const user = await signUp(server.url);
        const onB = clientFor(UserAuthService, b.url, "grpc");
        expect((await onB.getMe({}, bearer(user.accessToken))).user?.id).to.equal(user.userId);
        const again = await signIn(b.url, user.phone);
        await clientFor(UserAuthService, server.url).logout({}, bearer(user.accessToken));
        expect(await codeOf(onB.getMe({}, bearer(user.accessToken)))).to.equal(Code.Unauthenticated);
        expect((await onB.getMe({}, bearer(again.accessToken))).user?.id).to.equal(user.userId);
      } finally {
        await b.close();
      }
    });
  });

  it("signs concurrent Logins into their own accounts, and tells an unknown identifier not_found", async () => {
    const users = await Promise.all([1, 2, 3].map(() => signUp(server.url)));
    const auth = clientFor(UserAuthService, server.url, "grpc");
    const stranger = testPhone();
    const tokens = await Promise.all([...users.map((u) => u.phone), stranger].map(async (phone) => {
      await auth.requestOtp({ identifier: phone, purpose: OtpPurpose.LOGIN });
      return (await auth.verifyOtp({ identifier: phone, otp: TEST_CODE, purpose: OtpPurpose.LOGIN })).verificationToken;
    }));
    const [strangerLogin, ...logins] = await Promise.all([
      codeOf(auth.login({ identifier: stranger, verificationToken: tokens[3]! })),
      ...users.map((u, i) => auth.login({ identifier: u.phone, verificationToken: tokens[i]! })),
    ]);
    expect(strangerLogin).to.equal(Code.NotFound);
    expect(logins.map((l) => (l as { userId: string }).userId)).to.deep.equal(users.map((u) => u.userId));
  });

  it("refuses a deactivated account at Login and at every protected call", async () => {
    const user = await signUp(server.url);
    await server.app.stores.models.User.update({ isActive: false }, { where: { id: user.userId } });
    const auth = clientFor(UserAuthService, server.url);
    expect(await codeOf(auth.getMe({}, bearer(user.accessToken)))).to.equal(Code.Unauthenticated);
    await auth.requestOtp({ identifier: user.phone, purpose: OtpPurpose.LOGIN });
    const { verificationToken } = await auth.verifyOtp({ identifier: user.phone, otp: TEST_CODE, purpose: OtpPurpose.LOGIN });
    expect(await codeOf(auth.login({ identifier: user.phone, verificationToken }))).to.equal(Code.PermissionDenied);
    expect(await codeOf(auth.refreshToken({ refreshToken: user.refreshToken }))).to.equal(Code.Unauthenticated);
  });

  it("never writes codes or tokens to the log outside the development sink", async () => {
    const user = await signUp(server.url);
    await clientFor(UserAuthService, server.url).refreshToken({ refreshToken: user.refreshToken });
    const text = JSON.stringify(server.logs);
    expect(text).to.not.include(user.accessToken);
    expect(text).to.not.include(user.refreshToken.split(".")[2]);
    expect(text).to.not.include(TEST_CODE);
  });
});
