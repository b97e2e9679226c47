// The hot paths' SQL as named prepared statements, sent with `pg` on the connections of
// Sequelize's pool. PostgreSQL then parses and plans each statement once per connection
// instead of on every call: with pgbench on the bench machine, the refresh's two statements
// ran at 2,660 per second unprepared and 6,800 prepared. It also skips Sequelize's query
// machinery (formatting, instance building), which the profiles showed on every hot path.
//
// A statement's name is derived from its text, so one text is one prepared statement; texts
// must therefore have a fixed shape (arrays as one `= ANY($1::uuid[])` parameter, not as
// lists of placeholders whose count varies).
//
// Behind a transaction pooler (PgBouncer before 1.21 tracks no named statements) a statement
// prepared on one server connection is missing, or already there, on the next transaction's:
// on a Sequelize instance opened with `databasePreparedStatements: false` (database.ts) the same
// SQL goes unnamed (parsed and planned on every call, in the same round trip). The choice is
// made here alone.
import { createHash } from "node:crypto";
import type pg from "pg";
import type { Sequelize, Transaction } from "sequelize";

interface PoolAccess {
  getConnection(options: { type: "read" | "write" }): Promise<pg.Client>;
  releaseConnection(connection: pg.Client): Promise<void>;
}

const names = new Map<string, string>();
/** Sequelize instances whose queries go unnamed (DATABASE_PREPARED_STATEMENTS off). */
const unnamed = new WeakSet<Sequelize>();

/** Whether queryPrepared names its statements on `sequelize`'s connections (default: yes). */
export function usePreparedStatements(sequelize: Sequelize, on: boolean): void {
  if (on) unnamed.delete(sequelize);
  else unnamed.add(sequelize);
}

function nameOf(text: string): string {
  let name = names.get(text);
  if (!name) {
    name = `id_${createHash("sha256").update(text).digest("base64url").slice(0, 22)}`;
    names.set(text, name);
  }
  return name;
}

/**
 * Runs `text` with positional parameters `values` as a prepared statement (unless turned off
 * for `sequelize`, see usePreparedStatements), inside
 * `transaction` (on its connection) or on a pooled connection of its own, and returns the rows.
 * Errors are pg's (a `code` of PostgreSQL's SQLSTATE), not Sequelize's.
 */
export async function queryPrepared<T extends pg.QueryResultRow>(sequelize: Sequelize, text: string, values: readonly unknown[], transaction?: Transaction): Promise<T[]> {
  const query: pg.QueryConfig = unnamed.has(sequelize) ? { text, values: values as unknown[] } : { name: nameOf(text), text, values: values as unknown[] };
  const own = (transaction as unknown as { connection?: pg.Client } | undefined)?.connection;
  if (own) return (await own.query<T>(query)).rows;
  const pool = sequelize.connectionManager as unknown as PoolAccess;
  const connection = await pool.getConnection({ type: "write" });
  try {
    return (await connection.query<T>(query)).rows;
  } finally {
    await pool.releaseConnection(connection);
  }
}
