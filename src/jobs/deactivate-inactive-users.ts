// deactivate-inactive-users (daily): users with no sign of life for INACTIVE_USER_DAYS (180)
// become inactive; their sessions end (revoked_reason "inactive"), their devices are
// deactivated, and each gets an audit row "user.deactivated" (actor
// "job:deactivate-inactive-users") and an outbox row — all in one transaction per batch.
//
// Sign of life: the latest of last_login and last_activity_at, or date_joined for a user who
// never did either. Activity counts because refresh tokens slide: an app in daily use may not
// log in again for months, and must not be locked out for it.
//
// Staff accounts are never deactivated by the job: locking out the people who administer the
// service (possibly all of them at once) is a decision for a person.
//
// Idempotent: only active users match, and the rows are locked (SKIP LOCKED) before they
// change, so a second run — even a concurrent one — finds nothing to do twice.
import { writeAudit } from "../store/audit-writer.js";
import { recordUserChange } from "../domain/outbox.js";
import { inBatches, jobActor, select, type JobSpec } from "./context.js";

const NAME = "deactivate-inactive-users";

const DEACTIVATE_BATCH = `
WITH picked AS (
  SELECT id FROM users
  WHERE is_active AND NOT is_staff AND COALESCE(GREATEST(last_login, last_activity_at), date_joined) < $1
  ORDER BY COALESCE(GREATEST(last_login, last_activity_at), date_joined), id
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)
UPDATE users u SET is_active = false, deactivated_at = now(), updated_at = now()
FROM picked WHERE u.id = picked.id
RETURNING u.id, u.last_login, u.last_activity_at, u.date_joined`;

interface Deactivated {
  id: string;
  last_login: Date | null;
  last_activity_at: Date | null;
  date_joined: Date;
}

export const deactivateInactiveUsers: JobSpec = {
  name: NAME,
  every: "45 3 * * *",
  async run(ctx) {
    const { sequelize, models, config } = ctx;
    const [{ cutoff }] = await select<{ cutoff: Date }>(ctx, "SELECT now() - make_interval(days => $1) AS cutoff", [config.inactiveUserDays]);
    let sessions = 0;
    let devices = 0;
    const run = await inBatches(ctx, (size) =>
      sequelize.transaction(async (transaction) => {
        const users = await select<Deactivated>(ctx, DEACTIVATE_BATCH, [cutoff, size], transaction);
        if (!users.length) return 0;
        const ids = users.map((u) => u.id);
        const [ended] = await select<{ n: number }>(
          ctx,
          `WITH ended AS (
             UPDATE sessions SET revoked_at = now(), revoked_reason = 'inactive'
             WHERE user_id = ANY($1::uuid[]) AND revoked_at IS NULL RETURNING 1
           ) SELECT count(*)::int AS n FROM ended`,
          [ids],
          transaction,
        );
        const [off] = await select<{ n: number }>(
          ctx,
          `WITH off AS (
             UPDATE user_devices SET is_active = false, updated_at = now()
             WHERE user_id = ANY($1::uuid[]) AND is_active RETURNING 1
           ) SELECT count(*)::int AS n FROM off`,
          [ids],
          transaction,
        );
        await writeAudit(
          models,
          users.map((u) => ({
            userId: u.id,
            actorId: jobActor(NAME),
            action: "user.deactivated",
            entityType: "user",
            entityId: u.id,
            oldValues: { is_active: true, last_login: u.last_login, last_activity_at: u.last_activity_at },
            newValues: { is_active: false, reason: "inactive", inactive_days: config.inactiveUserDays },
          })),
          transaction,
        );
        await recordUserChange(models, transaction, ids, "user.deactivated");
        sessions += ended!.n;
        devices += off!.n;
        return users.length;
      }),
    );
    return { deactivated: run.items, sessionsRevoked: sessions, devicesDeactivated: devices, batches: run.batches, complete: run.complete, cutoff: cutoff.toISOString() };
  },
};
