// Who is calling and from where: built by the server's interceptors, passed to the domain
// as plain data (no transport types).
import { permissionDenied, unauthenticated } from "./errors.js";
import { SERVICE_SUBJECT_PREFIX } from "./tokens.js";
import type { UserView } from "./users.js";

export type PrincipalRole = "staff" | "service";

export interface Principal {
  kind: "user" | "service";
  /** User id (kind "user") or service name (kind "service"). */
  subject: string;
  /** Session id of a user's access token. */
  sessionId?: string;
  roles: PrincipalRole[];
  /** Token id, for the deny list at logout. */
  jti: string;
  /** Access-token expiry, seconds since the epoch. */
  expiresAt: number;
}

export interface RequestMeta {
  /** Client IP (the socket peer, or X-Forwarded-For from a trusted proxy). */
  ip: string;
  userAgent: string;
  requestId: string;
}

export interface Caller {
  principal?: Principal;
  /** The signed-in user's account as the session check of this very call read it. */
  account?: UserView;
  meta: RequestMeta;
  /**
   * Aborted when the call is abandoned: its deadline passed, the client went away, or the
   * server's shutdown grace ended. Database work of the call passes it on (runTransaction), so
   * that the work is cancelled and rolled back. Read it only when starting such work: on the
   * unary gRPC path it is made on first read.
   */
  readonly signal?: AbortSignal;
}

/** The id of the signed-in user making the call: every query of "my" records is scoped to it. */
export function callerUserId(caller: Caller): string {
  const principal = caller.principal;
  if (!principal) throw unauthenticated();
  if (principal.kind !== "user") throw permissionDenied();
  return principal.subject;
}

/** The id of the staff user making the call; permission_denied for anyone else. */
export function staffUserId(caller: Caller): string {
  const userId = callerUserId(caller);
  if (!caller.principal?.roles.includes("staff")) throw permissionDenied();
  return userId;
}

/**
 * Who acts for a staff-or-service method: the staff user's id, or "service:<name>" for a
 * service token (the actor_id of audit rows and ledger entries); permission_denied for others.
 */
export function staffOrServiceActorId(caller: Caller): string {
  const principal = caller.principal;
  if (!principal) throw unauthenticated();
  if (principal.kind === "service") return `${SERVICE_SUBJECT_PREFIX}${principal.subject}`;
  return staffUserId(caller);
}
