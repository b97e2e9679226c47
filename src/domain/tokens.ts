// Access tokens (DESIGN §4): JWTs signed by the key ring's signing key.
//
// Header   { alg: "ES256" | "RS256" (the key's), typ: "JWT", kid }
// Payload  { iss, aud, sub, jti, iat, exp, typ, roles, sid? }
//   typ "access"   a user's token: sub = user id, sid = session id, roles ⊆ ["staff"]
//   typ "service"  a service token: sub = "service:<name>", no sid, roles = ["service"]
// `roles` serve backends that verify tokens themselves through the JWKS; this service
// takes the staff flag from the database on every call (see server/calls/auth.ts).
//
// Verification trusts nothing in the header but the `kid`: the key it names must be in
// the ring, the header's `alg` must be that key's algorithm, and headers that point at
// other keys (jku, jwk, x5u, x5c) or demand extensions (crit) are refused. exp (required),
// nbf, iss, aud and typ are checked with a small clock tolerance. Every refusal is the
// same unauthenticated error; the reason goes to the log only.
//
// A token that verified is remembered (bounded, until its exp): every call of a session
// presents the same token, and the answer cannot change while the process runs (its key
// ring is fixed), so later calls skip the signature check (an ECDSA or RSA verification,
// tens of microseconds). Revocation is not this module's concern (deny-list.ts, sessions.ts).
import { randomUUID } from "node:crypto";
import jwt from "jsonwebtoken";
import type { Config } from "../config.js";
import type { Principal, PrincipalRole } from "./caller.js";
import { DomainError } from "./errors.js";
import { ExpiringMap } from "./expiring-map.js";
import type { KeyRing } from "./keys.js";

const ACCESS_TOKEN_TYPE = "access";
const SERVICE_TOKEN_TYPE = "service";
export const SERVICE_SUBJECT_PREFIX = "service:";
/** A service's name, as in `npm run token:service -- <name>`. */
export const SERVICE_NAME = /^[a-z0-9-]{1,64}$/;
/** Seconds of clock difference between instances tolerated on exp and nbf. */
const CLOCK_TOLERANCE_SECONDS = 5;
/** Far above any token we issue; bounds the work spent on garbage. */
const MAX_TOKEN_LENGTH = 4096;
const FORBIDDEN_HEADERS = ["jku", "jwk", "x5u", "x5c", "crit"];
/** Verified tokens remembered; about 1 kB each. */
const VERIFIED_TOKENS_KEPT = 20_000;

export interface AccessTokenRequest {
  /** User id, or "service:<name>" for kind "service". */
  sub: string;
  /** Session id; required for kind "user", absent for kind "service". */
  sid?: string;
  /** kind "user": [] or ["staff"]; kind "service": ["service"]. */
  roles: PrincipalRole[];
  kind: "user" | "service";
  /** Defaults to ACCESS_TOKEN_TTL_SECONDS. */
  ttlSeconds?: number;
}

export interface IssuedToken {
  token: string;
  jti: string;
  /** Seconds since the epoch. */
  expiresAt: number;
}

export interface TokenIssuer {
  /** Throws (a programming error, not a DomainError) for requests that break the claim layout. */
  issueAccess(request: AccessTokenRequest): IssuedToken;
  /** The token's principal; InvalidTokenError (unauthenticated) for any token not fully valid. */
  verifyAccess(token: string): Principal;
}

/** Unauthenticated with one public message whatever the cause; `reason` is for the log. */
export class InvalidTokenError extends DomainError {
  override name = "InvalidTokenError";
  constructor(readonly reason: string) {
    super("unauthenticated", "Invalid access token");
  }
}

function refuse(reason: string): never {
  throw new InvalidTokenError(reason);
}

function serviceNameOf(sub: string): string | undefined {
  if (!sub.startsWith(SERVICE_SUBJECT_PREFIX)) return undefined;
  const name = sub.slice(SERVICE_SUBJECT_PREFIX.length);
  return SERVICE_NAME.test(name) ? name : undefined;
}

function layoutProblem({ sub, sid, roles, kind, ttlSeconds }: AccessTokenRequest): string | undefined {
  if (ttlSeconds !== undefined && !(Number.isInteger(ttlSeconds) && ttlSeconds > 0)) return "ttlSeconds must be a positive whole number";
  if (kind === "service") {
    if (!serviceNameOf(sub)) return `a service token's sub must be "${SERVICE_SUBJECT_PREFIX}<name>" with name ${SERVICE_NAME}`;
    if (sid !== undefined) return "a service token has no session";
    if (roles.length !== 1 || roles[0] !== "service") return 'a service token\'s roles are ["service"]';
    return undefined;
  }
  if (!sub || sub.startsWith(SERVICE_SUBJECT_PREFIX)) return "a user token needs a user id as sub";
  if (!sid) return "a user token needs a session id";
  if (roles.some((r) => r !== "staff")) return 'a user token\'s roles are [] or ["staff"]';
  return undefined;
}

function decodeHeader(token: string): Record<string, unknown> {
  const dot = token.indexOf(".");
  if (dot <= 0) refuse("malformed token");
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(token.slice(0, dot), "base64url").toString("utf8"));
  } catch {
    refuse("header is not JSON");
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) refuse("header is not an object");
  return header as Record<string, unknown>;
}

function principalOf(claims: unknown): Principal {
  if (typeof claims !== "object" || claims === null) refuse("payload is not an object");
  const { sub, sid, jti, exp, typ, roles } = claims as Record<string, unknown>;
  if (typeof sub !== "string" || !sub) refuse("no sub");
  if (typeof jti !== "string" || !jti) refuse("no jti");
  if (typeof exp !== "number") refuse("no exp");
  if (!Array.isArray(roles) || !roles.every((r) => typeof r === "string")) refuse("roles is not a list of strings");
  if (typ === ACCESS_TOKEN_TYPE) {
    if (typeof sid !== "string" || !sid) refuse("user token without sid");
    if (sub.startsWith(SERVICE_SUBJECT_PREFIX)) refuse("user token with a service subject");
    // Roles this version does not know grant nothing (tokens of a newer instance stay usable).
    return { kind: "user", subject: sub, sessionId: sid, roles: roles.includes("staff") ? ["staff"] : [], jti, expiresAt: exp };
  }
  if (typ === SERVICE_TOKEN_TYPE) {
    const name = serviceNameOf(sub);
    if (!name) refuse("service token with a malformed sub");
    if (sid !== undefined) refuse("service token with sid");
    if (!roles.includes("service")) refuse("service token without the service role");
    return { kind: "service", subject: name, roles: ["service"], jti, expiresAt: exp };
  }
  return refuse(`typ ${JSON.stringify(typ)}`);
}

export function createTokenIssuer(ring: KeyRing, config: Pick<Config, "jwt">): TokenIssuer {
  const { issuer, audience, accessTtlSeconds } = config.jwt;
  const verified = new ExpiringMap<string, Principal>(VERIFIED_TOKENS_KEPT);

  return {
    issueAccess(request) {
      const problem = layoutProblem(request);
      if (problem) throw new Error(`issueAccess: ${problem}`);
      const key = ring.signing;
      const iat = Math.floor(Date.now() / 1000);
      const expiresAt = iat + (request.ttlSeconds ?? accessTtlSeconds);
      const jti = randomUUID();
      const payload = {
        iss: issuer,
        aud: audience,
        sub: request.sub,
        jti,
        iat,
        exp: expiresAt,
        typ: request.kind === "user" ? ACCESS_TOKEN_TYPE : SERVICE_TOKEN_TYPE,
        roles: request.roles,
        ...(request.sid === undefined ? {} : { sid: request.sid }),
      };
      const token = jwt.sign(payload, key.privateKey, { algorithm: key.alg, keyid: key.kid });
      return { token, jti, expiresAt };
    },

    verifyAccess(token) {
      if (token.length > MAX_TOKEN_LENGTH) refuse("token too long");
      const known = verified.get(token);
      if (known) return known;
      const header = decodeHeader(token);
      const carried = FORBIDDEN_HEADERS.find((h) => Object.hasOwn(header, h));
      if (carried) refuse(`header carries ${carried}`);
      const key = typeof header.kid === "string" ? ring.get(header.kid) : undefined;
      if (!key) refuse("unknown kid");
      if (header.alg !== key.alg) refuse(`alg ${JSON.stringify(header.alg)} is not ${key.alg}, the algorithm of key ${key.kid}`);
      let claims: unknown;
      try {
        claims = jwt.verify(token, key.publicKey, { algorithms: [key.alg], issuer, audience, clockTolerance: CLOCK_TOLERANCE_SECONDS });
      } catch (e) {
        refuse((e as Error).message);
      }
      // Shared by every call that presents this token: frozen, so no caller can alter it for the others.
      const principal = principalOf(claims);
      Object.freeze(principal.roles);
      // Valid as long as jwt.verify would accept the exp (nbf, if any, has passed for good).
      verified.set(token, Object.freeze(principal), (principal.expiresAt + CLOCK_TOLERANCE_SECONDS) * 1000);
      return principal;
    },
  };
}
