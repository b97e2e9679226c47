// One-time codes (DESIGN §4): RequestOtp sends a code, VerifyOtp trades it for a
// single-use verification token, Register/Login consume that token.
//
// Account existence: this service never looks accounts up. A code is generated, stored and
// delivered for every well-formed identifier, and every answer depends only on the input
// and the rate-limit counters, so known and unknown identifiers are alike in answer and in
// work by construction. Register and Login tell "no account"/"taken" only to a caller who
// presented a verification token, i.e. proved they own the identifier.
//
// Failure paths: unknown identifier, expired, replaced, used, exhausted and wrong codes all
// run the same steps (one atomic Redis script) and get the same invalid_argument. The
// verification token is minted before the outcome is known, so success differs from
// failure only by the one Redis write that stores the token, after the outcome is decided.
//
// Purposes that need a caller (DESIGN §10): CHANGE_IDENTIFIER (the code goes to the new
// identifier) and DELETE_ACCOUNT (to one of the caller's own identifiers) are refused
// without a signed-in caller, before any limit is counted; their codes and verification
// tokens are bound to the caller's user id as well as to identifier and purpose. Limits,
// cooldowns, attempt caps and audit rows are those of the other purposes.
import type { RedisClient } from "../store/redis.js";
import { randomInt } from "node:crypto";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { Notifier, NotifyChannel } from "../notify/types.js";
import { storeFailure, type OutageLog } from "../store/store-errors.js";
import { DeliveryError } from "../notify/types.js";
import type { AuditEntry } from "./audit.js";
import type { RequestMeta } from "./caller.js";
import { DomainError, exhausted, invalid, unauthenticated } from "./errors.js";
import { ExpiringMap } from "./expiring-map.js";
import { maskIdentifier, normalizeEmail, normalizeIdentifier, normalizePhone, type Identifier, type IdentifierKind } from "./identifiers.js";
import { createOtpStore, type VerifiedIdentity } from "./otp-store.js";
import { parseTestIdentifiers } from "./otp-test-identifiers.js";
import { pooledRandomBytes } from "./random-pool.js";
import { createRateLimiter, ipBucket } from "./rate-limit.js";

export type OtpPurpose = "REGISTER" | "LOGIN" | "CHANGE_IDENTIFIER" | "DELETE_ACCOUNT";
export const OTP_PURPOSES: readonly OtpPurpose[] = ["REGISTER", "LOGIN", "CHANGE_IDENTIFIER", "DELETE_ACCOUNT"];
/** Purposes whose codes only a signed-in user may ask for and prove. */
const CALLER_PURPOSES: ReadonlySet<OtpPurpose> = new Set(["CHANGE_IDENTIFIER", "DELETE_ACCOUNT"]);

/** The signed-in caller of RequestOtp/VerifyOtp, as the session check read the account. */
export interface OtpCaller {
  userId: string;
  /** The account's e-mail ("" when none). */
  email: string;
  /** The account's phone number ("" when none). */
  phoneNumber: string;
}
export type OtpChannel = "SMS" | "EMAIL";

export interface OtpServiceDeps {
  /** ioredis client (keyPrefix allowed: keys are written unprefixed). */
  redis: RedisClient;
  config: Pick<Config, "nodeEnv" | "otp">;
  /** The server secret (domain/server-secret.ts): keys the MACs of codes and tokens. */
  secret: Buffer;
  notifier: Notifier;
  logger: Logger;
  /** Records otp.requested / otp.verified / otp.failed; failures to record are logged, not thrown. */
  audit?: (entry: AuditEntry) => Promise<void>;
  /** Where an audit write that failed on an unreachable store is reported (once per outage). */
  outages?: OutageLog;
}

export interface RequestOtpInput {
  identifier: string;
  purpose: OtpPurpose;
  /** Must match the identifier's kind when given (SMS for a phone number, EMAIL for an address). */
  channel?: OtpChannel;
  meta: RequestMeta;
  /** The signed-in caller, if the call carried a valid access token. */
  caller?: OtpCaller;
}

export interface RequestOtpResult {
  message: string;
  /** Seconds until the code expires. */
  expiresIn: number;
  /** Seconds before another code may be requested for this identifier and purpose. */
  retryAfter: number;
}

export interface VerifyOtpInput {
  identifier: string;
  otp: string;
  purpose: OtpPurpose;
  meta: RequestMeta;
  /** The signed-in caller, if the call carried a valid access token. */
  caller?: OtpCaller;
}

export interface VerifyOtpResult {
  verificationToken: string;
  /** Seconds until the verification token expires. */
  expiresIn: number;
}

export interface VerifiedIdentifier {
  /** Normalised identifier the token was minted for. */
  identifier: string;
  kind: IdentifierKind;
}

/** Normalisers that also accept this deployment's test phone ranges (see otp-test-identifiers.ts). */
export interface IdentifierNormalizer {
  identifier(raw: string, field?: string): Identifier;
  email(raw: string, field?: string): string;
  phone(raw: string, field?: string): string;
}

export interface OtpService {
  request(input: RequestOtpInput): Promise<RequestOtpResult>;
  verify(input: VerifyOtpInput): Promise<VerifyOtpResult>;
  /**
   * Single use: the token is deleted by this call whatever the outcome, so a token presented
   * with the wrong purpose is burnt too (it was minted for another flow: a client bug or a
   * probe, and the owner simply verifies again). Throws unauthenticated when the token is
   * unknown, used, expired or of another purpose, or (purposes that need a caller) was
   * minted for another user than `userId`.
   */
  consumeVerificationToken(token: string, purpose: OtpPurpose, userId?: string): Promise<VerifiedIdentifier>;
  /**
   * Reads a token without using it up, so Register can check the token's binding and the
   * account's uniqueness before consuming it (a taken username then costs no new code).
   * Throws like consumeVerificationToken; burns nothing.
   */
  peekVerificationToken(token: string, purpose: OtpPurpose, userId?: string): Promise<VerifiedIdentifier>;
  /** Register and Login normalise with these so that a verified identifier compares equal. */
  readonly normalize: IdentifierNormalizer;
  /**
   * Sends a notice (no code) to an identifier through the channel of its kind, e.g. "your
   * e-mail address was changed". Best effort: a failure is logged, never thrown. Test
   * identifiers get nothing delivered, as with codes.
   */
  notify(id: Identifier, notice: { subject: string; text: string }, meta: RequestMeta): Promise<void>;
}

const HOUR = 3600;
const SENT = "A verification code has been sent";
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/; // 32 bytes, base64url
const CHANNEL_OF: Record<IdentifierKind, OtpChannel> = { email: "EMAIL", phone: "SMS" };
const NOTIFY_CHANNEL_OF: Record<IdentifierKind, NotifyChannel> = { email: "email", phone: "sms" };

const badCode = () => invalid([{ field: "otp", description: "invalid or expired code" }]);
const badToken = () => unauthenticated("invalid or expired verification token");

/** A stored token's identity, when it was minted for this purpose and (caller-bound purposes) this user. */
function judged(identity: VerifiedIdentity | null, purpose: OtpPurpose, userId: string | undefined): VerifiedIdentifier {
  if (!identity || identity.purpose !== purpose || identity.userId !== userId) throw badToken();
  return { identifier: identity.identifier, kind: identity.kind };
}

function checkPurpose(purpose: unknown): asserts purpose is OtpPurpose {
  if (!OTP_PURPOSES.includes(purpose as OtpPurpose)) throw invalid([{ field: "purpose", description: `must be one of ${OTP_PURPOSES.join(", ")}` }]);
}

/**
 * The user a code of this purpose is bound to: undefined for REGISTER and LOGIN; the caller
 * for the others, which are refused (unauthenticated) without one, and, for DELETE_ACCOUNT,
 * refused (invalid_argument) for an identifier that is not the caller's own.
 */
function boundUser(purpose: OtpPurpose, caller: OtpCaller | undefined, id: Identifier): string | undefined {
  if (!CALLER_PURPOSES.has(purpose)) return undefined;
  if (!caller) throw unauthenticated(`purpose ${purpose} needs the caller's access token`);
  if (purpose === "DELETE_ACCOUNT" && id.value !== (id.kind === "email" ? caller.email : caller.phoneNumber)) {
    throw invalid([{ field: "identifier", description: "must be one of your own e-mail address or phone number" }]);
  }
  return caller.userId;
}

/** Refuses a caller-bound purpose without a caller before anything else is looked at (and counted). */
function requireCaller(purpose: OtpPurpose, caller: OtpCaller | undefined): void {
  if (CALLER_PURPOSES.has(purpose) && !caller) throw unauthenticated(`purpose ${purpose} needs the caller's access token`);
}

export function createOtpService({ redis, config, secret, notifier, logger, audit, outages }: OtpServiceDeps): OtpService {
  const policy = config.otp;
  const log = logger.child({ component: "otp" });
  const development = config.nodeEnv !== "production";
  const store = createOtpStore(redis, secret, policy);
  const limiter = createRateLimiter(redis);
  const tests = parseTestIdentifiers(policy.testIdentifiers);
  const testCode = policy.testCode;

  if (policy.testIdentifiers.length) {
    // config.ts enforces both; checked again because a wrong Config here means a backdoor.
    if (!testCode) throw new Error("OTP_TEST_CODE is required when OTP_TEST_IDENTIFIERS is set");
    if (!development && !policy.allowTestIdentifiersInProduction) throw new Error("OTP_TEST_IDENTIFIERS refused in production");
    log[development ? "warn" : "error"](
      { testIdentifiers: policy.testIdentifiers.length, phonePrefixes: tests.phonePrefixes },
      "OTP TEST IDENTIFIERS ARE ENABLED: they sign in with the fixed OTP_TEST_CODE and nothing is delivered to them",
    );
  }

  const phoneMemo = new ExpiringMap<string, string>(10_000);
  const normalize: IdentifierNormalizer = {
    identifier: (raw, field = "identifier") => normalizeIdentifier(raw, { field, testPhonePrefixes: tests.phonePrefixes, phoneMemo }),
    email: (raw, field = "email") => normalizeEmail(raw, { field }),
    phone: (raw, field = "phone_number") => normalizePhone(raw, { field, testPhonePrefixes: tests.phonePrefixes, phoneMemo }),
  };

  /** Counts RequestOtp and VerifyOtp calls alike against the client's network. */
  async function limitIp(meta: RequestMeta): Promise<void> {
    const r = await limiter.hit(`otp:ip:${ipBucket(meta.ip)}`, policy.requestsPerIpPerHour, HOUR);
    if (!r.allowed) {
      log.info({ ip: meta.ip, requestId: meta.requestId }, "OTP per-IP limit reached");
      throw exhausted("too many requests from your network, try again later", r.retryAfterSeconds);
    }
  }

  async function record(action: string, id: Identifier, purpose: OtpPurpose, meta: RequestMeta, userId: string | undefined, extra: Record<string, unknown> = {}): Promise<void> {
    if (!audit) return;
    try {
      await audit({
        // Codes of REGISTER and LOGIN name no account (see the top); the others are the caller's.
        userId: userId ?? null,
        action,
        entityType: "otp",
        entityId: null,
        newValues: { purpose, channel: CHANNEL_OF[id.kind], identifier_hint: maskIdentifier(id), ...extra },
        ipAddress: meta.ip || null,
        userAgent: meta.userAgent || null,
        sessionId: null,
      });
    } catch (err) {
      // The code is already sent or judged; failing the call now would only confuse the user.
      // PostgreSQL unreachable: the outage log says so once, not a stack trace per call.
      const failure = storeFailure(err);
      if (failure && outages) {
        outages.report(failure);
        log.debug({ action, requestId: meta.requestId, reason: failure.reason }, "could not record OTP audit entry");
      } else log.error({ err, action, requestId: meta.requestId }, "could not record OTP audit entry");
    }
  }

  async function deliver(id: Identifier, purpose: OtpPurpose, code: string, meta: RequestMeta, userId: string | undefined): Promise<void> {
    try {
      await notifier.sendOtp({ channel: NOTIFY_CHANNEL_OF[id.kind], to: id.value, code, purpose, ttlSeconds: policy.ttlSeconds });
    } catch (err) {
      // A code nobody received must not stay guessable, and its cooldown must not block a retry.
      await store.withdraw(id, purpose, code, userId).catch((e: unknown) => log.error({ err: e }, "could not withdraw undelivered OTP"));
      // DeliveryError messages are safe to log; anything else may quote the recipient or the text.
      const reason = err instanceof DeliveryError || development ? (err as Error).message : (err as Error).name;
      log.error({ reason, channel: CHANNEL_OF[id.kind], identifier_hint: maskIdentifier(id), requestId: meta.requestId }, "OTP delivery failed");
      throw new DomainError("unavailable", "could not deliver the code, try again");
    }
  }

  return {
    normalize,

    async notify(id, { subject, text }, meta) {
      if (tests.matches(id)) {
        log.info({ identifier_hint: maskIdentifier(id), requestId: meta.requestId }, "notice to a test identifier: nothing delivered");
        return;
      }
      try {
        await notifier.sendMessage({ channel: NOTIFY_CHANNEL_OF[id.kind], to: id.value, subject, text });
      } catch (err) {
        const reason = err instanceof DeliveryError || development ? (err as Error).message : (err as Error).name;
        log.error({ reason, channel: CHANNEL_OF[id.kind], identifier_hint: maskIdentifier(id), requestId: meta.requestId }, "notice delivery failed");
      }
    },

    async request({ identifier, purpose, channel, meta, caller }) {
      checkPurpose(purpose);
      requireCaller(purpose, caller);
      const id = normalize.identifier(identifier);
      const userId = boundUser(purpose, caller, id);
      if (channel !== undefined && channel !== CHANNEL_OF[id.kind]) {
        throw invalid([{ field: "channel", description: `${channel} cannot deliver to ${id.kind === "email" ? "an e-mail address" : "a phone number"}` }]);
      }
      await limitIp(meta);
      // Test identifiers go through every limit like anyone else: load tests spread over the
      // numbers of a prefix (+1555… holds millions) and raise OTP_REQUESTS_PER_IP_PER_HOUR.
      const isTest = tests.matches(id);
      const code = isTest ? testCode! : randomInt(0, 1_000_000).toString().padStart(6, "0");
      const issued = await store.issue(id, purpose, code, userId);
      if (issued.status === "cooldown") throw exhausted("a code was sent recently, wait before asking for another", issued.retryAfterSeconds);
      if (issued.status === "too_many_sends") throw exhausted("too many codes requested for this identifier, try again later", issued.retryAfterSeconds);
      if (isTest) log.info({ identifier_hint: maskIdentifier(id), purpose, requestId: meta.requestId }, "OTP test identifier: fixed test code stored, nothing delivered");
      else await deliver(id, purpose, code, meta, userId);
      await record("otp.requested", id, purpose, meta, userId);
      return { message: SENT, expiresIn: policy.ttlSeconds, retryAfter: policy.resendSeconds };
    },

    async verify({ identifier, otp, purpose, meta, caller }) {
      checkPurpose(purpose);
      requireCaller(purpose, caller);
      const id = normalize.identifier(identifier);
      const userId = boundUser(purpose, caller, id);
      const code = typeof otp === "string" ? otp.trim() : "";
      if (!/^\d{6}$/.test(code)) throw invalid([{ field: "otp", description: "must be 6 digits" }]);
      await limitIp(meta);
      // Minted whatever the outcome, so a failure costs the same work as a success (see top).
      const token = pooledRandomBytes(32).toString("base64url");
      const result = await store.check(id, purpose, code, userId);
      if (result.status === "too_many_failures") {
        log.info({ identifier_hint: maskIdentifier(id), requestId: meta.requestId }, "OTP failures-per-identifier limit reached");
        throw exhausted("too many failed verifications for this identifier, try again later", result.retryAfterSeconds);
      }
      if (result.status !== "match") {
        await record("otp.failed", id, purpose, meta, userId, { reason: result.status === "mismatch" ? "wrong_code" : "no_live_code" });
        throw badCode();
      }
      await store.saveToken(token, { identifier: id.value, kind: id.kind, purpose, ...(userId === undefined ? {} : { userId }) });
      await record("otp.verified", id, purpose, meta, userId);
      return { verificationToken: token, expiresIn: policy.verificationTtlSeconds };
    },

    async peekVerificationToken(token, purpose, userId) {
      if (typeof token !== "string" || !TOKEN_SHAPE.test(token)) throw badToken();
      return judged(await store.peekToken(token), purpose, userId);
    },

    async consumeVerificationToken(token, purpose, userId) {
      // A malformed token cannot exist in the store: no need to ask it.
      if (typeof token !== "string" || !TOKEN_SHAPE.test(token)) throw badToken();
      return judged(await store.takeToken(token), purpose, userId);
    },
  };
}
