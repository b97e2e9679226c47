// What the two reminder jobs share (README.jobs.md, "Reminders").
//
// Channel: a push to every active device of the user that has an FCM token (when FCM is
// configured); if none was accepted, an e-mail when the user has an address; otherwise
// nothing (no SMS: reminders are not worth a paid text message, and the log would only show
// them in development). A device whose token FCM reports as unregistered is deactivated, with
// an audit row.
//
// "Never twice within 7 days" is enforced in the database, not by the candidate query: each
// send first claims a notification_log row, in a transaction that holds an advisory lock on
// (kind, user) and inserts only if no row of that kind is younger than 7 days. Two runs at
// once cannot both claim. The claim is made before sending, so a crash mid-send skips that
// reminder rather than repeating it; a send that fails (or finds no channel) gives the claim
// back, and a later run tries again.
//
// Reminders stop REMINDER_WINDOW_DAYS after the event that started them (registration,
// rejection): at most three per episode with the 7-day spacing.
import { writeAudit } from "../store/audit-writer.js";
import { recordUserChange } from "../domain/outbox.js";
import type { PushMessage } from "../notify/push.js";
import { inBatches, jobActor, select, type JobContext, type JobSummary } from "./context.js";
import type { JobName } from "./names.js";

export const REMINDER_REPEAT_DAYS = 7;
export const REMINDER_WINDOW_DAYS = 21;

export interface Candidate {
  id: string;
  email: string | null;
  /** Which wording applies (e.g. KYC "rejected" vs "not_submitted"). */
  variant: string;
}

export interface ReminderKind {
  job: JobName;
  /** notification_log.kind */
  kind: string;
  /**
   * Candidates after user id $1, at most $2, ordered by id. $3 is the kind; the query must
   * exclude users with a notification_log row of kind $3 sent within REMINDER_REPEAT_DAYS.
   */
  candidatesSql: string;
  message(variant: string): PushMessage;
}

/** The NOT EXISTS clause every candidate query carries, for the alias of the user id column. */
export const notRecentlyReminded = (userIdColumn: string) =>
  `NOT EXISTS (SELECT 1 FROM notification_log n WHERE n.user_id = ${userIdColumn} AND n.kind = $3 AND n.sent_at > now() - interval '${REMINDER_REPEAT_DAYS} days')`;

const CLAIM = `
INSERT INTO notification_log (user_id, kind, channel)
SELECT $1::uuid, $2::text, 'sending'
WHERE NOT EXISTS (
  SELECT 1 FROM notification_log WHERE user_id = $1::uuid AND kind = $2::text AND sent_at > now() - interval '${REMINDER_REPEAT_DAYS} days'
)
RETURNING id`;

type Outcome = "push" | "email" | "none";

interface Tally {
  pushed: number;
  emailed: number;
  noChannel: number;
  failed: number;
  alreadySent: number;
  devicesDeactivated: number;
}

async function claim(ctx: JobContext, userId: string, kind: string): Promise<string | undefined> {
  return ctx.sequelize.transaction(async (transaction) => {
    // Held until commit: a concurrent claim of the same (kind, user) waits, then sees this row.
    await select(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`reminder:${kind}:${userId}`], transaction);
    const [row] = await select<{ id: string }>(ctx, CLAIM, [userId, kind], transaction);
    return row?.id;
  });
}

async function deactivateDevice(ctx: JobContext, job: JobName, userId: string, device: { id: string; device_id: string; fcm_token: string }): Promise<boolean> {
  return ctx.sequelize.transaction(async (transaction) => {
    // Only if the token is still this device's: the app may have sent a fresh one meanwhile.
    const rows = await select(ctx, "UPDATE user_devices SET is_active = false, updated_at = now() WHERE id = $1 AND fcm_token = $2 AND is_active RETURNING id", [device.id, device.fcm_token], transaction);
    if (!rows.length) return false;
    await writeAudit(
      ctx.models,
      { userId, actorId: jobActor(job), action: "device.deactivated", entityType: "device", entityId: device.device_id, oldValues: { is_active: true }, newValues: { is_active: false, reason: "fcm_unregistered" } },
      transaction,
    );
    await recordUserChange(ctx.models, transaction, userId, "device.deactivated");
    return true;
  });
}

async function deliver(ctx: JobContext, reminder: ReminderKind, user: Candidate, tally: Tally): Promise<Outcome> {
  const message = reminder.message(user.variant);
  if (ctx.push) {
    const devices = await select<{ id: string; device_id: string; fcm_token: string }>(
      ctx,
      "SELECT id, device_id, fcm_token FROM user_devices WHERE user_id = $1 AND is_active AND fcm_token IS NOT NULL ORDER BY last_used DESC",
      [user.id],
    );
    let accepted = 0;
    for (const device of devices) {
      try {
        if ((await ctx.push.send(device.fcm_token, { ...message, data: { kind: reminder.kind } })) === "sent") accepted += 1;
        else if (await deactivateDevice(ctx, reminder.job, user.id, device)) tally.devicesDeactivated += 1;
      } catch (err) {
        ctx.logger.warn({ err, userId: user.id, deviceId: device.device_id }, "push failed");
      }
    }
    if (accepted) return "push";
  }
  if (user.email) {
    await ctx.notifier.sendMessage({ channel: "email", to: user.email, subject: message.title, text: message.body });
    return "email";
  }
  return "none";
}

async function remind(ctx: JobContext, reminder: ReminderKind, user: Candidate, tally: Tally): Promise<void> {
  const claimId = await claim(ctx, user.id, reminder.kind);
  if (!claimId) {
    tally.alreadySent += 1;
    return;
  }
  let outcome: Outcome;
  try {
    outcome = await deliver(ctx, reminder, user, tally);
  } catch (err) {
    ctx.logger.warn({ err, userId: user.id }, "reminder not delivered");
    await select(ctx, "DELETE FROM notification_log WHERE id = $1 RETURNING id", [claimId]);
    tally.failed += 1;
    return;
  }
  if (outcome === "none") {
    await select(ctx, "DELETE FROM notification_log WHERE id = $1 RETURNING id", [claimId]);
    tally.noChannel += 1;
    return;
  }
  await select(ctx, "UPDATE notification_log SET channel = $2, sent_at = now() WHERE id = $1 RETURNING id", [claimId, outcome]);
  if (outcome === "push") tally.pushed += 1;
  else tally.emailed += 1;
}

/** Runs one reminder kind over all its candidates, in batches of users (keyset on id). */
export async function sendReminders(ctx: JobContext, reminder: ReminderKind): Promise<JobSummary> {
  const tally: Tally = { pushed: 0, emailed: 0, noChannel: 0, failed: 0, alreadySent: 0, devicesDeactivated: 0 };
  let after = "00000000-0000-0000-0000-000000000000";
  const run = await inBatches(ctx, async (size) => {
    const users = await select<Candidate>(ctx, reminder.candidatesSql, [after, size, reminder.kind]);
    for (const user of users) await remind(ctx, reminder, user, tally);
    if (users.length) after = users[users.length - 1]!.id;
    return users.length;
  });
  return { candidates: run.items, ...tally, batches: run.batches, complete: run.complete };
}
