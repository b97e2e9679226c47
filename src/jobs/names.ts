// The job names (DESIGN §6). Kept apart from the handlers so that the API side can enqueue
// without loading them.
export const JOB_NAMES = [
  "cleanup-expired-audit-logs",
  "create-audit-log-partitions",
  "deactivate-inactive-users",
  "update-user-last-activity",
  "send-profile-completion-reminder",
  "send-kyc-verification-reminder",
  "generate-user-analytics-report",
  "sync-user-data-with-external-services",
  "purge-deleted-accounts",
] as const;

export type JobName = (typeof JOB_NAMES)[number];

export function isJobName(name: string): name is JobName {
  return (JOB_NAMES as readonly string[]).includes(name);
}
