// purge-deleted-accounts (hourly): erases the accounts whose deletion grace period is over
// (users.deletion_scheduled_for passed, DESIGN §10): see domain/account-erasure.ts for what is
// erased and what stays. Each account is erased in a transaction of its own; the candidates
// are read JOB_BATCH_SIZE at a time in id order past the last one seen, with the cut-off fixed
// when the run starts, so the run ends even when another run holds some of them (those are
// skipped, SKIP LOCKED, and the other run erases them). Running it twice erases nothing twice:
// the conditions are checked again under the account's lock.
import { eraseAccount } from "../domain/account-erasure.js";
import { inBatches, jobActor, select, type JobSpec } from "./context.js";

const DUE = `
SELECT id FROM users
WHERE deletion_scheduled_for <= $1 AND erased_at IS NULL AND id > $2
ORDER BY id
LIMIT $3`;

export const purgeDeletedAccounts: JobSpec = {
  name: "purge-deleted-accounts",
  every: "40 * * * *",
  async run(ctx) {
    const [{ cutoff }] = await select<{ cutoff: Date }>(ctx, "SELECT now() AS cutoff");
    const actorId = jobActor("purge-deleted-accounts");
    let after = "00000000-0000-0000-0000-000000000000";
    let erased = 0;
    const run = await inBatches(ctx, async (size) => {
      const due = await select<{ id: string }>(ctx, DUE, [cutoff, after, size]);
      for (const { id } of due) {
        const done = await ctx.sequelize.transaction((t) => eraseAccount(ctx.sequelize, ctx.models, t, id, { actorId, onlyWhenDue: true, skipLocked: true }));
        if (done) erased += 1;
        after = id;
      }
      return due.length;
    });
    if (erased) ctx.logger.info({ erased }, "erased deleted accounts");
    return { erased, seen: run.items, batches: run.batches, complete: run.complete, cutoff: cutoff.toISOString() };
  },
};
