// The transactional outbox (README.jobs.md, "Webhook sync"): a user change that external
// services must hear about records a row here in the transaction of the change, so the
// notification commits or rolls back with it. sync-user-data-with-external-services turns
// the rows into signed webhook deliveries of the user's current snapshot; several changes of
// one user between two runs become one delivery.
import type { Transaction } from "sequelize";
import type { Models } from "../store/models/index.js";

/**
 * Records that `userId` (or each of several users) changed, inside the caller's transaction
 * (required: without it the row could commit while the change rolls back, or the reverse).
 * `reason` is a short tag such as "user.registered", "profile.updated", "kyc.reviewed",
 * "device.registered", "user.deactivated"; receivers get the set of reasons with the snapshot.
 */
export async function recordUserChange(models: Pick<Models, "OutboxEvent">, transaction: Transaction, userId: string | readonly string[], reason: string): Promise<void> {
  const ids: readonly string[] = typeof userId === "string" ? [userId] : userId;
  if (ids.length) await models.OutboxEvent.bulkCreate(ids.map((id) => ({ userId: id, reason })), { transaction, returning: false });
}
