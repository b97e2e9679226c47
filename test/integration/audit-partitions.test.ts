// Migration 0007 against real PostgreSQL: a plain user_audit_logs with rows across several
// months becomes a table partitioned by month, every row kept with its id, the sequence
// going on; reverting puts the rows back in a plain table. The jobs that maintain the
// partitions are in jobs.test.ts.
import { expect } from "chai";
import { QueryTypes, type Sequelize } from "sequelize";
import { createLogger } from "../../src/logger.js";
import { AUDIT_MONTHS_AHEAD, monthPartition } from "../../src/store/audit-partitions.js";
import { writeAudit } from "../../src/store/audit-writer.js";
import { ensureDatabase, openDatabase } from "../../src/store/database.js";
import { migrate, revertLastMigration } from "../../src/store/migrate.js";
import { defineModels } from "../../src/store/models/index.js";
import { uniqueDatabaseUrl } from "../support/env.js";

const logger = createLogger("silent");

describe("user_audit_logs partitioned by month (migration 0007)", function () {
  this.timeout(60_000);
  let db: Sequelize;
  const sql = <T extends object = Record<string, any>>(text: string, bind: unknown[] = []) => db.query<T>(text, { bind, type: QueryTypes.SELECT });
  const relkind = async () => (await sql<{ k: string }>("SELECT relkind::text AS k FROM pg_class WHERE oid = 'user_audit_logs'::regclass"))[0]!.k;
  const allRows = () => sql<{ id: string; created_at: Date; action: string; where: string }>("SELECT id, created_at, action, tableoid::regclass::text AS where FROM user_audit_logs ORDER BY id");

  before(async () => {
    const url = uniqueDatabaseUrl("partitions");
    await ensureDatabase(url);
    db = openDatabase({ databaseUrl: url }, logger);
    await migrate(db, logger);
    expect(await revertLastMigration(db, logger)).to.equal("0007_partition_audit_logs");
  });
  after(async () => db?.close());

  it("converts a table with rows across several months: every row kept with its id, one partition per month", async () => {
    expect(await relkind()).to.equal("r");
    // 14 and 13 months back, 6 back, last month, this month, and one 7 months ahead (beyond the partitions made ahead).
    for (const months of [-14, -13, -13, -6, -1, 0, 0, 7]) {
      await sql(`INSERT INTO user_audit_logs (action, entity_type, created_at) VALUES ($1, 'user', now() + make_interval(months => $2::int))`, [`m${months}`, months]);
    }
    await sql("DELETE FROM user_audit_logs WHERE id = (SELECT min(id) + 1 FROM user_audit_logs)"); // a gap in the ids
    const before = await allRows();
    expect(before).to.have.length(7);

    expect(await migrate(db, logger)).to.deep.equal(["0007_partition_audit_logs"]);
    expect(await relkind()).to.equal("p");
    const after = await allRows();
    expect(after.map(({ id, created_at, action }) => ({ id, created_at, action }))).to.deep.equal(before.map(({ id, created_at, action }) => ({ id, created_at, action })));
    for (const row of after) expect(row.where).to.equal(monthPartition(row.created_at).name);

    const partitions = (await sql<{ name: string }>("SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'user_audit_logs'::regclass")).map((r) => r.name);
    const now = new Date();
    const month = (offset: number) => monthPartition(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1))).name;
    const expected = ["user_audit_logs_default"];
    for (let m = -14; m <= 7; m++) expected.push(month(m)); // every month from the oldest row's on, gaps included
    expect(partitions).to.have.members(expected);
    expect(AUDIT_MONTHS_AHEAD).to.be.below(7);

    const [pkey] = await sql<{ def: string }>("SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'user_audit_logs_pkey'");
    expect(pkey!.def).to.equal("PRIMARY KEY (id, created_at)");
    const indexes = (await sql<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename = 'user_audit_logs'")).map((r) => r.indexname);
    expect(indexes).to.have.members(["user_audit_logs_pkey", "user_audit_logs_user_created_idx", "user_audit_logs_created_idx", "user_audit_logs_user_id_idx"]);

    // The sequence went on, and the writers' statements (prepared, unnest) and the model work.
    const models = defineModels(db);
    await writeAudit(models, [{ userId: null, action: "after", entityType: "user" }, { userId: null, action: "after", entityType: "user" }]);
    const written = await models.UserAuditLog.findAll({ where: { action: "after" } });
    expect(written).to.have.length(2);
    for (const row of written) expect(BigInt(row.id) > BigInt(before.at(-1)!.id)).to.equal(true);
    expect((await allRows()).filter((r) => r.action === "after").map((r) => r.where)).to.deep.equal([month(0), month(0)]);
  });

  it("reverts to a plain table with the same rows and ids, and converts again", async () => {
    const rows = await allRows();
    expect(await revertLastMigration(db, logger)).to.equal("0007_partition_audit_logs");
    expect(await relkind()).to.equal("r");
    expect((await allRows()).map((r) => r.id)).to.deep.equal(rows.map((r) => r.id));
    expect(await sql("SELECT 1 FROM pg_class WHERE relname LIKE 'user_audit_logs_%' AND relkind IN ('r', 'p')")).to.have.length(0);
    await sql("INSERT INTO user_audit_logs (action, entity_type) VALUES ('plain', 'user')");
    expect(await migrate(db, logger)).to.deep.equal(["0007_partition_audit_logs"]);
    expect((await allRows()).map((r) => r.id)).to.have.length(rows.length + 1);
  });
});
