// Refresh-token format and the encrypted grace-window cache (DESIGN §4).
//
// A refresh token is `<session id>.<generation>.<mac>` where mac = HMAC-SHA256(secret,
// "refresh|<sid>|<generation>|<seed>") and seed is a random value stored with the session.
// Deriving every generation's token from the seed lets the server recognise ANY earlier
// generation of a session as genuine without storing them all: a genuine but stale token is
// reuse (the session is revoked), a forged one is merely invalid (so knowing a session id
// is not enough to revoke someone's session). The database holds only the seed, which is
// useless without the server secret.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { pooledRandomBytes } from "./random-pool.js";

export interface ParsedRefreshToken {
  sessionId: string;
  generation: number;
  mac: Buffer;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function newSeed(): string {
  return pooledRandomBytes(32).toString("base64url");
}

function mac(secret: Buffer, sessionId: string, generation: number, seed: string): Buffer {
  return createHmac("sha256", secret).update(`refresh|${sessionId}|${generation}|${seed}`).digest();
}

export function formatRefreshToken(secret: Buffer, sessionId: string, generation: number, seed: string): string {
  return `${sessionId}.${generation}.${mac(secret, sessionId, generation, seed).toString("base64url")}`;
}

/** Splits a presented token; undefined when it is not of our shape at all. */
export function parseRefreshToken(token: string): ParsedRefreshToken | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  const [sessionId, gen, macText] = parts as [string, string, string];
  if (!UUID.test(sessionId) || !/^\d{1,9}$/.test(gen) || !/^[A-Za-z0-9_-]{43}$/.test(macText)) return undefined;
  return { sessionId, generation: Number(gen), mac: Buffer.from(macText, "base64url") };
}

/** True when the token was really issued for this session at its generation. */
export function isGenuine(secret: Buffer, token: ParsedRefreshToken, seed: string): boolean {
  const expected = mac(secret, token.sessionId, token.generation, seed);
  return expected.length === token.mac.length && timingSafeEqual(expected, token.mac);
}

// The pair handed out by a rotation is cached for the grace window, encrypted with a key
// derived from the token that was presented: only someone holding that token can read it,
// so the cache never holds usable tokens in clear.
function cacheKey(presented: string): Buffer {
  return Buffer.from(hkdfSync("sha256", presented, "identity-refresh-grace", "aes-256-gcm", 32));
}

export function sealForGrace(presented: string, value: unknown): string {
  const iv = pooledRandomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", cacheKey(presented), iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(value), "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
}

export function openFromGrace<T>(presented: string, sealed: string): T | undefined {
  const raw = Buffer.from(sealed, "base64url");
  if (raw.length < 29) return undefined;
  try {
    const decipher = createDecipheriv("aes-256-gcm", cacheKey(presented), raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    const plain = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]);
    return JSON.parse(plain.toString("utf8")) as T;
  } catch {
    return undefined;
  }
}
