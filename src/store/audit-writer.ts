// Writes audit entries (DESIGN §5): pass the transaction of the change being recorded, so the
// trail and the change commit or roll back together.
import type { Transaction } from "sequelize";
import type { AuditEntry } from "../domain/audit.js";
import type { Models } from "./models/index.js";

function row(entry: AuditEntry) {
  return {
    userId: entry.userId,
    actorId: entry.actorId ?? null,
    action: entry.action,
    entityType: entry.entityType,
    entityId: entry.entityId ?? null,
    oldValues: entry.oldValues ?? null,
    newValues: entry.newValues ?? null,
    ipAddress: entry.ipAddress ?? null,
    userAgent: entry.userAgent ?? null,
    sessionId: entry.sessionId ?? null,
  };
}

/** Inserts one row per entry, all in one INSERT statement. */
export async function writeAudit(models: Pick<Models, "UserAuditLog">, entry: AuditEntry | readonly AuditEntry[], transaction?: Transaction): Promise<void> {
  const entries: readonly AuditEntry[] = Array.isArray(entry) ? entry : [entry as AuditEntry];
  if (entries.length === 0) return;
  await models.UserAuditLog.bulkCreate(entries.map(row), { transaction, returning: false });
}
