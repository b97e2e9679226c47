// The auth interceptor: enforces each method's `identity.v1.auth` policy
// (proto/identity/v1/options.proto) and puts the caller's principal in the handler context
// (principalKey). The policies and what "valid" means are on createAuthInterceptor below.
// Install it inside the error interceptor and only on the identity.v1 services: health and
// reflection carry no policy and would be refused.
import { getOption, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor, type StreamRequest, type UnaryRequest } from "@connectrpc/connect";
import { auth, AuthPolicy } from "../../../gen/identity/v1/options_pb.js";
import type { Principal } from "../../domain/caller.js";
import type { DenyList } from "../../domain/deny-list.js";
import { DomainError } from "../../domain/errors.js";
import { InvalidTokenError, type TokenIssuer } from "../../domain/tokens.js";
import type { UserView } from "../../domain/users.js";
import type { Logger } from "../../logger.js";
import { accountKey, principalKey, requestMetaKey } from "./context.js";

export interface PrincipalStatus {
  /** users.is_staff of the user; false for services. */
  staff: boolean;
  /** The user's account, when the check read it: handed to the call (Caller.account). */
  account?: UserView;
}

export interface AuthInterceptorOptions {
  issuer: Pick<TokenIssuer, "verifyAccess">;
  /** Consulted for service tokens (see the top of this file). */
  denyList: Pick<DenyList, "isDenied">;
  /**
   * Runs on every call of a protected method, after the token verified. For a user: throw
   * unauthenticated() unless the session `sessionId` is live (not ended or revoked) and the
   * user `subject` exists and is active; resolve with users.is_staff. For a service:
   * resolve { staff: false } (or throw to refuse a retired service).
   */
  checkPrincipal: (principal: Principal) => Promise<PrincipalStatus>;
  /**
   * The services whose methods carry an (identity.v1.auth) policy. Calls to other services
   * on the router (health, reflection) pass untouched; a method of these services without a
   * policy is refused.
   */
  services: readonly DescService[];
  logger: Logger;
}

const isStaffUser = (p: Principal): boolean => p.kind === "user" && p.roles.includes("staff");

const rules = new Map<AuthPolicy, (p: Principal) => boolean>([
  [AuthPolicy.USER, (p) => p.kind === "user"],
  [AuthPolicy.STAFF, isStaffUser],
  [AuthPolicy.STAFF_OR_SERVICE, (p) => p.kind === "service" || isStaffUser(p)],
]);

// Sticky: test() leaves lastIndex where the token starts (no match array per call).
const BEARER_PREFIX = /bearer +(?=\S+$)/iy;

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), or undefined. */
function bearerToken(header: string | null): string | undefined {
  if (header === null) return undefined;
  BEARER_PREFIX.lastIndex = 0;
  return BEARER_PREFIX.test(header) ? header.slice(BEARER_PREFIX.lastIndex) : undefined;
}

/**
 * Enforces each method's `identity.v1.auth` policy (proto/identity/v1/options.proto) and
 * puts the caller's principal in the handler context (principalKey). The request meta
 * (client IP, user agent, request id) is set by the server from the HTTP request, before
 * interceptors run; this interceptor only reads it for its log lines.
 *
 *   NONE               passes; the Authorization header is not even read, so an expired
 *                      token sent along with RefreshToken cannot fail the call, and
 *                      handlers of these methods get no principal.
 *   USER               a valid user access token.
 *   STAFF              a valid user access token of a staff user.
 *   STAFF_OR_SERVICE   a staff user's token or a service token.
 *   OPTIONAL_USER      passes; a bearer token, when sent, is judged like USER's and a valid
 *                      user principal is handed to the handler, which decides what needs it
 *                      (RequestOtp/VerifyOtp for CHANGE_IDENTIFIER and DELETE_ACCOUNT). An
 *                      invalid or ended token counts as none: a stale token sent along with
 *                      a sign-in code request cannot fail it.
 *   anything else      permission_denied (fail closed: a method nobody marked is refused).
 *
 * "Valid" means: a well-formed `Authorization: Bearer <jwt>` (gRPC metadata
 * `authorization` is the same header), verified by the token issuer, and accepted by
 * checkPrincipal; a service token also must not be on the deny list. Missing or bad
 * tokens → unauthenticated; a valid caller of the wrong kind → permission_denied.
 *
 * A user token is judged by its session, which checkPrincipal reads from the database on
 * every call: every denial of a user token (logout, revoking one's own session) ends that
 * session first, so its token is already refused there, and a Redis look-up per call would
 * only repeat the answer. Service tokens have no session: the deny list is how one is
 * revoked before it expires.
 *
 * Staff = users.is_staff, read by checkPrincipal on every call. The token's "staff" role
 * is only a hint for other backends: a user promoted or demoted since the token was issued
 * is judged by the database, and the principal handed to handlers carries the database's
 * answer in its roles.
 *
 * Install it inside the error interceptor (errors thrown by checkPrincipal pass through
 * unchanged) and only on the identity.v1 services: health and reflection carry no policy
 * and would be refused.
 */
export function createAuthInterceptor({ issuer, denyList, checkPrincipal, services, logger }: AuthInterceptorOptions): Interceptor {
  const guarded = new Set(services.map((s) => s.typeName));
  // getOption decodes the method's options on every call: remember the answer.
  const policies = new WeakMap<DescMethod, AuthPolicy>();
  const policyOf = (method: DescMethod): AuthPolicy => {
    let policy = policies.get(method);
    if (policy === undefined) {
      policy = getOption(method, auth);
      policies.set(method, policy);
    }
    return policy;
  };

  // The call's own log line carries the code; this one adds why, which the caller never sees.
  const refuse = (req: UnaryRequest | StreamRequest, code: Code, message: string, reason: string, level: "debug" | "info" | "error" = "info"): ConnectError => {
    const { requestId, ip } = req.contextValues.get(requestMetaKey);
    logger[level]({ procedure: `/${req.service.typeName}/${req.method.name}`, requestId, ip, reason }, "call refused by auth");
    return new ConnectError(message, code);
  };

  /**
   * The verified caller of a call (its account, when the check read one, goes into the
   * context); throws unauthenticated for a missing, invalid, denied or ended credential.
   */
  async function authenticate(req: UnaryRequest | StreamRequest): Promise<Principal> {
    const token = bearerToken(req.header.get("authorization"));
    if (!token) throw refuse(req, Code.Unauthenticated, "Authentication required", "no bearer token", "debug");
    let principal: Principal;
    try {
      principal = issuer.verifyAccess(token);
    } catch (e) {
      if (e instanceof InvalidTokenError) throw refuse(req, Code.Unauthenticated, e.message, e.reason);
      throw e;
    }
    if (principal.kind === "service" && (await denyList.isDenied(principal.jti))) throw refuse(req, Code.Unauthenticated, "Invalid access token", "jti denied");
    const { staff, account } = await checkPrincipal(principal);
    if (account) req.contextValues.set(accountKey, account);
    if (principal.kind !== "user") return principal;
    // The verified principal is shared by every call of its token (frozen): a copy only when the database disagrees with its roles.
    const agrees = principal.roles.length === (staff ? 1 : 0) && (!staff || principal.roles[0] === "staff");
    return agrees ? principal : { ...principal, roles: staff ? ["staff"] : [] };
  }

  return (next) => async (req) => {
    if (!guarded.has(req.service.typeName)) return next(req);
    const policy = policyOf(req.method);
    if (policy === AuthPolicy.NONE) return next(req);
    if (policy === AuthPolicy.OPTIONAL_USER) {
      if (bearerToken(req.header.get("authorization")) === undefined) return next(req);
      const principal = await authenticate(req).catch((e: unknown) => {
        // Only a refusal of the token means "no caller"; a store outage still fails the call.
        if (e instanceof ConnectError && e.code === Code.Unauthenticated) return undefined;
        if (e instanceof DomainError && e.kind === "unauthenticated") return undefined;
        throw e;
      });
      if (principal?.kind === "user") req.contextValues.set(principalKey, principal);
      return next(req);
    }
    const permits = rules.get(policy);
    if (!permits) throw refuse(req, Code.PermissionDenied, "Permission denied", `method has no usable auth policy (${policy})`, "error");
    const principal = await authenticate(req);
    if (!permits(principal)) throw refuse(req, Code.PermissionDenied, "Permission denied", `${principal.kind} not allowed by ${AuthPolicy[policy]}`);
    req.contextValues.set(principalKey, principal);
    return next(req);
  };
}
