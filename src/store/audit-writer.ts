// Writes audit entries (DESIGN §5): pass the transaction of the change being recorded, so the
// trail and the change commit or roll back together. Prepared statements (prepared.ts) rather
// than model calls: audit rows are written on the hot paths (sign-in, refresh, every change),
// and Sequelize's bulkCreate costs several times the INSERT itself.
import type { Sequelize, Transaction } from "sequelize";
import type { AuditEntry } from "../domain/audit.js";
import type { Models } from "./models/index.js";
import { queryPrepared } from "./prepared.js";

const COLUMNS = "user_id, actor_id, action, entity_type, entity_id, old_values, new_values, ip_address, user_agent, session_id, created_at";
// The type of each column: rows travel as typed arrays through unnest() in a SELECT, where
// PostgreSQL cannot infer parameter types from the target table.
const CASTS = ["uuid", "text", "text", "text", "text", "jsonb", "jsonb", "text", "text", "uuid", "timestamptz"];

const json = (value: Record<string, unknown> | null | undefined) => (value == null ? null : JSON.stringify(value));

/** An entry's values in the order of COLUMNS. */
const rowOf = (e: AuditEntry, now: Date): unknown[] => [e.userId, e.actorId ?? null, e.action, e.entityType, e.entityId ?? null, json(e.oldValues), json(e.newValues), e.ipAddress ?? null, e.userAgent ?? null, e.sessionId ?? null, now];

/**
 * `entries` as a table `a` with the columns COLUMNS (and `audit_key` when `keys` are given, one
 * per entry), their values appended to `bind`: each column travels as one array parameter, so
 * the statement's text is the same whatever the number of rows (one prepared statement).
 */
function auditRows(entries: readonly AuditEntry[], bind: unknown[], keys?: readonly string[]): string {
  const first = bind.length + 1;
  const columns: unknown[][] = CASTS.map(() => []);
  const now = new Date();
  for (const e of entries) rowOf(e, now).forEach((value, i) => columns[i]!.push(value));
  bind.push(...columns);
  const arrays = CASTS.map((type, i) => `$${first + i}::${type}[]`);
  if (keys) {
    bind.push(keys);
    arrays.push(`$${bind.length}::uuid[]`);
  }
  return `unnest(${arrays.join(", ")}) AS a(${COLUMNS}${keys ? ", audit_key" : ""})`;
}

const insertAudit = (rows: string, where = "") => `INSERT INTO user_audit_logs (${COLUMNS}) SELECT ${COLUMNS} FROM ${rows}${where && ` WHERE ${where}`}`;

/** Rows per INSERT, so that one statement's arrays stay small. */
const ROWS_PER_INSERT = 1000;

/** Inserts one row per entry, in one INSERT statement per thousand rows. */
export async function writeAudit(models: Pick<Models, "UserAuditLog">, entry: AuditEntry | readonly AuditEntry[], transaction?: Transaction): Promise<void> {
  const entries: readonly AuditEntry[] = Array.isArray(entry) ? entry : [entry as AuditEntry];
  for (let first = 0; first < entries.length; first += ROWS_PER_INSERT) {
    const bind: unknown[] = [];
    const rows = auditRows(entries.slice(first, first + ROWS_PER_INSERT), bind);
    await queryPrepared(models.UserAuditLog.sequelize!, insertAudit(rows), bind, transaction);
  }
}

/** One INSERT, UPDATE or DELETE statement (no RETURNING clause; `$1`… refer to `bind`) and the audit rows that record it. */
export interface AuditedChange {
  sql: string;
  bind: readonly unknown[];
  audit: readonly AuditEntry[];
}

/**
 * Changes and the audit rows that record them, sent as one statement — `WITH c0 AS (<change>
 * RETURNING 1), …, audit AS (INSERT INTO user_audit_logs …) SELECT …` — so they take one round
 * trip and are applied atomically, inside `transaction` or on their own. The audit rows are
 * written only when every change touched a row (a guarded UPDATE that matched nothing records
 * nothing), and the answer says whether they did. The changes must not touch the same row
 * (PostgreSQL applies only one of two modifications of a row made in one statement).
 */
export async function writeChangesWithAudit(sequelize: Sequelize, transaction: Transaction | undefined, changes: readonly AuditedChange[]): Promise<boolean> {
  const bind: unknown[] = [];
  const ctes = changes.map((c, i) => {
    const offset = bind.length;
    bind.push(...c.bind);
    return `c${i} AS (${c.sql.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + offset}`)} RETURNING 1)`;
  });
  const applied = changes.map((_, i) => `EXISTS (SELECT 1 FROM c${i})`).join(" AND ");
  const entries = changes.flatMap((c) => c.audit);
  const audit = entries.length ? `, audit AS (${insertAudit(auditRows(entries, bind), applied)})` : "";
  const [row] = await queryPrepared<{ applied: boolean }>(sequelize, `WITH ${ctes.join(", ")}${audit} SELECT ${applied} AS applied`, bind, transaction);
  return row!.applied;
}

/** One change and its audit rows in one statement (see writeChangesWithAudit); true when the change touched a row. */
export function writeChangeWithAudit(sequelize: Sequelize, transaction: Transaction | undefined, change: string, bind: readonly unknown[], entries: readonly AuditEntry[]): Promise<boolean> {
  return writeChangesWithAudit(sequelize, transaction, [{ sql: change, bind, audit: entries }]);
}

/** A statement that changes many rows and names each row it changed, with the audit rows of each. */
export interface KeyedChange {
  /** An INSERT, UPDATE or DELETE ending in `RETURNING <uuid> AS key[, …]`, known as `c` to `also`; `$1`… refer to `bind`. */
  sql: string;
  /** Further changes that follow from it, in the same statement (e.g. `UPDATE … FROM c`). */
  also?: readonly string[];
  bind: readonly unknown[];
  /** Each audit row with the key of the row whose change it records. */
  audit: ReadonlyArray<{ key: string; entry: AuditEntry }>;
}

/**
 * One statement changing many rows (concurrent callers' changes batched together), and the
 * audit rows of those it changed: an audit row is written only when its key came back, in
 * the same statement. Answers the keys changed.
 */
export async function writeKeyedChangeWithAudit(sequelize: Sequelize, transaction: Transaction | undefined, change: KeyedChange): Promise<Set<string>> {
  const bind = [...change.bind];
  const rows = auditRows(
    change.audit.map((a) => a.entry),
    bind,
    change.audit.map((a) => a.key),
  );
  const also = (change.also ?? []).map((sql, i) => `, x${i} AS (${sql})`).join("");
  const sql = `WITH c AS (${change.sql})${also}, audit AS (${insertAudit(rows, "a.audit_key IN (SELECT key FROM c)")}) SELECT key FROM c`;
  const changed = await queryPrepared<{ key: string }>(sequelize, sql, bind, transaction);
  return new Set(changed.map((r) => r.key));
}
