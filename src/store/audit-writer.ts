// Writes audit entries (DESIGN §5): pass the transaction of the change being recorded, so the
// trail and the change commit or roll back together. Plain parameterised SQL rather than
// model calls: audit rows are written on the hot paths (sign-in, refresh, every change), and
// Sequelize's bulkCreate costs several times the INSERT itself.
import { QueryTypes, type Sequelize, type Transaction } from "sequelize";
import type { AuditEntry } from "../domain/audit.js";
import type { Models } from "./models/index.js";

const COLUMNS = "user_id, actor_id, action, entity_type, entity_id, old_values, new_values, ip_address, user_agent, session_id, created_at";

const json = (value: Record<string, unknown> | null | undefined) => (value == null ? null : JSON.stringify(value));

/** The INSERT of `entries` as SQL text, its values appended to `bind` as positional parameters. */
function auditInsertSql(entries: readonly AuditEntry[], bind: unknown[]): string {
  const now = new Date();
  const rows = entries.map((e) => {
    const first = bind.length + 1;
    bind.push(e.userId, e.actorId ?? null, e.action, e.entityType, e.entityId ?? null, json(e.oldValues), json(e.newValues), e.ipAddress ?? null, e.userAgent ?? null, e.sessionId ?? null, now);
    const p = (i: number) => `$${first + i}`;
    return `(${p(0)}::uuid, ${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}::jsonb, ${p(6)}::jsonb, ${p(7)}, ${p(8)}, ${p(9)}::uuid, ${p(10)})`;
  });
  return `INSERT INTO user_audit_logs (${COLUMNS}) VALUES ${rows.join(", ")}`;
}

/** Inserts one row per entry, all in one INSERT statement. */
export async function writeAudit(models: Pick<Models, "UserAuditLog">, entry: AuditEntry | readonly AuditEntry[], transaction?: Transaction): Promise<void> {
  const entries: readonly AuditEntry[] = Array.isArray(entry) ? entry : [entry as AuditEntry];
  if (entries.length === 0) return;
  const bind: unknown[] = [];
  await models.UserAuditLog.sequelize!.query(auditInsertSql(entries, bind), { bind, transaction, type: QueryTypes.INSERT });
}

/**
 * A change (one INSERT, UPDATE or DELETE statement whose parameters are `bind`) and the audit
 * rows that record it, sent as one statement — `WITH change AS (<change>) INSERT INTO
 * user_audit_logs …` — so both take one round trip and commit or roll back together.
 */
export async function writeChangeWithAudit(sequelize: Sequelize, transaction: Transaction | undefined, change: string, bind: readonly unknown[], entries: readonly AuditEntry[]): Promise<void> {
  const params = [...bind];
  await sequelize.query(`WITH change AS (${change}) ${auditInsertSql(entries, params)}`, { bind: params, transaction, type: QueryTypes.INSERT });
}
