// send-profile-completion-reminder (hourly): users registered at least 24 hours ago (and at
// most REMINDER_WINDOW_DAYS) whose profile is incomplete get a reminder — push, else e-mail —
// never twice within 7 days (see reminders.ts). Active, non-staff users only.
import type { JobSpec } from "./context.js";
import { notRecentlyReminded, REMINDER_WINDOW_DAYS, sendReminders, type ReminderKind } from "./reminders.js";

const reminder: ReminderKind = {
  job: "send-profile-completion-reminder",
  kind: "profile_completion",
  candidatesSql: `
SELECT u.id, u.email, 'incomplete' AS variant
FROM users u
LEFT JOIN user_profiles p ON p.user_id = u.id
WHERE u.id > $1
  AND u.date_joined <= now() - interval '24 hours'
  AND u.date_joined > now() - interval '${REMINDER_WINDOW_DAYS} days'
  AND u.is_active AND NOT u.is_staff
  AND NOT COALESCE(p.is_profile_complete, false)
  AND ${notRecentlyReminded("u.id")}
ORDER BY u.id
LIMIT $2`,
  message: () => ({
    title: "Complete your profile",
    body: "Add your name, date of birth and address to finish setting up your account.",
  }),
};

export const sendProfileCompletionReminder: JobSpec = {
  name: reminder.job,
  every: "5 * * * *",
  run: (ctx) => sendReminders(ctx, reminder),
};
