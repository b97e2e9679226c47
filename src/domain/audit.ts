// Audit entries: one row of user_audit_logs per change, written in the same transaction
// as the change it records. Never put codes, tokens or full document numbers in values.
import type { Caller } from "./caller.js";

export interface AuditEntry {
  /** The user the event is about (null for events of an identifier with no account). */
  userId: string | null;
  /** e.g. "otp.requested", "user.registered", "session.refreshed", "profile.updated". */
  action: string;
  /** e.g. "user", "session", "otp", "profile", "kyc", "device", "points". */
  entityType: string;
  entityId?: string | null;
  oldValues?: Record<string, unknown> | null;
  newValues?: Record<string, unknown> | null;
  ipAddress?: string | null;
  userAgent?: string | null;
  sessionId?: string | null;
  /** Who acted when it is not the user (a staff reviewer, a service, a job). */
  actorId?: string | null;
}

/** Fills the request fields of an audit entry from the caller. */
export function audited(caller: Caller, entry: Omit<AuditEntry, "ipAddress" | "userAgent" | "sessionId"> & { sessionId?: string | null }): AuditEntry {
  return {
    ...entry,
    ipAddress: caller.meta.ip || null,
    userAgent: caller.meta.userAgent || null,
    sessionId: entry.sessionId ?? caller.principal?.sessionId ?? null,
  };
}

/** Only the fields whose values differ, as old/new pairs of plain objects. */
export function changedFields<T extends Record<string, unknown>>(before: T, after: Partial<T>): { oldValues: Partial<T>; newValues: Partial<T> } | null {
  const oldValues: Partial<T> = {};
  const newValues: Partial<T> = {};
  for (const key of Object.keys(after) as Array<keyof T>) {
    if (after[key] === undefined) continue;
    if (JSON.stringify(before[key] ?? null) !== JSON.stringify(after[key] ?? null)) {
      oldValues[key] = before[key];
      newValues[key] = after[key];
    }
  }
  return Object.keys(newValues).length ? { oldValues, newValues } : null;
}
