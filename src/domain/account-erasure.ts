// Erasure of a deleted account (DESIGN §10, GDPR Art. 17): run by purge-deleted-accounts once
// the grace period is over, or by DeleteAccount itself with a grace of 0. In one transaction:
//
//   users              username, email and phone_number become null (the identifiers are free
//                      for a new registration), erased_at is set; the row stays, anonymous,
//                      because the points ledger refers to it
//   user_profiles, user_kyc (number and document URLs), user_devices, sessions,
//   notification_log   deleted
//   user_audit_logs    kept (action, entity, time) without ip_address, user_agent, and with
//                      old_values/new_values cut down to the keys that name no one
//   user_points, points_transactions   kept: a financial record, under the anonymous id
//   outbox             account.deleted, so webhook receivers (CRMs) erase too
//
// Safe to run twice and concurrently: the account row is locked first and the conditions
// (deletion due, not restored, not erased yet) are checked under the lock; an erased account
// is left alone.
import type { Sequelize, Transaction } from "sequelize";
import { queryPrepared, writeAudit, type Models } from "../store/index.js";
import { recordUserChange } from "./outbox.js";

/**
 * Keys of audit values that describe what happened without naming or locating the person;
 * every other key (names, identifiers and their masks, addresses, URLs, device names and ids,
 * token fingerprints, free-text reasons) is removed at erasure. A new key stays out until it
 * is added here.
 */
export const NON_PERSONAL_AUDIT_KEYS: readonly string[] = [
  "purpose",
  "channel",
  "via",
  "verified",
  "generation",
  "presented_generation",
  "current_generation",
  "revoked_count",
  "keep_current",
  "is_active",
  "is_staff",
  "inactive_days",
  "status",
  "document_type",
  "submitted_at",
  "verified_at",
  "reviewed_at",
  "is_profile_complete",
  "current_points",
  "total_points",
  "total_spent",
  "device_type",
  "app_version",
  "os_version",
  "sessions_ended",
  "devices_deactivated",
  "sessions_deleted",
  "devices_deleted",
  "deletion_scheduled_for",
  "erased",
];

export interface ErasureOptions {
  /** Who erases, for the audit row (e.g. "job:purge-deleted-accounts"); null: the user (grace 0). */
  actorId: string | null;
  /**
   * Erase only when the deletion is due (deletion_scheduled_for has passed): the job. False:
   * erase a pending deletion whatever its date (DeleteAccount with a grace of 0, in its own
   * transaction).
   */
  onlyWhenDue: boolean;
  /** Skip an account another transaction holds (the job: a concurrent run has it). */
  skipLocked?: boolean;
}

/** What the erasure removed, for the caller's summary and the audit row. */
export interface Erased {
  sessions: number;
  devices: number;
  auditRows: number;
}

const scrub = (column: string) =>
  `(SELECT nullif(coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb), '{}'::jsonb) FROM jsonb_each(${column}) AS e WHERE e.key = ANY($2::text[]))`;

/** Erases the account `userId` inside `transaction`; undefined when it is not (or no longer) to be erased. */
export async function eraseAccount(sequelize: Sequelize, models: Models, transaction: Transaction, userId: string, options: ErasureOptions): Promise<Erased | undefined> {
  const q = <T extends object>(sql: string, bind: unknown[]) => queryPrepared<T>(sequelize, sql, bind, transaction);
  const locked = await q<{ id: string }>(
    `SELECT id FROM users WHERE id = $1 AND NOT is_active AND erased_at IS NULL AND deletion_scheduled_for IS NOT NULL
        AND ($2::boolean IS FALSE OR deletion_scheduled_for <= now())
      FOR UPDATE${options.skipLocked ? " SKIP LOCKED" : ""}`,
    [userId, options.onlyWhenDue],
  );
  if (!locked.length) return undefined;

  const count = async (sql: string) => (await q<{ n: number }>(`WITH gone AS (${sql} RETURNING 1) SELECT count(*)::int AS n FROM gone`, [userId]))[0]!.n;
  await count("DELETE FROM user_profiles WHERE user_id = $1");
  await count("DELETE FROM user_kyc WHERE user_id = $1");
  const devices = await count("DELETE FROM user_devices WHERE user_id = $1");
  const sessions = await count("DELETE FROM sessions WHERE user_id = $1");
  await count("DELETE FROM notification_log WHERE user_id = $1");
  const [{ n: auditRows }] = (await q<{ n: number }>(
    `WITH scrubbed AS (
       UPDATE user_audit_logs SET ip_address = NULL, user_agent = NULL, old_values = ${scrub("old_values")}, new_values = ${scrub("new_values")}
        WHERE user_id = $1 RETURNING 1
     ) SELECT count(*)::int AS n FROM scrubbed`,
    [userId, NON_PERSONAL_AUDIT_KEYS],
  )) as [{ n: number }];
  await q("UPDATE users SET username = NULL, email = NULL, phone_number = NULL, erased_at = now(), updated_at = now() WHERE id = $1", [userId]);
  await writeAudit(
    models,
    { userId, actorId: options.actorId, action: "account.erased", entityType: "user", entityId: userId, newValues: { erased: true, sessions_deleted: sessions, devices_deleted: devices } },
    transaction,
  );
  await recordUserChange(models, transaction, userId, "account.deleted");
  return { sessions, devices, auditRows };
}
