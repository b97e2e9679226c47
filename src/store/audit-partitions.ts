// The monthly partitions of user_audit_logs (migration 0007): range partitions on created_at,
// one per UTC month, named user_audit_logs_yYYYYmMM, plus a DEFAULT partition that catches
// rows of a month without a partition — an audit write is part of sign-in and of every
// change, so a missing partition must never make them fail. The partition job
// (create-audit-log-partitions) creates the months ahead and moves any rows the DEFAULT
// partition caught into months of their own; the cleanup job drops whole expired months.
//
// Partition maintenance serialises on one transaction-scoped advisory lock, so two runs at
// once (two workers, the migration) never create the same month twice.
import { QueryTypes, type Sequelize, type Transaction } from "sequelize";

export const AUDIT_TABLE = "user_audit_logs";
export const AUDIT_DEFAULT_PARTITION = "user_audit_logs_default";
/** Months created ahead of the current one (the job runs daily: a missed week changes nothing). */
export const AUDIT_MONTHS_AHEAD = 3;

const LOCK = "SELECT pg_advisory_xact_lock(hashtext('user_audit_logs partitions'))";

/** A month partition: its table name and bounds (ISO timestamps, UTC). */
export interface AuditPartition {
  name: string;
  from: string;
  to: string;
}

const rows = <T extends object>(sequelize: Sequelize, sql: string, bind: unknown[], transaction: Transaction) =>
  sequelize.query<T>(sql, { bind, type: QueryTypes.SELECT, transaction });

/** The month partition holding `month` (any instant of it, UTC). */
export function monthPartition(month: Date): AuditPartition {
  const y = month.getUTCFullYear();
  const m = month.getUTCMonth();
  const from = new Date(Date.UTC(y, m, 1));
  const to = new Date(Date.UTC(y, m + 1, 1));
  return { name: `${AUDIT_TABLE}_y${y}m${String(m + 1).padStart(2, "0")}`, from: from.toISOString(), to: to.toISOString() };
}

/** The month partitions attached now, with their bounds, oldest first (DEFAULT excluded). */
export async function listAuditPartitions(sequelize: Sequelize, transaction: Transaction): Promise<AuditPartition[]> {
  const found = await rows<{ name: string; from: Date; to: Date }>(
    sequelize,
    `SELECT name, b[1]::timestamptz AS "from", b[2]::timestamptz AS "to" FROM (
       SELECT c.relname AS name, regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)') AS b
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = $1::regclass
     ) p WHERE b IS NOT NULL ORDER BY 2`,
    [AUDIT_TABLE],
    transaction,
  );
  return found.map((p) => ({ name: p.name, from: p.from.toISOString(), to: p.to.toISOString() }));
}

/**
 * Creates the month partitions missing among `months` (any instant of each), and moves into
 * each the rows the DEFAULT partition holds for its month (PostgreSQL refuses to attach a
 * range the DEFAULT partition has rows in). Returns the names created. Runs in `transaction`.
 */
export async function createAuditPartitions(sequelize: Sequelize, transaction: Transaction, months: readonly Date[]): Promise<string[]> {
  await sequelize.query(LOCK, { transaction });
  const existing = new Set((await listAuditPartitions(sequelize, transaction)).map((p) => p.name));
  const wanted = new Map(months.map((m) => monthPartition(m)).map((p) => [p.name, p]));
  const created: string[] = [];
  for (const p of [...wanted.values()].sort((a, b) => a.from.localeCompare(b.from))) {
    if (existing.has(p.name)) continue;
    // Built detached then attached: the rows move in while nothing else can see the table.
    // ATTACH takes SHARE UPDATE EXCLUSIVE on the parent (writes go on) and builds the
    // partition's indexes and primary key from the parent's.
    await sequelize.query(`CREATE TABLE ${p.name} (LIKE ${AUDIT_TABLE} INCLUDING DEFAULTS)`, { transaction });
    await sequelize.query(
      `WITH moved AS (DELETE FROM ${AUDIT_DEFAULT_PARTITION} WHERE created_at >= $1 AND created_at < $2 RETURNING *) INSERT INTO ${p.name} SELECT * FROM moved`,
      { bind: [p.from, p.to], transaction },
    );
    await sequelize.query(`ALTER TABLE ${AUDIT_TABLE} ATTACH PARTITION ${p.name} FOR VALUES FROM ('${p.from}') TO ('${p.to}')`, { transaction });
    created.push(p.name);
  }
  return created;
}

/** The months the partition job keeps: the current one and `ahead` more, and every month the DEFAULT partition has rows in. */
export async function monthsToCover(sequelize: Sequelize, transaction: Transaction, ahead = AUDIT_MONTHS_AHEAD): Promise<Date[]> {
  const found = await rows<{ month: Date }>(
    sequelize,
    `SELECT generate_series(date_trunc('month', now() AT TIME ZONE 'UTC'), date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => $1), interval '1 month') AT TIME ZONE 'UTC' AS month
     UNION
     SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' FROM ${AUDIT_DEFAULT_PARTITION}`,
    [ahead],
    transaction,
  );
  return found.map((r) => r.month);
}

/** SQLSTATE lock_not_available: lock_timeout ran out. */
const LOCK_NOT_AVAILABLE = "55P03";

/**
 * Detaches and drops one month partition: "dropped", "gone" when it was not attached (dropped
 * already), "busy" when the table's lock could not be had within a second.
 */
export async function dropAuditPartition(sequelize: Sequelize, name: string): Promise<"dropped" | "gone" | "busy"> {
  try {
    return await sequelize.transaction(async (transaction) => {
      // DETACH and DROP take ACCESS EXCLUSIVE on the parent for a moment; waiting behind a long
      // query would queue every audit write (sign-in, every change) behind it, so give up
      // after a second instead (the next run retries).
      await sequelize.query("SET LOCAL lock_timeout = '1s'", { transaction });
      await sequelize.query(LOCK, { transaction });
      if (!(await listAuditPartitions(sequelize, transaction)).some((p) => p.name === name)) return "gone";
      await sequelize.query(`ALTER TABLE ${AUDIT_TABLE} DETACH PARTITION ${name}`, { transaction });
      await sequelize.query(`DROP TABLE ${name}`, { transaction });
      return "dropped";
    });
  } catch (err) {
    if ((err as { parent?: { code?: string } }).parent?.code === LOCK_NOT_AVAILABLE) return "busy";
    throw err;
  }
}
