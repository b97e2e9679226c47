// How OTP state sits in Redis. Codes and verification tokens are kept only as HMACs keyed
// by the server secret, and an identifier's keys are named by an HMAC of it: a Redis dump
// yields no usable code or token, and names no one except in the value of a live
// verification token (which must say whom it proves, for its 10 minutes).
//
// Keys (the client's keyPrefix goes in front; `{tag}` is the HMAC of the identifier, a
// Redis Cluster hash tag, so every key one script touches lives in one slot):
//   otp:{tag}:code:<purpose>      hash { mac, attempts }, TTL = OTP_TTL_SECONDS
//   otp:{tag}:cooldown:<purpose>  resend cooldown marker, TTL = OTP_RESEND_SECONDS
//   otp:{tag}:sends               codes sent to the identifier this hour (all purposes)
//   otp:{tag}:failures            wrong codes tried for the identifier this hour (all purposes)
//   otp:vt:<mac of token>         verification token → { identifier, kind, purpose, userId? }
//
// Codes of the purposes that need a caller (CHANGE_IDENTIFIER, DELETE_ACCOUNT) are MACed with
// the requesting user's id as well: only the user who asked for a code can prove it.
//   otp:ip:<address or /64>       calls per client network this hour (otp.ts, rate-limit.ts)
import type { RedisClient } from "../store/redis.js";
import { createHmac } from "node:crypto";
import type { Config } from "../config.js";
import type { Identifier, IdentifierKind } from "./identifiers.js";
import type { OtpPurpose } from "./otp.js";
import { defineScript } from "../store/redis.js";
import { LUA_WINDOW_INCR } from "./rate-limit.js";

const HOUR = 3600;

export type IssueResult = { status: "issued" } | { status: "cooldown" | "too_many_sends"; retryAfterSeconds: number };

/** "missing" covers unknown identifier, expired, replaced, used and dead codes alike. */
export type CheckResult = { status: "match" | "missing" | "mismatch" } | { status: "too_many_failures"; retryAfterSeconds: number };

export interface VerifiedIdentity {
  identifier: string;
  kind: IdentifierKind;
  purpose: OtpPurpose;
  /** The signed-in user who proved the identifier (purposes that need a caller only). */
  userId?: string;
}

export interface OtpStore {
  /** Stores the code's MAC (replacing any code of this identifier and purpose) unless the cooldown or the send limit applies. */
  issue(id: Identifier, purpose: OtpPurpose, code: string, userId?: string): Promise<IssueResult>;
  /** Removes a code that could not be delivered (only if it is still the current one) and lifts its cooldown. */
  withdraw(id: Identifier, purpose: OtpPurpose, code: string, userId?: string): Promise<void>;
  /** Tries a code: one atomic step that counts the attempt and burns the code on success or exhaustion. */
  check(id: Identifier, purpose: OtpPurpose, code: string, userId?: string): Promise<CheckResult>;
  saveToken(token: string, identity: VerifiedIdentity): Promise<void>;
  /** Returns and deletes the token's identity (GETDEL: a token is used once, even under races). */
  takeToken(token: string): Promise<VerifiedIdentity | null>;
  /** Returns the token's identity without deleting it. */
  peekToken(token: string): Promise<VerifiedIdentity | null>;
}

// KEYS: code, cooldown, sends. ARGV: mac, ttl, resend seconds, sends limit, sends window.
const ISSUE_LUA = `${LUA_WINDOW_INCR}
local cooldown = redis.call('PTTL', KEYS[2])
if cooldown > 0 then return {1, cooldown} end
local sends, ttl = window_incr(KEYS[3], ARGV[5])
if sends > tonumber(ARGV[4]) then return {2, ttl * 1000} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'mac', ARGV[1], 'attempts', 0)
redis.call('EXPIRE', KEYS[1], ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[2], '1', 'EX', ARGV[3]) end
return {0, 0}`;

// KEYS: code, cooldown. ARGV: mac. The send stays counted: it was attempted.
const WITHDRAW_LUA = `
if redis.call('HGET', KEYS[1], 'mac') == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
end
return 0`;

// KEYS: code, failures. ARGV: candidate mac, max attempts, failures limit, failures window.
// Every attempt that reaches a live code is counted on the code and burns it at the
// maximum, so parallel guesses cannot get more than max attempts evaluated per code.
// Only attempts against a live code count as failures of the identifier: guesses where
// there is no code cannot succeed, and counting them would let anyone lock a person out
// without even triggering a code.
const CHECK_LUA = `${LUA_WINDOW_INCR}
local max = tonumber(ARGV[2])
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[3]) then
  return {3, redis.call('PTTL', KEYS[2])}
end
local code = redis.call('HMGET', KEYS[1], 'mac', 'attempts')
if not code[1] then return {1, 0} end
if tonumber(code[2]) >= max then
  redis.call('DEL', KEYS[1])
  return {1, 0}
end
if code[1] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {0, 0}
end
if redis.call('HINCRBY', KEYS[1], 'attempts', 1) >= max then redis.call('DEL', KEYS[1]) end
window_incr(KEYS[2], ARGV[4])
return {2, 0}`;

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

export function createOtpStore(redis: RedisClient, secret: Buffer, policy: Config["otp"]): OtpStore {
  // One key per use, derived from the server secret, so a MAC of one kind can never be
  // replayed as another (an identifier tag is not a code MAC, and so on).
  const subkey = (label: string) => createHmac("sha256", secret).update(label).digest();
  const tagKey = subkey("identity/otp/identifier-tag/v1");
  const codeKey = subkey("identity/otp/code/v1");
  const tokenKey = subkey("identity/otp/verification-token/v1");
  const mac = (key: Buffer, data: string) => createHmac("sha256", key).update(data).digest("hex");

  // 128 bits of the MAC are plenty to keep identifiers apart and keep key names short.
  const base = (id: Identifier) => `otp:{${mac(tagKey, id.value).slice(0, 32)}}`;
  const keys = (id: Identifier, purpose: OtpPurpose) => {
    const b = base(id);
    const p = purpose.toLowerCase();
    return { code: `${b}:code:${p}`, cooldown: `${b}:cooldown:${p}`, sends: `${b}:sends`, failures: `${b}:failures` };
  };
  const codeMac = (id: Identifier, purpose: OtpPurpose, code: string, userId?: string) => mac(codeKey, `${purpose}|${id.value}|${code}${userId === undefined ? "" : `|${userId}`}`);
  const tokenRedisKey = (token: string) => `otp:vt:${mac(tokenKey, token)}`;

  // Scripts answer {status, milliseconds to wait}.
  const issueScript = defineScript<[number, number]>(redis, "otpIssue", ISSUE_LUA, 3);
  const withdrawScript = defineScript<number>(redis, "otpWithdraw", WITHDRAW_LUA, 2);
  const checkScript = defineScript<[number, number]>(redis, "otpCheck", CHECK_LUA, 2);

  return {
    async issue(id, purpose, code, userId) {
      const k = keys(id, purpose);
      const [status, ms] = await issueScript([k.code, k.cooldown, k.sends], [codeMac(id, purpose, code, userId), policy.ttlSeconds, policy.resendSeconds, policy.sendsPerIdentifierPerHour, HOUR]);
      if (status === 1) return { status: "cooldown", retryAfterSeconds: seconds(ms) };
      if (status === 2) return { status: "too_many_sends", retryAfterSeconds: seconds(ms) };
      return { status: "issued" };
    },

    async withdraw(id, purpose, code, userId) {
      const k = keys(id, purpose);
      await withdrawScript([k.code, k.cooldown], [codeMac(id, purpose, code, userId)]);
    },

    async check(id, purpose, code, userId) {
      const k = keys(id, purpose);
      const [status, ms] = await checkScript([k.code, k.failures], [codeMac(id, purpose, code, userId), policy.maxAttempts, policy.failuresPerIdentifierPerHour, HOUR]);
      switch (status) {
        case 0:
          return { status: "match" };
        case 2:
          return { status: "mismatch" };
        case 3:
          return { status: "too_many_failures", retryAfterSeconds: seconds(ms) };
        default:
          return { status: "missing" };
      }
    },

    async saveToken(token, identity) {
      await redis.set(tokenRedisKey(token), JSON.stringify(identity), "EX", policy.verificationTtlSeconds);
    },

    async takeToken(token) {
      const raw = await redis.getdel(tokenRedisKey(token));
      return raw === null ? null : (JSON.parse(raw) as VerifiedIdentity);
    },

    async peekToken(token) {
      const raw = await redis.get(tokenRedisKey(token));
      return raw === null ? null : (JSON.parse(raw) as VerifiedIdentity);
    },
  };
}
