// DeleteAccount and its undo (DESIGN §10). A request, proven by a DELETE_ACCOUNT verification
// token bound to the caller, takes effect at once in one transaction: the account is disabled
// (users.is_active false, deletion_requested_at and deletion_scheduled_for set), every session
// ends, every device is deactivated, audit row account.deletion_requested, outbox row. The
// person is erased ACCOUNT_DELETION_GRACE_DAYS later by purge-deleted-accounts
// (account-erasure.ts), or in the same transaction with a grace of 0.
//
// Until then, Login with a valid verification token restores the account (restore below):
// only an account whose deletion is pending and not yet due, and that nobody deactivated since
// its request (deactivated_at = deletion_requested_at) — an account staff or the inactivity job
// deactivated, before or during the grace, stays refused.
import type { Sequelize } from "sequelize";
import { queryPrepared, runTransaction, writeAudit, type Models } from "../store/index.js";
import { eraseAccount } from "./account-erasure.js";
import { audited } from "./audit.js";
import type { Caller, Principal } from "./caller.js";
import { failedPrecondition, invalid, unauthenticated } from "./errors.js";
import type { OtpService } from "./otp.js";
import { recordUserChange } from "./outbox.js";
import { endUserSessions } from "./sessions.js";

export interface AccountDeletionDeps {
  sequelize: Sequelize;
  models: Models;
  otp: OtpService;
  /** ACCOUNT_DELETION_GRACE_DAYS in seconds; 0 erases in the DeleteAccount call. */
  graceSeconds: number;
}

export interface DeletionRequested {
  /** When the account is (or, with a grace of 0, was) erased. */
  scheduledFor: Date;
  erased: boolean;
}

export interface AccountDeletion {
  request(caller: Caller & { principal: Principal }, verificationToken: string): Promise<DeletionRequested>;
  /**
   * For Login: lifts the pending deletion of `userId` if its grace period is still running,
   * with audit row account.restored; false when there is none to lift (staff deactivation,
   * grace over, erased).
   */
  restore(caller: Caller, userId: string): Promise<boolean>;
}

export function createAccountDeletion({ sequelize, models, otp, graceSeconds }: AccountDeletionDeps): AccountDeletion {
  return {
    async request(caller, verificationToken) {
      if (!verificationToken) throw invalid([{ field: "verification_token", description: "required" }]);
      const userId = caller.principal.subject;
      // Judged before anything changes; used up only once the deletion commits.
      const proven = await otp.peekVerificationToken(verificationToken, "DELETE_ACCOUNT", userId);
      // The sessions end in the transaction: every instance refuses their tokens at once (the
      // session check reads the database on every call).
      return runTransaction(sequelize, caller.signal, async (t) => {
        const user = await models.User.findByPk(userId, { transaction: t, lock: t.LOCK.UPDATE });
        if (!user || user.erasedAt) throw unauthenticated("Session has ended");
        if (user.deletionScheduledFor) throw failedPrecondition("The deletion of this account was already requested");
        if (!user.isActive) throw unauthenticated("Session has ended");
        // The proof must still be of an identifier of the account (it may have changed since).
        if (proven.identifier !== (proven.kind === "email" ? user.email : user.phoneNumber)) throw unauthenticated("invalid or expired verification token");

        const now = new Date();
        const scheduledFor = new Date(now.getTime() + graceSeconds * 1000);
        await user.update({ isActive: false, deactivatedAt: now, deletionRequestedAt: now, deletionScheduledFor: scheduledFor }, { transaction: t });
        const sessions = await endUserSessions(sequelize, t, userId, "account_deleted");
        const devices = await queryPrepared<{ id: string }>(
          sequelize,
          "UPDATE user_devices SET is_active = false, updated_at = now() WHERE user_id = $1 AND is_active RETURNING id",
          [userId],
          t,
        );
        await writeAudit(
          models,
          audited(caller, {
            userId,
            action: "account.deletion_requested",
            entityType: "user",
            entityId: userId,
            oldValues: { is_active: true },
            newValues: { is_active: false, deletion_scheduled_for: scheduledFor.toISOString(), sessions_ended: sessions.length, devices_deactivated: devices.length },
          }),
          t,
        );
        await recordUserChange(models, t, userId, "account.deletion_requested");
        await otp.consumeVerificationToken(verificationToken, "DELETE_ACCOUNT", userId);
        const erased = graceSeconds === 0 && (await eraseAccount(sequelize, models, t, userId, { actorId: null, onlyWhenDue: false })) !== undefined;
        return { scheduledFor, erased };
      });
    },

    async restore(caller, userId) {
      return runTransaction(sequelize, caller.signal, async (t) => {
        const rows = await queryPrepared<{ id: string }>(
          sequelize,
          `UPDATE users SET is_active = true, deactivated_at = NULL, deletion_requested_at = NULL, deletion_scheduled_for = NULL, updated_at = now()
            WHERE id = $1 AND NOT is_active AND erased_at IS NULL AND deletion_scheduled_for > now() AND deactivated_at = deletion_requested_at RETURNING id`,
          [userId],
          t,
        );
        if (!rows.length) return false;
        await writeAudit(models, audited(caller, { userId, action: "account.restored", entityType: "user", entityId: userId, oldValues: { is_active: false }, newValues: { is_active: true } }), t);
        await recordUserChange(models, t, userId, "account.restored");
        return true;
      });
    },
  };
}
