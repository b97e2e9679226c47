// The console's one way to the service: the project's SDK (src/client), which is the
// generated Connect-Web client (@connectrpc/connect-web and the gen/ stubs) plus session
// handling. Same origin, Connect JSON. The tokens live in the SDK's memory store only: a
// reload signs the operator out (nothing is written to localStorage or sessionStorage).
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { createIdentityClient, type IdentityClient } from "../../src/client/index.js";
import { createWebTransport } from "../../src/client/web.js";

let sessionEnded: () => void = () => {};

export const client: IdentityClient = createIdentityClient({
  transport: createWebTransport({ baseUrl: location.origin, protocol: "connect" }),
  onSessionEnded: () => sessionEnded(),
});

/** What to do when the server refuses to renew the session. */
export function onSessionEnded(handler: () => void): void {
  sessionEnded = handler;
}

export const NOT_STAFF = "Not staff: this account may not use the staff console.";
export const SESSION_EXPIRED = "Session expired: sign in again.";
export const UNAVAILABLE = "Service unavailable: try again in a moment.";

/** A sentence for the operator about a failed call. */
export function describeError(e: unknown): string {
  const err = ConnectError.from(e);
  switch (err.code) {
    case Code.PermissionDenied:
      return err.rawMessage && err.rawMessage !== "Permission denied" ? `Not allowed: ${err.rawMessage}` : NOT_STAFF;
    case Code.Unauthenticated:
      return SESSION_EXPIRED;
    case Code.Unavailable:
    case Code.DeadlineExceeded:
      return UNAVAILABLE;
    case Code.Unknown:
      // fetch() itself failed: the service cannot be reached.
      return /fetch|network/i.test(err.rawMessage) ? UNAVAILABLE : `Error: ${err.rawMessage}`;
    case Code.InvalidArgument: {
      const violations = err.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations);
      return violations.length ? `Please check: ${violations.map((v) => `${v.field.replace(/_/g, " ")} ${v.description}`).join("; ")}.` : `Please check: ${err.rawMessage}`;
    }
    default:
      return err.rawMessage || "Something went wrong.";
  }
}

/** "2026-12-05 20:31 UTC", or "—". */
export function when(t: Timestamp | undefined): string {
  if (!t) return "—";
  return timestampDate(t).toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

/** "KYC_STATUS_PENDING"-style enum names as words: "Pending". */
export function words(name: string | undefined, prefix: string): string {
  if (!name) return "—";
  const rest = name.startsWith(prefix) ? name.slice(prefix.length) : name;
  const lower = rest.toLowerCase().replace(/_/g, " ");
  return lower.charAt(0).toUpperCase() + lower.slice(1);
}

/** Who acted: a staff user's id as a short link to their page; services and jobs as named. */
export function actorLink(actorId: string): Node {
  if (!/^[0-9a-f-]{36}$/i.test(actorId)) return document.createTextNode(actorId);
  const a = document.createElement("a");
  a.href = `#/users/${actorId}`;
  a.title = actorId;
  a.textContent = `staff ${actorId.slice(0, 8)}…`;
  return a;
}
