// send-kyc-verification-reminder (hourly): a reminder — push, else e-mail, never twice within
// 7 days (see reminders.ts) — to users registered at least 3 days ago who never submitted
// KYC, and to users whose submission was rejected (from the review on). PENDING and APPROVED
// records get none. Each case stops REMINDER_WINDOW_DAYS after registration or rejection.
// Active, non-staff users only.
import type { JobSpec } from "./context.js";
import { notRecentlyReminded, REMINDER_WINDOW_DAYS, sendReminders, type ReminderKind } from "./reminders.js";

const reminder: ReminderKind = {
  job: "send-kyc-verification-reminder",
  kind: "kyc_verification",
  candidatesSql: `
SELECT c.id, c.email, c.variant FROM (
  SELECT u.id, u.email, 'not_submitted' AS variant
  FROM users u
  LEFT JOIN user_kyc k ON k.user_id = u.id
  WHERE u.date_joined <= now() - interval '3 days'
    AND u.date_joined > now() - interval '${REMINDER_WINDOW_DAYS} days'
    AND COALESCE(k.status, 'NOT_SUBMITTED') = 'NOT_SUBMITTED'
    AND u.is_active AND NOT u.is_staff
  UNION ALL
  SELECT u.id, u.email, 'rejected'
  FROM user_kyc k
  JOIN users u ON u.id = k.user_id
  WHERE k.status = 'REJECTED'
    AND COALESCE(k.reviewed_at, k.updated_at) > now() - interval '${REMINDER_WINDOW_DAYS} days'
    AND u.is_active AND NOT u.is_staff
) c
WHERE c.id > $1 AND ${notRecentlyReminded("c.id")}
ORDER BY c.id
LIMIT $2`,
  message: (variant) =>
    variant === "rejected"
      ? { title: "Your identity check needs another look", body: "We could not verify the document you sent. Please submit it again from the app." }
      : { title: "Verify your identity", body: "Submit an identity document in the app to verify your account." },
};

export const sendKycVerificationReminder: JobSpec = {
  name: reminder.job,
  every: "10 * * * *",
  run: (ctx) => sendReminders(ctx, reminder),
};
