// create-audit-log-partitions (daily): creates the monthly partitions of user_audit_logs for
// the current month and AUDIT_MONTHS_AHEAD (3) more, and moves any rows the DEFAULT partition
// caught (a month nobody created in time) into partitions of their own, so that the cleanup
// can drop them by month too. Idempotent: months that exist are left alone; concurrent runs
// serialise on an advisory lock (src/store/audit-partitions.ts). Migration 0007 creates the
// first ones, so a fresh install has them before any worker runs.
import { createAuditPartitions, monthsToCover } from "../store/audit-partitions.js";
import type { JobSpec } from "./context.js";

export const createAuditLogPartitions: JobSpec = {
  name: "create-audit-log-partitions",
  every: "5 0 * * *",
  async run(ctx) {
    const created = await ctx.sequelize.transaction(async (transaction) => createAuditPartitions(ctx.sequelize, transaction, await monthsToCover(ctx.sequelize, transaction)));
    return { created: created.length, partitions: created.join(",") };
  },
};
