// purge-deleted-accounts and the erasure it runs, against seeded rows in real PostgreSQL:
// which accounts it takes (due, pending, not erased), batching (JOB_BATCH_SIZE=3), two runs at
// once erasing each account once, a second run doing nothing, and how audit values are cut down.
import { expect } from "chai";
import { QueryTypes } from "sequelize";
import { loadConfig, type Config } from "../../src/config.js";
import type { JobContext } from "../../src/jobs/context.js";
import { purgeDeletedAccounts } from "../../src/jobs/purge-deleted-accounts.js";
import { createLogger } from "../../src/logger.js";
import { createNotifier, type Notifier } from "../../src/notify/index.js";
import { openStores, type Stores } from "../../src/store/index.js";
import { REDIS_URL, uniqueDatabaseUrl, uniqueRedisPrefix } from "../support/env.js";

const logger = createLogger("silent");

describe("purge-deleted-accounts (integration)", function () {
  this.timeout(60_000);
  let stores: Stores;
  let config: Config;
  let notifier: Notifier;
  const ctx = (): JobContext => ({ ...stores, config, logger, notifier, signal: new AbortController().signal });
  const sql = <T extends object = Record<string, unknown>>(text: string, bind: unknown[] = []) => stores.sequelize.query<T>(text, { bind, type: QueryTypes.SELECT });
  let n = 0;

  /** A user with a profile and an audit row; `scheduledInSeconds` set: its deletion is pending (due when negative). */
  async function seed(opts: { scheduledInSeconds?: number; active?: boolean } = {}): Promise<string> {
    const active = opts.active ?? opts.scheduledInSeconds === undefined;
    const [{ id }] = (await sql<{ id: string }>(
      `INSERT INTO users (username, email, phone_number, is_active, deletion_requested_at, deletion_scheduled_for)
       VALUES ($1, $2, $3, $4, CASE WHEN $5::float8 IS NULL THEN NULL ELSE now() END, now() + make_interval(secs => $5::float8)) RETURNING id`,
      [`purge_${++n}`, `purge${n}@example.com`, `+1555000${String(n).padStart(4, "0")}`, active, opts.scheduledInSeconds ?? null],
    )) as [{ id: string }];
    await sql("INSERT INTO user_profiles (user_id, full_name) VALUES ($1, 'Some Body')", [id]);
    await sql(
      `INSERT INTO user_audit_logs (user_id, action, entity_type, old_values, new_values, ip_address, user_agent)
       VALUES ($1, 'kyc.submitted', 'kyc', '{"full_name":"Some Body"}', '{"status":"PENDING","document_number":"****4321","identifier_hint":"p***@example.com"}', '203.0.113.9', 'app/1.0')`,
      [id],
    );
    return id;
  }

  before(async () => {
    config = loadConfig({ NODE_ENV: "test", LOG_LEVEL: "silent", DATABASE_URL: uniqueDatabaseUrl("purge"), REDIS_URL, REDIS_KEY_PREFIX: uniqueRedisPrefix("purge"), JOB_BATCH_SIZE: "3" });
    stores = await openStores(config, logger);
    notifier = createNotifier(config, logger);
  });
  after(async () => {
    await notifier?.close();
    await stores?.close();
  });

  it("erases only due pending deletions, each once, when two runs go at once; a later run does nothing", async () => {
    const due = await Promise.all(Array.from({ length: 7 }, () => seed({ scheduledInSeconds: -60 })));
    const notDue = await seed({ scheduledInSeconds: 3600 });
    const live = await seed();
    const staffDeactivated = await seed({ active: false });

    const [a, b] = await Promise.all([purgeDeletedAccounts.run(ctx(), {}), purgeDeletedAccounts.run(ctx(), {})]);
    expect(Number(a.erased) + Number(b.erased)).to.equal(7);
    expect(a.complete && b.complete).to.equal(true);

    const erasedRows = await sql<{ user_id: string; n: number }>("SELECT user_id, count(*)::int AS n FROM user_audit_logs WHERE action = 'account.erased' GROUP BY user_id");
    expect(erasedRows.map((r) => r.user_id).sort()).to.deep.equal([...due].sort());
    expect(erasedRows.every((r) => r.n === 1)).to.equal(true);
    const users = await sql<{ id: string; username: string | null; erased: boolean }>("SELECT id, username, erased_at IS NOT NULL AS erased FROM users");
    for (const u of users) expect(u.erased, u.id).to.equal(due.includes(u.id));
    for (const id of [notDue, live, staffDeactivated]) expect(users.find((u) => u.id === id)!.username).to.match(/^purge_/);
    const outbox = await sql<{ user_id: string }>("SELECT user_id FROM outbox WHERE reason = 'account.deleted'");
    expect(outbox.map((r) => r.user_id).sort()).to.deep.equal([...due].sort());

    expect(await purgeDeletedAccounts.run(ctx(), {})).to.deep.include({ erased: 0, seen: 0 });
  });

  it("cuts audit values down to the non-personal keys and drops IP and user agent", async () => {
    const id = await seed({ scheduledInSeconds: -1 });
    await purgeDeletedAccounts.run(ctx(), {});
    const [row] = await sql("SELECT old_values, new_values, ip_address, user_agent FROM user_audit_logs WHERE user_id = $1 AND action = 'kyc.submitted'", [id]);
    expect(row).to.deep.equal({ old_values: null, new_values: { status: "PENDING" }, ip_address: null, user_agent: null });
    expect(await sql("SELECT 1 FROM user_profiles WHERE user_id = $1", [id])).to.deep.equal([]);
  });
});
