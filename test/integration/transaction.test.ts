// runTransaction against real PostgreSQL: a call's signal cancels the statement its transaction
// is running (PostgreSQL's cancel request) and keeps the transaction from committing, whether
// the signal aborts during a statement, between statements or before the transaction starts.
import { setTimeout as sleep } from "node:timers/promises";
import { expect } from "chai";
import pg from "pg";
import type { Sequelize } from "sequelize";
import { createLogger } from "../../src/logger.js";
import { ensureDatabase, openDatabase } from "../../src/store/database.js";
import { runTransaction } from "../../src/store/transaction.js";
import { uniqueDatabaseUrl } from "../support/env.js";

const reason = new Error("the call was abandoned");

describe("runTransaction (a call's signal abandons its transaction)", function () {
  this.timeout(30000);
  const url = uniqueDatabaseUrl("txn");
  let sequelize: Sequelize;
  let other: pg.Client;

  before(async () => {
    await ensureDatabase(url);
    sequelize = openDatabase({ databaseUrl: url }, createLogger("silent"));
    await sequelize.query("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)");
    other = new pg.Client(url);
    await other.connect();
  });
  after(async () => {
    await other?.end();
    await sequelize?.close();
  });

  beforeEach(async () => {
    await sequelize.query("TRUNCATE items");
    await sequelize.query("INSERT INTO items VALUES (1, 'before')");
  });

  const nameOf = async () => (await other.query<{ name: string }>("SELECT name FROM items WHERE id = 1")).rows[0]!.name;
  /** Backends of this database (but the test's own) waiting for a lock. */
  const waitingForLock = async () =>
    (await other.query("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'")).rowCount;

  /** Runs `test` while the test's own connection holds a lock on table `locked` (an INSERT there waits). */
  async function withLockedTable(test: () => Promise<void>): Promise<void> {
    await sequelize.query("CREATE TABLE IF NOT EXISTS locked (id int)");
    await other.query("BEGIN");
    await other.query("LOCK TABLE locked IN SHARE MODE");
    try {
      await test();
    } finally {
      await other.query("ROLLBACK");
    }
  }

  async function until(check: () => Promise<boolean>): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if (await check()) return;
      await sleep(25);
    }
    throw new Error("timed out waiting");
  }

  it("commits when the signal does not abort", async () => {
    const controller = new AbortController();
    await runTransaction(sequelize, controller.signal, async (t) => {
      await sequelize.query("UPDATE items SET name = 'after' WHERE id = 1", { transaction: t });
    });
    expect(await nameOf()).to.equal("after");
  });

  it("cancels the statement that waits, rolls back what the transaction wrote, and rejects with the signal's reason", async () => {
    await withLockedTable(async () => {
      const controller = new AbortController();
      const work = runTransaction(sequelize, controller.signal, async (t) => {
        await sequelize.query("UPDATE items SET name = 'after' WHERE id = 1", { transaction: t });
        // Waits for the test's lock.
        await sequelize.query("INSERT INTO locked VALUES (1)", { transaction: t });
      });
      const settled = work.then(
        () => "committed",
        (err: unknown) => err,
      );
      await until(async () => (await waitingForLock()) === 1);
      controller.abort(reason);
      // Settles while the test still holds its lock: the statement was cancelled, not waited for.
      expect(await settled).to.equal(reason);
      expect(await waitingForLock()).to.equal(0);
    });
    expect(await nameOf()).to.equal("before");
    // The pool's connection is fine for the next transaction.
    await runTransaction(sequelize, new AbortController().signal, async (t) => {
      await sequelize.query("UPDATE items SET name = 'next' WHERE id = 1", { transaction: t });
    });
    expect(await nameOf()).to.equal("next");
  });

  it("cancels a statement that starts after the abort, while the work still runs (the first cancel found nothing to cancel)", async () => {
    await withLockedTable(async () => {
      const controller = new AbortController();
      const work = runTransaction(sequelize, controller.signal, async (t) => {
        await sequelize.query("UPDATE items SET name = 'after' WHERE id = 1", { transaction: t });
        // No statement runs when the signal aborts; the next one waits for the test's lock.
        await sleep(300);
        await sequelize.query("INSERT INTO locked VALUES (1)", { transaction: t });
      });
      const settled = work.then(
        () => "committed",
        (err: unknown) => err,
      );
      await sleep(100);
      controller.abort(reason);
      // Settles while the test still holds its lock (before the fix it waited for the lock).
      expect(await Promise.race([settled, sleep(5000, "still waiting for the lock")])).to.equal(reason);
      expect(await waitingForLock()).to.equal(0);
    });
    expect(await nameOf()).to.equal("before");
  });

  it("does not commit when the signal aborts between statements", async () => {
    const controller = new AbortController();
    const work = runTransaction(sequelize, controller.signal, async (t) => {
      await sequelize.query("UPDATE items SET name = 'after' WHERE id = 1", { transaction: t });
      controller.abort(reason);
      await sleep(10);
    });
    expect(await work.then(() => "committed", (err: unknown) => err)).to.equal(reason);
    expect(await nameOf()).to.equal("before");
  });

  it("starts nothing when the signal has already aborted", async () => {
    const controller = new AbortController();
    controller.abort(reason);
    let ran = false;
    const work = runTransaction(sequelize, controller.signal, async () => {
      ran = true;
    });
    expect(await work.then(() => "committed", (err: unknown) => err)).to.equal(reason);
    expect(ran).to.equal(false);
  });
});
