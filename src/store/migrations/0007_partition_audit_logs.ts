// user_audit_logs becomes a table partitioned by month on created_at (issue 18 §5): expired
// months are dropped whole instead of deleted row by row (src/store/audit-partitions.ts).
//
// The table is converted with its rows, in the migration's transaction: the old table is
// renamed aside, the partitioned table created with the same columns, one partition per month
// from the oldest row's to AUDIT_MONTHS_AHEAD months ahead (and the DEFAULT partition), the
// rows copied over with their ids, the indexes built once the rows are in (faster than
// maintaining them row by row), and the old table dropped. The id sequence is kept (handed
// from the old table to the new one), so ids go on where they were.
//
// A partitioned table's primary key must include the partition key: (id, created_at). No
// foreign key references the table, and it has none (0001). Writes to the table wait for the
// migration (it holds ACCESS EXCLUSIVE on it): plan it; timed in bench/RESULTS.md (Audit log cleanup).
import type { MigrationFn } from "umzug";
import { QueryTypes } from "sequelize";
import { AUDIT_MONTHS_AHEAD, createAuditPartitions } from "../audit-partitions.js";
import type { MigrationContext } from "./context.js";

const COLUMNS = `
    id bigint NOT NULL DEFAULT nextval('user_audit_logs_id_seq'::regclass),
    user_id uuid,
    actor_id text,
    action text NOT NULL,
    entity_type text NOT NULL,
    entity_id text,
    old_values jsonb,
    new_values jsonb,
    ip_address text,
    user_agent text,
    session_id uuid,
    created_at timestamptz NOT NULL DEFAULT now()`;
const NAMES = "id, user_id, actor_id, action, entity_type, entity_id, old_values, new_values, ip_address, user_agent, session_id, created_at";
const INDEXES = [
  "CREATE INDEX user_audit_logs_user_created_idx ON user_audit_logs (user_id, created_at)",
  "CREATE INDEX user_audit_logs_created_idx ON user_audit_logs (created_at)",
  // 0005's: a user's rows newest first by id (ListMyActivity, ListAuditLogs by user).
  "CREATE INDEX user_audit_logs_user_id_idx ON user_audit_logs (user_id, id)",
];

/** Renames the table and its indexes out of the way, and frees the sequence from it. */
const setAside = (to: string) => [
  "ALTER SEQUENCE user_audit_logs_id_seq OWNED BY NONE",
  `ALTER TABLE user_audit_logs RENAME TO ${to}`,
  `ALTER INDEX user_audit_logs_pkey RENAME TO ${to}_pkey`,
  `ALTER INDEX user_audit_logs_user_created_idx RENAME TO ${to}_user_created_idx`,
  `ALTER INDEX user_audit_logs_created_idx RENAME TO ${to}_created_idx`,
  `ALTER INDEX user_audit_logs_user_id_idx RENAME TO ${to}_user_id_idx`,
];

const isPartitioned = "SELECT relkind = 'p' AS partitioned FROM pg_class WHERE oid = 'user_audit_logs'::regclass";

export const up: MigrationFn<MigrationContext> = ({ context: { sequelize } }) =>
  sequelize.transaction(async (transaction) => {
    const q = (sql: string) => sequelize.query(sql, { transaction });
    const [state] = await sequelize.query<{ partitioned: boolean }>(isPartitioned, { type: QueryTypes.SELECT, transaction });
    if (state?.partitioned) return; // converted already (a crash before umzug recorded it)
    for (const sql of setAside("user_audit_logs_unpartitioned")) await q(sql);
    await q(`CREATE TABLE user_audit_logs (${COLUMNS}) PARTITION BY RANGE (created_at)`);
    await q("ALTER SEQUENCE user_audit_logs_id_seq OWNED BY user_audit_logs.id");
    await q("CREATE TABLE user_audit_logs_default PARTITION OF user_audit_logs DEFAULT");
    const [range] = await sequelize.query<{ first: Date | null; last: Date | null }>(
      `SELECT min(created_at) AS first, max(created_at) AS last FROM user_audit_logs_unpartitioned`,
      { type: QueryTypes.SELECT, transaction },
    );
    const now = new Date();
    const first = range?.first && range.first < now ? range.first : now;
    const ahead = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + AUDIT_MONTHS_AHEAD, 1));
    const last = range?.last && range.last > ahead ? range.last : ahead;
    const months: Date[] = [];
    for (let m = new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth(), 1)); m <= last; m = new Date(Date.UTC(m.getUTCFullYear(), m.getUTCMonth() + 1, 1))) months.push(m);
    await createAuditPartitions(sequelize, transaction, months);
    await q(`INSERT INTO user_audit_logs (${NAMES}) SELECT ${NAMES} FROM user_audit_logs_unpartitioned`);
    await q("ALTER TABLE user_audit_logs ADD CONSTRAINT user_audit_logs_pkey PRIMARY KEY (id, created_at)");
    for (const sql of INDEXES) await q(sql);
    await q("DROP TABLE user_audit_logs_unpartitioned");
    await q("ANALYZE user_audit_logs");
  });

export const down: MigrationFn<MigrationContext> = ({ context: { sequelize } }) =>
  sequelize.transaction(async (transaction) => {
    const q = (sql: string) => sequelize.query(sql, { transaction });
    const [state] = await sequelize.query<{ partitioned: boolean }>(isPartitioned, { type: QueryTypes.SELECT, transaction });
    if (!state?.partitioned) return;
    for (const sql of setAside("user_audit_logs_partitioned")) await q(sql);
    await q(`CREATE TABLE user_audit_logs (${COLUMNS})`);
    await q("ALTER SEQUENCE user_audit_logs_id_seq OWNED BY user_audit_logs.id");
    await q(`INSERT INTO user_audit_logs (${NAMES}) SELECT ${NAMES} FROM user_audit_logs_partitioned`);
    await q("ALTER TABLE user_audit_logs ADD CONSTRAINT user_audit_logs_pkey PRIMARY KEY (id)");
    for (const sql of INDEXES) await q(sql);
    await q("DROP TABLE user_audit_logs_partitioned"); // and its partitions
  });
