// OTP machinery against a real Redis, a real SMTP peer and a real HTTP SMS receiver.
import { expect } from "chai";
import { Redis } from "ioredis";
import { Writable } from "node:stream";
import { loadConfig, type Config } from "../../src/config.js";
import type { AuditEntry } from "../../src/domain/audit.js";
import type { RequestMeta } from "../../src/domain/caller.js";
import { DomainError } from "../../src/domain/errors.js";
import { createOtpService, type OtpPurpose, type OtpService } from "../../src/domain/otp.js";
import { createLogger, type Logger } from "../../src/logger.js";
import { createNotifier } from "../../src/notify/index.js";
import { createLogSink } from "../../src/notify/log-sink.js";
import type { Notifier } from "../../src/notify/types.js";
import { REDIS_URL, uniqueRedisPrefix } from "../support/env.js";
import { startFakeSms, type FakeSms } from "../support/fake-sms.js";
import { startFakeSmtp, type FakeSmtp } from "../support/fake-smtp.js";
import { rejection } from "../support/domain-errors.js";

const SECRET = "otp-test-secret-otp-test-secret-0123456789";
const EMAIL = "foo@example.com";
const PHONE = "+12133734253";
const meta = (ip = "203.0.113.7"): RequestMeta => ({ ip, userAgent: "otp-test/1.0", requestId: "req-1" });

/** Log lines of a logger, parsed. */
function capturedLogger(level = "info"): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString("utf8")) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger(level, {}, stream), lines };
}

async function expectBadCode(p: Promise<unknown>): Promise<void> {
  const err = await rejection(p);
  expect(err.kind).to.equal("invalid_argument");
  expect(err.extra.violations).to.deep.equal([{ field: "otp", description: "invalid or expired code" }]);
}

const codeIn = (text: string) => /\b(\d{6})\b/.exec(text)?.[1] ?? "";
const otherCode = (code: string) => ((Number(code) + 1) % 1_000_000).toString().padStart(6, "0");

describe("otp (integration)", function () {
  let smtp: FakeSmtp;
  let sms: FakeSms;
  const cleanups: Array<() => Promise<unknown> | void> = [];

  before(async () => {
    [smtp, sms] = await Promise.all([startFakeSmtp(), startFakeSms()]);
  });
  after(async () => {
    await Promise.all([smtp.close(), sms.close()]);
  });
  beforeEach(() => {
    smtp.messages.length = 0;
    sms.messages.length = 0;
    sms.status = 201;
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  interface Setup {
    svc: OtpService;
    config: Config;
    prefix: string;
    redis: Redis;
    audits: AuditEntry[];
    lines: Array<Record<string, unknown>>;
    /** Another instance on the same Redis and configuration. */
    twin(): OtpService;
  }

  function setup(env: Record<string, string> = {}, opts: { prefix?: string; providers?: boolean } = {}): Setup {
    const providers = opts.providers ?? true;
    const config = loadConfig({
      NODE_ENV: "test",
      SERVER_SECRET: SECRET,
      EMAIL_FROM: "Identity <no-reply@example.test>",
      ...(providers ? { SMTP_URL: smtp.url, SMS_API_URL: sms.url, SMS_ACCOUNT_SID: "AC0123456789", SMS_AUTH_TOKEN: "sms-auth-token", SMS_FROM: "+12025550143" } : {}),
      ...env,
    });
    const prefix = opts.prefix ?? uniqueRedisPrefix("otp");
    const { logger, lines } = capturedLogger();
    const audits: AuditEntry[] = [];
    const instance = (): OtpService => {
      const redis = new Redis(REDIS_URL, { keyPrefix: prefix });
      const notifier: Notifier = createNotifier(config, logger);
      cleanups.push(() => notifier.close(), () => redis.disconnect());
      return createOtpService({ redis, config, secret: Buffer.from(config.secret!, "utf8"), notifier, logger, audit: async (e) => void audits.push(e) });
    };
    const redis = new Redis(REDIS_URL);
    cleanups.push(() => redis.disconnect());
    return { svc: instance(), config, prefix, redis, audits, lines, twin: instance };
  }

  /** Every key of the setup's prefix, with its values (strings, hash fields and values). */
  async function dump(s: Setup): Promise<Map<string, string[]>> {
    const keys = await s.redis.keys(`${s.prefix}*`);
    const out = new Map<string, string[]>();
    for (const key of keys) {
      const type = await s.redis.type(key);
      if (type === "string") out.set(key, [(await s.redis.get(key)) ?? ""]);
      else if (type === "hash") out.set(key, Object.entries(await s.redis.hgetall(key)).flat());
      else throw new Error(`unexpected ${type} at ${key}`);
    }
    return out;
  }

  async function requestByMail(svc: OtpService, identifier = EMAIL, purpose: OtpPurpose = "REGISTER", ip?: string): Promise<string> {
    const before = smtp.messages.length;
    await svc.request({ identifier, purpose, meta: meta(ip) });
    return codeIn((await smtp.waitFor(before + 1)).text);
  }

  describe("happy paths", () => {
    it("e-mail: the code arrives by SMTP, states its expiry in minutes, and verifies once", async () => {
      const s = setup();
      const res = await s.svc.request({ identifier: EMAIL, purpose: "REGISTER", channel: "EMAIL", meta: meta() });
      expect(res).to.deep.equal({ message: "A verification code has been sent", expiresIn: 300, retryAfter: 60 });
      const mail = await smtp.waitFor(1);
      expect(mail.to).to.deep.equal([EMAIL]);
      expect(mail.from).to.equal("no-reply@example.test");
      expect(mail.subject).to.equal("Your sign-up code");
      expect(mail.text).to.include("expires in 5 minutes");
      const code = codeIn(mail.text);
      expect(code).to.match(/^\d{6}$/);

      const verified = await s.svc.verify({ identifier: EMAIL, otp: code, purpose: "REGISTER", meta: meta() });
      expect(verified.expiresIn).to.equal(600);
      expect(verified.verificationToken).to.match(/^[A-Za-z0-9_-]{43}$/);
      expect(await s.svc.consumeVerificationToken(verified.verificationToken, "REGISTER")).to.deep.equal({ identifier: EMAIL, kind: "email" });

      expect(s.audits.map((a) => a.action)).to.deep.equal(["otp.requested", "otp.verified"]);
      for (const a of s.audits) {
        expect(a).to.include({ userId: null, entityType: "otp", ipAddress: "203.0.113.7", userAgent: "otp-test/1.0" });
        expect(a.newValues).to.deep.equal({ purpose: "REGISTER", channel: "EMAIL", identifier_hint: "f***@example.com" });
      }
      expect(JSON.stringify(s.audits)).not.to.include(code);
    });

    it("SMS: the code is posted to the Messages API with basic auth", async () => {
      const s = setup();
      await s.svc.request({ identifier: "+1 (213) 373-4253", purpose: "LOGIN", meta: meta() });
      expect(sms.messages).to.have.length(1);
      const [msg] = sms.messages;
      expect(msg!.path).to.equal("/2010-04-01/Accounts/AC0123456789/Messages.json");
      expect(msg!.user).to.equal("AC0123456789");
      expect(msg!.password).to.equal("sms-auth-token");
      expect(msg!.contentType).to.match(/^application\/x-www-form-urlencoded/);
      expect(msg!.form.To).to.equal(PHONE);
      expect(msg!.form.From).to.equal("+12025550143");
      expect(msg!.form.Body).to.include("sign-in code").and.include("expires in 5 minutes");
      const code = codeIn(msg!.form.Body!);

      const { verificationToken } = await s.svc.verify({ identifier: PHONE, otp: code, purpose: "LOGIN", meta: meta() });
      expect(await s.svc.consumeVerificationToken(verificationToken, "LOGIN")).to.deep.equal({ identifier: PHONE, kind: "phone" });
      expect(s.audits[0]!.newValues).to.deep.equal({ purpose: "LOGIN", channel: "SMS", identifier_hint: "+1213***53" });
    });

    it("refuses a channel that cannot reach the identifier", async () => {
      const s = setup();
      const err = await rejection(s.svc.request({ identifier: EMAIL, purpose: "LOGIN", channel: "SMS", meta: meta() }));
      expect(err.kind).to.equal("invalid_argument");
      expect(err.extra.violations![0]!.field).to.equal("channel");
    });
  });

  describe("codes", () => {
    it("dies after OTP_MAX_ATTEMPTS wrong tries: the right code then fails too", async () => {
      const s = setup({ OTP_MAX_ATTEMPTS: "3" });
      const code = await requestByMail(s.svc);
      for (let i = 0; i < 3; i++) await expectBadCode(s.svc.verify({ identifier: EMAIL, otp: otherCode(code), purpose: "REGISTER", meta: meta() }));
      await expectBadCode(s.svc.verify({ identifier: EMAIL, otp: code, purpose: "REGISTER", meta: meta() }));
    });

    it("20 parallel wrong guesses get at most OTP_MAX_ATTEMPTS evaluated", async () => {
      const s = setup({ OTP_MAX_ATTEMPTS: "5", OTP_FAILURES_PER_IDENTIFIER_PER_HOUR: "100" });
      const code = await requestByMail(s.svc);
      const guesses = Array.from({ length: 20 }, (_, i) => ((Number(code) + 1 + i) % 1_000_000).toString().padStart(6, "0"));
      const results = await Promise.allSettled(guesses.map((otp) => s.svc.verify({ identifier: EMAIL, otp, purpose: "REGISTER", meta: meta() })));
      expect(results.every((r) => r.status === "rejected" && (r.reason as DomainError).kind === "invalid_argument")).to.equal(true);
      const keys = await dump(s);
      const failures = [...keys].filter(([k]) => k.endsWith(":failures"));
      expect(failures).to.have.length(1);
      expect(failures[0]![1]).to.deep.equal(["5"]); // evaluated against the code: exactly max
      expect([...keys.keys()].some((k) => k.includes(":code:"))).to.equal(false); // burnt
      expect(s.audits.filter((a) => a.action === "otp.failed").map((a) => a.newValues!.reason).sort()).to.deep.equal([...Array(15).fill("no_live_code"), ...Array(5).fill("wrong_code")]);
      await expectBadCode(s.svc.verify({ identifier: EMAIL, otp: code, purpose: "REGISTER", meta: meta() }));
    });

    it("a used code cannot be replayed", async () => {
      const s = setup();
      const code = await requestByMail(s.svc);
      await s.svc.verify({ identifier: EMAIL, otp: code, purpose: "REGISTER", meta: meta() });
      await expectBadCode(s.svc.verify({ identifier: EMAIL, otp: code, purpose: "REGISTER", meta: meta() }));
    });

    it("expires after OTP_TTL_SECONDS", async () => {
      const s = setup({ OTP_TTL_SECONDS: "1" });
      const code = await requestByMail(s.svc);
      await new Promise((r) => setTimeout(r, 1200));
      await expectBadCode(s.svc.verify({ identifier: EMAIL, otp: code, purpose: "REGISTER", meta: meta() }));
    });

    it("a new code replaces the old one", async () => {
      const s = setup({ OTP_RESEND_SECONDS: "0" });
      const first = await requestByMail(s.svc);
      let second = await requestByMail(s.svc);
      while (second === first) second = await requestByMail(s.svc); // one chance in a million
      await expectBadCode(s.svc.verify({ identifier: EMAIL, otp: first, purpose: "REGISTER", meta: meta() }));
      await s.svc.verify({ identifier: EMAIL, otp: second, purpose: "REGISTER", meta: meta() });
    });

    it("a code of one purpose never serves the other", async () => {
      const s = setup();
      const code = await requestByMail(s.svc, EMAIL, "REGISTER");
      await expectBadCode(s.svc.verify({ identifier: EMAIL, otp: code, purpose: "LOGIN", meta: meta() }));
      const { verificationToken } = await s.svc.verify({ identifier: EMAIL, otp: code, purpose: "REGISTER", meta: meta() });
      const err = await rejection(s.svc.consumeVerificationToken(verificationToken, "LOGIN"));
      expect(err.kind).to.equal("unauthenticated");
      expect(err.message).to.equal("invalid or expired verification token");
      // Presented with the wrong purpose, the token is burnt.
      expect((await rejection(s.svc.consumeVerificationToken(verificationToken, "REGISTER"))).kind).to.equal("unauthenticated");
    });

    it("one identifier whatever its spelling", async () => {
      const s = setup();
      await s.svc.request({ identifier: " Foo@Example.COM ", purpose: "REGISTER", meta: meta() });
      const mail = await smtp.waitFor(1);
      expect(mail.to).to.deep.equal([EMAIL]);
      const err = await rejection(s.svc.request({ identifier: EMAIL, purpose: "REGISTER", meta: meta() }));
      expect(err.kind).to.equal("resource_exhausted"); // same identifier: cooldown
      const { verificationToken } = await s.svc.verify({ identifier: "FOO@example.com", otp: codeIn(mail.text), purpose: "REGISTER", meta: meta() });
      expect((await s.svc.consumeVerificationToken(verificationToken, "REGISTER")).identifier).to.equal(EMAIL);
    });

    it("stores codes and tokens only as MACs, and identifiers only inside a live verification token", async () => {
      const s = setup();
      const code = await requestByMail(s.svc);
      await s.svc.request({ identifier: PHONE, purpose: "LOGIN", meta: meta() });
      const phoneCode = codeIn(sms.messages[0]!.form.Body!);
      await s.svc.verify({ identifier: EMAIL, otp: otherCode(code), purpose: "REGISTER", meta: meta() }).catch(() => undefined);
      const keys = await dump(s);
      expect(keys.size).to.be.greaterThan(5);
      for (const [key, values] of keys) {
        for (const secret of [code, phoneCode, EMAIL, PHONE, "foo"]) {
          expect(key, key).not.to.include(secret);
          for (const v of values) expect(v, key).not.to.include(secret);
        }
      }
      const { verificationToken } = await s.svc.verify({ identifier: EMAIL, otp: code, purpose: "REGISTER", meta: meta() });
      for (const [key, values] of await dump(s)) {
        expect(key).not.to.include(verificationToken);
        for (const v of values) expect(v).not.to.include(code).and.not.include(verificationToken);
      }
    });
  });

  describe("verification tokens", () => {
    it("are single use, even when presented in parallel", async () => {
      const s = setup();
      const code = await requestByMail(s.svc);
      const { verificationToken } = await s.svc.verify({ identifier: EMAIL, otp: code, purpose: "REGISTER", meta: meta() });
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => s.svc.consumeVerificationToken(verificationToken, "REGISTER")));
      expect(results.filter((r) => r.status === "fulfilled")).to.have.length(1);
      expect((await rejection(s.svc.consumeVerificationToken(verificationToken, "REGISTER"))).kind).to.equal("unauthenticated");
    });

    it("refuses forged and malformed tokens", async () => {
      const s = setup();
      for (const t of ["", "abc", "A".repeat(43), "A".repeat(44)]) {
        expect((await rejection(s.svc.consumeVerificationToken(t, "LOGIN"))).kind).to.equal("unauthenticated");
      }
    });
  });

  describe("limits", () => {
    it("resend cooldown per identifier and purpose, with retryAfterSeconds", async () => {
      const s = setup({ OTP_RESEND_SECONDS: "60" });
      await requestByMail(s.svc, EMAIL, "REGISTER");
      const err = await rejection(s.svc.request({ identifier: EMAIL, purpose: "REGISTER", meta: meta() }));
      expect(err.kind).to.equal("resource_exhausted");
      expect(err.extra.retryAfterSeconds).to.be.within(59, 60);
      await requestByMail(s.svc, EMAIL, "LOGIN"); // another purpose has its own cooldown
      expect(smtp.messages).to.have.length(2);
    });

    it("sends per identifier per hour, across purposes", async () => {
      const s = setup({ OTP_RESEND_SECONDS: "0", OTP_SENDS_PER_IDENTIFIER_PER_HOUR: "2" });
      await requestByMail(s.svc, EMAIL, "REGISTER");
      await requestByMail(s.svc, EMAIL, "LOGIN");
      const err = await rejection(s.svc.request({ identifier: EMAIL, purpose: "REGISTER", meta: meta() }));
      expect(err.kind).to.equal("resource_exhausted");
      expect(err.extra.retryAfterSeconds).to.be.within(3590, 3600);
      expect(smtp.messages).to.have.length(2);
      await requestByMail(s.svc, "bar@example.com"); // other identifiers are not affected
    });

    it("failed verifications per identifier per hour, across codes", async () => {
      const s = setup({ OTP_RESEND_SECONDS: "0", OTP_MAX_ATTEMPTS: "2", OTP_FAILURES_PER_IDENTIFIER_PER_HOUR: "3" });
      const first = await requestByMail(s.svc);
      for (let i = 0; i < 2; i++) await expectBadCode(s.svc.verify({ identifier: EMAIL, otp: otherCode(first), purpose: "REGISTER", meta: meta() }));
      const second = await requestByMail(s.svc);
      await expectBadCode(s.svc.verify({ identifier: EMAIL, otp: otherCode(second), purpose: "REGISTER", meta: meta() }));
      const err = await rejection(s.svc.verify({ identifier: EMAIL, otp: second, purpose: "REGISTER", meta: meta() }));
      expect(err.kind).to.equal("resource_exhausted");
      expect(err.extra.retryAfterSeconds).to.be.within(3590, 3600);
    });

    it("requests per IP per hour count RequestOtp and VerifyOtp alike", async () => {
      const s = setup({ OTP_REQUESTS_PER_IP_PER_HOUR: "3" });
      await requestByMail(s.svc, "a@example.com");
      await expectBadCode(s.svc.verify({ identifier: "a@example.com", otp: "000000", purpose: "REGISTER", meta: meta() }));
      await requestByMail(s.svc, "b@example.com");
      const err = await rejection(s.svc.request({ identifier: "c@example.com", purpose: "REGISTER", meta: meta() }));
      expect(err.kind).to.equal("resource_exhausted");
      expect(err.extra.retryAfterSeconds).to.be.within(3590, 3600);
      expect((await rejection(s.svc.verify({ identifier: "a@example.com", otp: "000000", purpose: "REGISTER", meta: meta() }))).kind).to.equal("resource_exhausted");
      await requestByMail(s.svc, "c@example.com", "REGISTER", "198.51.100.9"); // another client
    });

    it("two instances on one Redis share codes, tokens and limits", async () => {
      const s = setup({ OTP_REQUESTS_PER_IP_PER_HOUR: "3" });
      const other = s.twin();
      const code = await requestByMail(s.svc);
      expect((await rejection(other.request({ identifier: EMAIL, purpose: "REGISTER", meta: meta() }))).kind).to.equal("resource_exhausted"); // cooldown
      const { verificationToken } = await other.verify({ identifier: EMAIL, otp: code, purpose: "REGISTER", meta: meta() });
      expect((await s.svc.consumeVerificationToken(verificationToken, "REGISTER")).identifier).to.equal(EMAIL);
      expect((await rejection(other.consumeVerificationToken(verificationToken, "REGISTER"))).kind).to.equal("unauthenticated");
      // Three calls from the IP so far, across both instances: the fourth is refused.
      expect((await rejection(s.svc.request({ identifier: "z@example.com", purpose: "LOGIN", meta: meta() }))).kind).to.equal("resource_exhausted");
    });
  });

  describe("account existence", () => {
    it("answers alike for any identifier, by construction", async () => {
      const s = setup();
      const a = await s.svc.request({ identifier: "known-user@example.com", purpose: "LOGIN", meta: meta() });
      const b = await s.svc.request({ identifier: "nobody-at-all@example.com", purpose: "LOGIN", meta: meta() });
      expect(a).to.deep.equal(b);
      await smtp.waitFor(2); // both got a code
      const ea = await rejection(s.svc.verify({ identifier: "known-user@example.com", otp: "000000", purpose: "LOGIN", meta: meta() }));
      const eb = await rejection(s.svc.verify({ identifier: "never-asked@example.com", otp: "000000", purpose: "LOGIN", meta: meta() }));
      expect({ kind: ea.kind, message: ea.message, extra: ea.extra }).to.deep.equal({ kind: eb.kind, message: eb.message, extra: eb.extra });
      // The same keys (by shape) exist for both identifiers.
      const shapes = [...(await dump(s)).keys()].map((k) => k.slice(s.prefix.length).replace(/\{[0-9a-f]{32}\}/, "{tag}")).filter((k) => k.startsWith("otp:{"));
      expect(shapes.filter((k) => k.endsWith(":code:login"))).to.have.length(2);
      expect(shapes.filter((k) => k.endsWith(":sends"))).to.have.length(2);
    });
  });

  describe("test identifiers", () => {
    it("get the fixed code, same limits, nothing delivered, and a loud log", async () => {
      const s = setup({ OTP_TEST_IDENTIFIERS: "+1555,Tester@Example.com", OTP_TEST_CODE: "246810" });
      expect(s.lines.some((l) => l.level === 40 && String(l.msg).includes("OTP TEST IDENTIFIERS ARE ENABLED"))).to.equal(true);
      const res = await s.svc.request({ identifier: "+1 555 010 0123", purpose: "LOGIN", meta: meta() });
      expect(res).to.deep.equal({ message: "A verification code has been sent", expiresIn: 300, retryAfter: 60 });
      await s.svc.request({ identifier: "tester@example.com", purpose: "REGISTER", meta: meta() });
      expect((await rejection(s.svc.request({ identifier: "tester@example.com", purpose: "REGISTER", meta: meta() }))).kind).to.equal("resource_exhausted");
      await new Promise((r) => setTimeout(r, 100));
      expect(smtp.messages).to.have.length(0);
      expect(sms.messages).to.have.length(0);
      const { verificationToken } = await s.svc.verify({ identifier: "+15550100123", otp: "246810", purpose: "LOGIN", meta: meta() });
      expect(await s.svc.consumeVerificationToken(verificationToken, "LOGIN")).to.deep.equal({ identifier: "+15550100123", kind: "phone" });
      await s.svc.verify({ identifier: "TESTER@example.com", otp: "246810", purpose: "REGISTER", meta: meta() });
      expect(s.svc.normalize.phone("+1 555 010 0199")).to.equal("+15550100199");
      // Everyone else still gets a random code, delivered.
      const code = await requestByMail(s.svc, EMAIL);
      expect(code).to.match(/^\d{6}$/);
      await expectBadCode(s.svc.verify({ identifier: EMAIL, otp: code === "246810" ? "246811" : "246810", purpose: "REGISTER", meta: meta() }));
    });
  });

  describe("delivery", () => {
    it("a provider failure answers unavailable and leaves no code behind", async () => {
      const s = setup();
      sms.status = 500;
      const err = await rejection(s.svc.request({ identifier: PHONE, purpose: "LOGIN", meta: meta() }));
      expect(err.kind).to.equal("unavailable");
      expect(err.message).to.equal("could not deliver the code, try again");
      const code = codeIn(sms.messages[0]!.form.Body!);
      const keys = [...(await dump(s)).keys()];
      expect(keys.some((k) => k.includes(":code:") || k.includes(":cooldown:"))).to.equal(false);
      const failure = s.lines.find((l) => l.msg === "OTP delivery failed");
      expect(failure).to.include({ reason: "sms delivery failed: HTTP 500", identifier_hint: "+1213***53" });
      const logged = JSON.stringify(s.lines);
      expect(logged).not.to.include(code);
      expect(logged).not.to.include(PHONE);
      expect(s.audits).to.have.length(0);
      // The user can try again at once (the cooldown went with the code).
      sms.status = 201;
      await s.svc.request({ identifier: PHONE, purpose: "LOGIN", meta: meta() });
      const fresh = codeIn(sms.messages[1]!.form.Body!);
      await s.svc.verify({ identifier: PHONE, otp: fresh, purpose: "LOGIN", meta: meta() });
    });

    it("an unreachable SMTP server answers unavailable", async () => {
      const s = setup({ SMTP_URL: "smtp://127.0.0.1:9" });
      const err = await rejection(s.svc.request({ identifier: EMAIL, purpose: "LOGIN", meta: meta() }));
      expect(err.kind).to.equal("unavailable");
      expect(s.lines.find((l) => l.msg === "OTP delivery failed")!.reason).to.match(/^email delivery failed: E[A-Z]+$/);
    });

    it("development log sink writes a JSON line with otp and identifier", async () => {
      const s = setup({}, { providers: false });
      await s.svc.request({ identifier: "dev@example.com", purpose: "REGISTER", meta: meta() });
      const line = s.lines.find((l) => l.sink === "log" && l.otp !== undefined);
      expect(line).to.include({ level: 30, channel: "email", identifier: "dev@example.com", purpose: "REGISTER" });
      expect(line!.otp).to.match(/^\d{6}$/);
      await s.svc.verify({ identifier: "dev@example.com", otp: line!.otp as string, purpose: "REGISTER", meta: meta() });
    });

    it("the log sink is refused in production", () => {
      const { logger } = capturedLogger();
      expect(() => createLogSink("sms", "production", logger)).to.throw(/production/);
    });
  });

  describe("purposes that need a caller (CHANGE_IDENTIFIER, DELETE_ACCOUNT)", () => {
    const alice = { userId: "11111111-1111-4111-8111-111111111111", email: "alice@example.com", phoneNumber: PHONE };
    const bob = { userId: "22222222-2222-4222-8222-222222222222", email: "bob@example.com", phoneNumber: "" };

    it("are refused without a caller before anything is counted, stored, sent or recorded", async () => {
      const s = setup();
      for (const purpose of ["CHANGE_IDENTIFIER", "DELETE_ACCOUNT"] as const) {
        const err = await rejection(s.svc.request({ identifier: "new@example.com", purpose, meta: meta() }));
        expect(err.kind, purpose).to.equal("unauthenticated");
        expect((await rejection(s.svc.verify({ identifier: "new@example.com", otp: "123456", purpose, meta: meta() }))).kind).to.equal("unauthenticated");
      }
      expect(await dump(s)).to.have.property("size", 0);
      expect(s.audits).to.deep.equal([]);
      expect(smtp.messages).to.have.length(0);
    });

    it("DELETE_ACCOUNT: only to one of the caller's own identifiers (invalid_argument otherwise, nothing sent)", async () => {
      const s = setup();
      const err = await rejection(s.svc.request({ identifier: "someone@example.com", purpose: "DELETE_ACCOUNT", meta: meta(), caller: alice }));
      expect(err.kind).to.equal("invalid_argument");
      expect(err.extra.violations?.map((v) => v.field)).to.deep.equal(["identifier"]);
      expect(await dump(s)).to.have.property("size", 0);
      await s.svc.request({ identifier: "Alice@Example.com", purpose: "DELETE_ACCOUNT", meta: meta(), caller: alice });
      expect((await smtp.waitFor(1)).subject).to.equal("Your account deletion code");
    });

    it("bind the code and the verification token to the caller: another user, purpose or identifier cannot use them", async () => {
      const s = setup();
      await s.svc.request({ identifier: "new@example.com", purpose: "CHANGE_IDENTIFIER", meta: meta(), caller: alice });
      const mail = await smtp.waitFor(1);
      expect(mail.subject).to.equal("Your confirmation code");
      const code = codeIn(mail.text);
      // Bob cannot prove Alice's code (it counts as a wrong try), and LOGIN's code space is apart.
      await expectBadCode(s.svc.verify({ identifier: "new@example.com", otp: code, purpose: "CHANGE_IDENTIFIER", meta: meta(), caller: bob }));
      const { verificationToken } = await s.svc.verify({ identifier: "new@example.com", otp: code, purpose: "CHANGE_IDENTIFIER", meta: meta(), caller: alice });
      for (const [purpose, userId] of [["CHANGE_IDENTIFIER", bob.userId], ["CHANGE_IDENTIFIER", undefined], ["DELETE_ACCOUNT", alice.userId], ["LOGIN", undefined]] as const) {
        expect((await rejection(s.svc.peekVerificationToken(verificationToken, purpose, userId))).kind, `${purpose} ${userId}`).to.equal("unauthenticated");
      }
      expect(await s.svc.consumeVerificationToken(verificationToken, "CHANGE_IDENTIFIER", alice.userId)).to.deep.equal({ identifier: "new@example.com", kind: "email" });
      // Audit rows as for the other purposes, naming the caller.
      expect(s.audits.map((a) => [a.action, a.userId, a.newValues?.purpose])).to.deep.equal([
        ["otp.requested", alice.userId, "CHANGE_IDENTIFIER"],
        ["otp.failed", bob.userId, "CHANGE_IDENTIFIER"],
        ["otp.verified", alice.userId, "CHANGE_IDENTIFIER"],
      ]);
    });

    it("share the resend cooldown and the per-identifier send limit with the other purposes", async () => {
      const s = setup({ OTP_SENDS_PER_IDENTIFIER_PER_HOUR: "2" });
      await s.svc.request({ identifier: "new@example.com", purpose: "CHANGE_IDENTIFIER", meta: meta(), caller: alice });
      const again = await rejection(s.svc.request({ identifier: "new@example.com", purpose: "CHANGE_IDENTIFIER", meta: meta(), caller: alice }));
      expect(again.kind).to.equal("resource_exhausted");
      await s.svc.request({ identifier: "new@example.com", purpose: "LOGIN", meta: meta() });
      const limit = await rejection(s.svc.request({ identifier: "new@example.com", purpose: "REGISTER", meta: meta() }));
      expect([limit.kind, limit.message]).to.deep.equal(["resource_exhausted", "too many codes requested for this identifier, try again later"]);
    });
  });
});
