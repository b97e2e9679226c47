// Every job the worker defines and `npm run job` can run, in one list.
import { cleanupExpiredAuditLogs } from "./cleanup-expired-audit-logs.js";
import type { JobSpec } from "./context.js";
import { createAuditLogPartitions } from "./create-audit-log-partitions.js";
import { deactivateInactiveUsers } from "./deactivate-inactive-users.js";
import { generateUserAnalyticsReport } from "./generate-user-analytics-report.js";
import { purgeDeletedAccounts } from "./purge-deleted-accounts.js";
import { sendKycVerificationReminder } from "./send-kyc-verification-reminder.js";
import { sendProfileCompletionReminder } from "./send-profile-completion-reminder.js";
import { syncUserDataWithExternalServices } from "./sync-user-data-with-external-services.js";
import { updateUserLastActivity } from "./update-user-last-activity.js";

export const JOBS: readonly JobSpec[] = [
  cleanupExpiredAuditLogs,
  createAuditLogPartitions,
  deactivateInactiveUsers,
  updateUserLastActivity,
  sendProfileCompletionReminder,
  sendKycVerificationReminder,
  generateUserAnalyticsReport,
  syncUserDataWithExternalServices,
  purgeDeletedAccounts,
];

export function findJob(name: string): JobSpec | undefined {
  return JOBS.find((j) => j.name === name);
}
