// cleanup-expired-audit-logs (daily): deletes audit rows older than AUDIT_RETENTION_DAYS
// (365), oldest first, JOB_BATCH_SIZE rows per statement — never one table-wide DELETE,
// which would hold its locks and bloat the WAL for as long as it takes. The cut-off is fixed
// when the run starts, so rows that age meanwhile wait for tomorrow and the loop ends.
// SKIP LOCKED: two runs at once delete disjoint rows.
import { inBatches, select, type JobSpec } from "./context.js";

const DELETE_BATCH = `
WITH doomed AS (
  SELECT id FROM user_audit_logs
  WHERE created_at < $1
  ORDER BY created_at
  LIMIT $2
  FOR UPDATE SKIP LOCKED
), gone AS (
  DELETE FROM user_audit_logs a USING doomed WHERE a.id = doomed.id RETURNING 1
)
SELECT count(*)::int AS deleted FROM gone`;

export const cleanupExpiredAuditLogs: JobSpec = {
  name: "cleanup-expired-audit-logs",
  every: "15 3 * * *",
  async run(ctx) {
    const [{ cutoff }] = await select<{ cutoff: Date }>(ctx, "SELECT now() - make_interval(days => $1) AS cutoff", [ctx.config.auditRetentionDays]);
    const run = await inBatches(ctx, async (size) => {
      const [{ deleted }] = await select<{ deleted: number }>(ctx, DELETE_BATCH, [cutoff, size]);
      return deleted;
    });
    return { deleted: run.items, batches: run.batches, complete: run.complete, cutoff: cutoff.toISOString() };
  },
};
