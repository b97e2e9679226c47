// update-user-last-activity (every minute): writes the activity queued in Redis by the auth
// path (src/domain/activity.ts) to users.last_activity_at, JOB_BATCH_SIZE users per UPDATE.
// Entries leave the queue only after their batch is written (at least once; rewriting is
// harmless), and a row only ever moves forward: the WHERE keeps the later of the stored and
// the queued time (GREATEST semantics, without writing rows that would not change), so a
// late or repeated batch never moves last_activity_at backwards.
import { openActivityQueue } from "../domain/activity.js";
import { inBatches, select, type JobSpec } from "./context.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const RECORD_BATCH = `
WITH moved AS (
  UPDATE users u SET last_activity_at = v.at
  FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, at)
  WHERE u.id = v.id AND (u.last_activity_at IS NULL OR u.last_activity_at < v.at)
  RETURNING 1
) SELECT count(*)::int AS updated FROM moved`;

export const updateUserLastActivity: JobSpec = {
  name: "update-user-last-activity",
  every: "1 minute",
  async run(ctx) {
    const queue = openActivityQueue(ctx.redis);
    let updated = 0;
    const run = await inBatches(ctx, async (size) => {
      const entries = await queue.peek(size);
      // Anything that is not a user id (never written by touch()) would fail the whole batch's cast.
      const valid = entries.filter((e) => UUID.test(e.userId));
      if (valid.length) {
        const [row] = await select<{ updated: number }>(ctx, RECORD_BATCH, [valid.map((e) => e.userId), valid.map((e) => e.at)]);
        updated += row!.updated;
      }
      await queue.remove(entries);
      return entries.length;
    });
    return { drained: run.items, updated, batches: run.batches, complete: run.complete };
  },
};
