// PostgreSQL through PgBouncer 1.18 in transaction pooling mode (DESIGN §11): the real server
// with DATABASE_URL at a PgBouncer the suite starts and DATABASE_DIRECT_URL at PostgreSQL,
// running sign-up, sign-in, refresh, GetMe, profile, points, KYC and a job (the outbox's
// webhook delivery, woken by LISTEN on the direct connection) for several users at once, so
// that concurrent clients share PgBouncer's server connections. Also a call's statement
// cancelled through the pooler (PostgreSQL's cancel request, forwarded by PgBouncer).
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { expect } from "chai";
import pg from "pg";
import type { Sequelize } from "sequelize";
import { UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { DocumentType, KycDecision, KycService, KycStatus } from "../../gen/identity/v1/kyc_pb.js";
import { PointsService } from "../../gen/identity/v1/points_pb.js";
import { ProfileService } from "../../gen/identity/v1/profile_pb.js";
import { createLogger } from "../../src/logger.js";
import { ensureDatabase, openDatabase } from "../../src/store/database.js";
import { runTransaction } from "../../src/store/transaction.js";
import { bearer, clientFor, signIn, signUp } from "../support/clients.js";
import { uniqueDatabaseUrl } from "../support/env.js";
import { startFakeWebhook, type FakeWebhook } from "../support/fake-webhook.js";
import { startPgBouncer, type PgBouncer } from "../support/pgbouncer.js";
import { startTestServer, type TestServer } from "../support/server.js";

async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("PostgreSQL through PgBouncer (transaction pooling)", function () {
  this.timeout(120_000);
  let bouncer: PgBouncer | undefined;

  before(async function () {
    bouncer = await startPgBouncer();
    if (!bouncer) this.skip();
  });
  after(() => bouncer?.close());

  describe("the service with DATABASE_URL at PgBouncer and DATABASE_DIRECT_URL at PostgreSQL", () => {
    let server: TestServer;
    let receiver: FakeWebhook;
    const direct = uniqueDatabaseUrl("pgbouncer");

    before(async () => {
      receiver = await startFakeWebhook();
      server = await startTestServer({
        ROLE: "all",
        DATABASE_URL: bouncer!.url(direct),
        DATABASE_DIRECT_URL: direct,
        WEBHOOK_URLS: receiver.url,
        WEBHOOK_SECRET: "pgbouncer-webhook-secret",
      });
    });
    after(async () => {
      await server?.close();
      await receiver?.close();
    });

    it("turns named prepared statements off by default, since the direct URL differs", () => {
      expect(server.app.config.databasePreparedStatements).to.equal(false);
    });

    it("LISTENs on direct connections, never on PgBouncer's server connections", async () => {
      const watcher = new pg.Client(direct);
      await watcher.connect();
      try {
        const listening = async () =>
          (await watcher.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'")).rows.map((r) => r.pid);
        // Agenda's channel and the outbox listener.
        await until(async () => (await listening()).length >= 2, "both LISTEN connections");
        const pooled = await bouncer!.serverPids();
        expect(pooled).to.not.be.empty;
        expect((await listening()).filter((pid) => pooled.includes(pid))).to.deep.equal([]);
      } finally {
        await watcher.end();
      }
    });

    it("signs users up and in, refreshes and answers GetMe, many users at once", async () => {
      const auth = clientFor(UserAuthService, server.url);
      const flows = Array.from({ length: 8 }, async () => {
        const user = await signUp(server.url, { fullName: "Pooled Person" });
        const login = await signIn(server.url, user.phone);
        const refreshed = await auth.refreshToken({ refreshToken: login.refreshToken });
        for (let i = 0; i < 3; i++) {
          const me = await auth.getMe({}, bearer(refreshed.accessToken));
          expect(me.user?.id).to.equal(user.userId);
          expect(me.user?.username).to.equal(user.username);
        }
        const again = await auth.refreshToken({ refreshToken: refreshed.refreshToken });
        expect((await auth.getMe({}, bearer(again.accessToken))).user?.id).to.equal(user.userId);
      });
      await Promise.all(flows);
    });

    it("updates profiles, adjusts points, submits and reviews KYC, and runs the outbox job", async () => {
      const staff = await signUp(server.url);
      await server.app.stores.models.User.update({ isStaff: true }, { where: { id: staff.userId } });
      const users = await Promise.all(Array.from({ length: 4 }, () => signUp(server.url)));
      await Promise.all(
        users.map(async (user, i) => {
          const auth = bearer(user.accessToken);
          const profile = await clientFor(ProfileService, server.url).updateProfile({ address: `${i} Pooler Lane` }, auth);
          expect(profile.profile?.address).to.equal(`${i} Pooler Lane`);
          const points = clientFor(PointsService, server.url);
          const credit = await points.adjustPoints({ userId: user.userId, delta: 250n, reason: "welcome", idempotencyKey: randomUUID() }, bearer(staff.accessToken));
          expect(credit.points).to.equal(250n);
          expect((await points.getWallet({}, auth)).points).to.equal(250n);
          const kyc = clientFor(KycService, server.url);
          await kyc.submitKyc({ documentType: DocumentType.PASSPORT, documentNumber: `P${Date.now() % 1e6}${i}`, documentFrontUrl: "https://docs.example.com/p.jpg" }, auth);
          const reviewed = await kyc.reviewKyc({ userId: user.userId, decision: KycDecision.APPROVE }, bearer(staff.accessToken));
          expect(reviewed.kyc?.status).to.equal(KycStatus.APPROVED);
        }),
      );
      // The worker (on the direct connection) delivers every user's changes to the webhook.
      const delivered = () => new Set(receiver.requests.filter((r) => r.status === 204).map((r) => (JSON.parse(r.body) as { user_id: string }).user_id));
      await until(() => users.every((u) => delivered().has(u.userId)), "the webhook deliveries");
    });
  });

  describe("a call's statement, cancelled through PgBouncer", () => {
    const direct = uniqueDatabaseUrl("pgbcancel");
    let sequelize: Sequelize;
    let other: pg.Client;
    /** Outside any transaction: pg_stat_activity is read once per transaction. */
    let watcher: pg.Client;

    before(async () => {
      await ensureDatabase(direct);
      sequelize = openDatabase({ databaseUrl: bouncer!.url(direct), databasePreparedStatements: false }, createLogger("silent"));
      other = new pg.Client(direct);
      await other.connect();
      await other.query("CREATE TABLE locked (id int)");
      watcher = new pg.Client(direct);
      await watcher.connect();
    });
    after(async () => {
      await other?.end();
      await watcher?.end();
      await sequelize?.close();
    });

    const waitingForLock = async () =>
      (await watcher.query("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'")).rowCount;

    it("stops the waiting statement on the server and rejects with the signal's reason", async () => {
      const reason = new Error("the call was abandoned");
      await other.query("BEGIN");
      await other.query("LOCK TABLE locked IN SHARE MODE");
      try {
        const controller = new AbortController();
        const settled = runTransaction(sequelize, controller.signal, (t) => sequelize.query("INSERT INTO locked VALUES (1)", { transaction: t })).then(
          () => "committed",
          (err: unknown) => err,
        );
        const early = settled.then((r) => Promise.reject(new Error(`settled before waiting: ${String(r)}`)));
        await Promise.race([until(async () => (await waitingForLock()) === 1, "the statement to wait for the lock"), early]);
        controller.abort(reason);
        // Settles while the test still holds its lock: the statement was cancelled, not waited for.
        expect(await settled).to.equal(reason);
        expect(await waitingForLock()).to.equal(0);
      } finally {
        await other.query("ROLLBACK");
      }
      expect((await other.query("SELECT count(*)::int AS n FROM locked")).rows[0].n).to.equal(0);
      // The pooled connection serves the next transaction.
      await runTransaction(sequelize, new AbortController().signal, (t) => sequelize.query("INSERT INTO locked VALUES (2)", { transaction: t }));
      expect((await other.query("SELECT count(*)::int AS n FROM locked")).rows[0].n).to.equal(1);
    });
  });
});
