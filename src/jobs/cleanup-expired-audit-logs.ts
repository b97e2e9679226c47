// cleanup-expired-audit-logs (daily): drops the monthly partitions of user_audit_logs whose
// whole month is older than AUDIT_RETENTION_DAYS (365) — DETACH then DROP, one partition per
// transaction, instead of deleting rows (no row-by-row WAL, no bloat, no vacuum); a partition
// whose lock is not had within a second (a long query on the table) is left for the next
// run ("busy"), so that writers never queue behind the drop for longer. A month
// that straddles the cut-off is kept whole until its last day has expired: rows live at
// least the retention and at most one month more. Rows the DEFAULT partition holds (a month
// without a partition) are still deleted row by row past the cut-off, oldest first,
// JOB_BATCH_SIZE per statement (normally there are none: the partition job moves them out).
// The cut-off is fixed when the run starts. SKIP LOCKED: two runs at once delete disjoint rows.
import { AUDIT_DEFAULT_PARTITION, dropAuditPartition, listAuditPartitions } from "../store/audit-partitions.js";
import { inBatches, JobInterrupted, select, type JobSpec } from "./context.js";

const DELETE_BATCH = `
WITH doomed AS (
  SELECT id, created_at FROM ${AUDIT_DEFAULT_PARTITION}
  WHERE created_at < $1
  ORDER BY created_at
  LIMIT $2
  FOR UPDATE SKIP LOCKED
), gone AS (
  DELETE FROM ${AUDIT_DEFAULT_PARTITION} a USING doomed WHERE a.id = doomed.id AND a.created_at = doomed.created_at RETURNING 1
)
SELECT count(*)::int AS deleted FROM gone`;

export const cleanupExpiredAuditLogs: JobSpec = {
  name: "cleanup-expired-audit-logs",
  every: "15 3 * * *",
  async run(ctx) {
    const [{ cutoff }] = await select<{ cutoff: Date }>(ctx, "SELECT now() - make_interval(days => $1) AS cutoff", [ctx.config.auditRetentionDays]);
    const expired = (await ctx.sequelize.transaction((t) => listAuditPartitions(ctx.sequelize, t))).filter((p) => new Date(p.to) <= cutoff);
    const dropped: string[] = [];
    let busy = 0;
    for (const p of expired) {
      if (ctx.signal.aborted) throw new JobInterrupted();
      const outcome = await dropAuditPartition(ctx.sequelize, p.name);
      if (outcome === "dropped") dropped.push(p.name);
      if (outcome === "busy") busy += 1;
    }
    const run = await inBatches(ctx, async (size) => {
      const [{ deleted }] = await select<{ deleted: number }>(ctx, DELETE_BATCH, [cutoff, size]);
      return deleted;
    });
    return { droppedPartitions: dropped.length, dropped: dropped.join(","), busy, deleted: run.items, batches: run.batches, complete: run.complete && busy === 0, cutoff: cutoff.toISOString() };
  },
};
