// Each job's handler against seeded data in real PostgreSQL and Redis, with real local peers
// for FCM, SMTP and webhook receivers: effects, idempotency, batching (JOB_BATCH_SIZE=3),
// concurrent runs. Agenda itself (scheduling, locking, stop) is in jobs-worker.test.ts.
import { createHmac } from "node:crypto";
import { expect } from "chai";
import { QueryTypes } from "sequelize";
import { loadConfig, type Config } from "../../src/config.js";
import { createActivityTracker, openActivityQueue, ACTIVITY_QUEUE_KEY } from "../../src/domain/activity.js";
import { recordUserChange } from "../../src/domain/outbox.js";
import { cleanupExpiredAuditLogs } from "../../src/jobs/cleanup-expired-audit-logs.js";
import { JobInterrupted, type JobContext, type JobSpec } from "../../src/jobs/context.js";
import { createAuditLogPartitions } from "../../src/jobs/create-audit-log-partitions.js";
import { deactivateInactiveUsers } from "../../src/jobs/deactivate-inactive-users.js";
import { generateUserAnalyticsReport, lastFullWeek, periodOf } from "../../src/jobs/generate-user-analytics-report.js";
import { sendKycVerificationReminder } from "../../src/jobs/send-kyc-verification-reminder.js";
import { sendProfileCompletionReminder } from "../../src/jobs/send-profile-completion-reminder.js";
import { syncUserDataWithExternalServices } from "../../src/jobs/sync-user-data-with-external-services.js";
import { updateUserLastActivity } from "../../src/jobs/update-user-last-activity.js";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_HEADER, verifyWebhookSignature } from "../../src/jobs/webhook.js";
import { createLogger } from "../../src/logger.js";
import { createNotifier, type Notifier } from "../../src/notify/index.js";
import { createPushSender } from "../../src/notify/push.js";
import { AUDIT_MONTHS_AHEAD, monthPartition } from "../../src/store/audit-partitions.js";
import { openStores, type Stores } from "../../src/store/index.js";
import { REDIS_URL, uniqueDatabaseUrl, uniqueRedisPrefix } from "../support/env.js";
import { startFakeFcm, type FakeFcm } from "../support/fake-fcm.js";
import { startFakeSmtp, type FakeSmtp } from "../support/fake-smtp.js";
import { startFakeWebhook, type FakeWebhook } from "../support/fake-webhook.js";

const logger = createLogger("silent");
const SECRET = "webhook-secret-for-tests";

/** A fresh database and Redis prefix for one describe block, and a JobContext on them. */
function useJobStores(extraEnv: () => Record<string, string> = () => ({})) {
  const state = {} as { stores: Stores; config: Config; notifier: Notifier; ctx(overrides?: Partial<Config>, signal?: AbortSignal): JobContext };
  before(async () => {
    state.config = loadConfig({
      NODE_ENV: "test",
      LOG_LEVEL: "silent",
      DATABASE_URL: uniqueDatabaseUrl("jobs"),
      REDIS_URL,
      REDIS_KEY_PREFIX: uniqueRedisPrefix("jobs"),
      JOB_BATCH_SIZE: "3",
      ...extraEnv(),
    });
    state.stores = await openStores(state.config, logger);
    state.notifier = createNotifier(state.config, logger);
    state.ctx = (overrides = {}, signal = new AbortController().signal) => {
      const config = { ...state.config, ...overrides };
      return {
        ...state.stores,
        config,
        logger,
        notifier: state.notifier,
        push: config.fcm ? createPushSender(config.fcm) : undefined,
        signal,
      };
    };
  });
  after(async () => {
    await state.notifier?.close();
    await state.stores?.close();
  });
  return state;
}

type Sql = (sql: string, bind?: unknown[]) => Promise<Array<Record<string, any>>>;
const sqlOn = (stores: Stores): Sql => (sql, bind = []) => stores.sequelize.query<Record<string, any>>(sql, { bind, type: QueryTypes.SELECT });

let userCounter = 0;
interface SeedUser {
  joinedDaysAgo?: number;
  lastLoginDaysAgo?: number | null;
  lastActivityDaysAgo?: number | null;
  staff?: boolean;
  active?: boolean;
  email?: string | null;
  phone?: string | null;
}

/** Inserts a user with explicit timestamps (days ago, fractions allowed); returns its id. */
async function seedUser(sql: Sql, u: SeedUser = {}): Promise<string> {
  const n = ++userCounter;
  const ago = (days: number | null | undefined) => (days === null || days === undefined ? null : new Date(Date.now() - days * 86_400_000));
  const [row] = await sql(
    `INSERT INTO users (username, email, phone_number, is_staff, is_active, date_joined, last_login, last_activity_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
    [
      `user_${n}_${Date.now().toString(36)}`,
      u.email === undefined ? `user${n}.${Date.now().toString(36)}@example.com` : u.email,
      u.phone ?? null,
      u.staff ?? false,
      u.active ?? true,
      ago(u.joinedDaysAgo ?? 0),
      ago(u.lastLoginDaysAgo),
      ago(u.lastActivityDaysAgo),
    ],
  );
  return row!.id as string;
}

async function seedSession(sql: Sql, userId: string, { revokedReason, createdDaysAgo = 1 }: { revokedReason?: string; createdDaysAgo?: number } = {}): Promise<string> {
  const [row] = await sql(
    `INSERT INTO sessions (user_id, refresh_seed, created_at, expires_at, revoked_at, revoked_reason)
     VALUES ($1, 'seed', now() - make_interval(days => $2), now() + interval '30 days', $3, $4) RETURNING id`,
    [userId, createdDaysAgo, revokedReason ? new Date() : null, revokedReason ?? null],
  );
  return row!.id as string;
}

async function seedDevice(sql: Sql, userId: string, { token, active = true }: { token: string | null; active?: boolean }): Promise<string> {
  const [row] = await sql(
    `INSERT INTO user_devices (user_id, device_id, fcm_token, device_type, is_active) VALUES ($1, $2, $3, 'ANDROID', $4) RETURNING device_id`,
    [userId, `dev-${++userCounter}`, token, active],
  );
  return row!.device_id as string;
}

const run = (spec: JobSpec, ctx: JobContext, data?: unknown) => spec.run(ctx, data);

describe("jobs (handlers)", function () {
  this.timeout(60_000);

  describe("cleanup-expired-audit-logs and create-audit-log-partitions", () => {
    const s = useJobStores();
    let sql: Sql;
    before(() => (sql = sqlOn(s.stores)));
    /** Where each row with `action` is: its partition's name, by id. */
    const placed = (action: string) => sql(`SELECT id, tableoid::regclass::text AS partition FROM user_audit_logs WHERE action = $1 ORDER BY id`, [action]);
    const partitions = async () =>
      (await sql(`SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'user_audit_logs'::regclass ORDER BY 1`)).map((r) => r.name as string);
    const monthsFromNow = (n: number) => {
      const now = new Date();
      return monthPartition(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + n, 1))).name;
    };

    it("create-audit-log-partitions creates this month and the next ones, idempotently", async () => {
      const ahead = Array.from({ length: AUDIT_MONTHS_AHEAD + 1 }, (_, i) => monthsFromNow(i));
      expect(await partitions()).to.include.members([...ahead, "user_audit_logs_default"]); // the migration made them
      const last = ahead.at(-1)!;
      await sql(`ALTER TABLE user_audit_logs DETACH PARTITION ${last}`);
      await sql(`DROP TABLE ${last}`);
      expect(await run(createAuditLogPartitions, s.ctx())).to.deep.equal({ created: 1, partitions: last });
      expect(await partitions()).to.include(last);
      expect(await run(createAuditLogPartitions, s.ctx())).to.deep.equal({ created: 0, partitions: "" });
      expect(await Promise.all([run(createAuditLogPartitions, s.ctx()), run(createAuditLogPartitions, s.ctx())])).to.deep.equal([
        { created: 0, partitions: "" },
        { created: 0, partitions: "" },
      ]);
    });

    it("a row of a month without a partition lands in the DEFAULT partition, and the partition job moves it into a month of its own", async () => {
      await sql(`INSERT INTO user_audit_logs (action, entity_type, created_at) VALUES ('far', 'user', now() + interval '8 months'), ('far', 'user', now() + interval '8 months')`);
      const caught = await placed("far");
      expect(caught.map((r) => r.partition)).to.deep.equal(["user_audit_logs_default", "user_audit_logs_default"]);
      const [{ month }] = (await sql(`SELECT now() + interval '8 months' AS month`)) as [{ month: Date }];
      expect(await run(createAuditLogPartitions, s.ctx())).to.deep.equal({ created: 1, partitions: monthPartition(month).name });
      expect(await placed("far")).to.deep.equal(caught.map((r) => ({ id: r.id, partition: monthPartition(month).name })));
      expect(await sql(`SELECT 1 FROM user_audit_logs_default`)).to.have.length(0);
    });

    it("drops the partitions of months wholly past the retention, keeps the month straddling the cut-off and newer rows", async () => {
      for (let i = 0; i < 10; i++) await sql(`INSERT INTO user_audit_logs (action, entity_type, created_at) VALUES ('old', 'user', now() - interval '400 days')`);
      await sql(`INSERT INTO user_audit_logs (action, entity_type, created_at) VALUES ('older', 'user', now() - interval '500 days')`);
      // The first instant of the cut-off's month: older than the retention, but its month is not over.
      await sql(`INSERT INTO user_audit_logs (action, entity_type, created_at) VALUES ('straddling', 'user', date_trunc('month', (now() - interval '365 days') AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')`);
      await sql(`INSERT INTO user_audit_logs (action, entity_type, created_at) VALUES ('kept', 'user', now() - interval '364 days'), ('kept', 'user', now())`);
      await run(createAuditLogPartitions, s.ctx()); // the old months' rows, caught by DEFAULT, get partitions
      const [{ old, older }] = (await sql(`SELECT now() - interval '400 days' AS old, now() - interval '500 days' AS older`)) as [{ old: Date; older: Date }];
      const doomed = [monthPartition(older).name, monthPartition(old).name];
      expect((await placed("old")).map((r) => r.partition)).to.deep.equal(Array(10).fill(doomed[1]));

      const first = await run(cleanupExpiredAuditLogs, s.ctx());
      expect(first).to.include({ droppedPartitions: 2, dropped: doomed.join(","), deleted: 0, complete: true });
      expect(await partitions()).to.not.include.members(doomed);
      const left = await sql(`SELECT action FROM user_audit_logs WHERE action IN ('old', 'older', 'straddling', 'kept') ORDER BY created_at`);
      expect(left.map((r) => r.action)).to.deep.equal(["straddling", "kept", "kept"]);
      expect(await run(cleanupExpiredAuditLogs, s.ctx())).to.include({ droppedPartitions: 0, deleted: 0, batches: 1 });
    });

    it("leaves a partition for the next run when a query holds the table (writers never queue behind the drop)", async () => {
      await sql(`INSERT INTO user_audit_logs (action, entity_type, created_at) VALUES ('held', 'user', now() - interval '600 days')`);
      await run(createAuditLogPartitions, s.ctx());
      const [{ held }] = (await sql(`SELECT created_at AS held FROM user_audit_logs WHERE action = 'held'`)) as [{ held: Date }];
      const reader = await s.stores.sequelize.transaction();
      try {
        await s.stores.sequelize.query("SELECT count(*) FROM user_audit_logs", { transaction: reader }); // holds ACCESS SHARE until it ends
        expect(await run(cleanupExpiredAuditLogs, s.ctx())).to.include({ droppedPartitions: 0, busy: 1, complete: false });
        expect(await partitions()).to.include(monthPartition(held).name);
      } finally {
        await reader.rollback();
      }
      expect(await run(cleanupExpiredAuditLogs, s.ctx())).to.include({ droppedPartitions: 1, dropped: monthPartition(held).name, busy: 0, complete: true });
      expect(await placed("held")).to.have.length(0);
    });

    it("deletes expired rows the DEFAULT partition holds in bounded batches, and nothing else", async () => {
      // Their month's partition is gone: they land in DEFAULT.
      for (let i = 0; i < 10; i++) await sql(`INSERT INTO user_audit_logs (action, entity_type, created_at) VALUES ('stray', 'user', now() - interval '400 days')`);
      await sql(`INSERT INTO user_audit_logs (action, entity_type, created_at) VALUES ('kept-stray', 'user', now() - interval '364 days' + interval '8 months')`);
      expect((await placed("stray")).map((r) => r.partition)).to.deep.equal(Array(10).fill("user_audit_logs_default"));
      const before = await sql(`SELECT count(*)::int AS n FROM user_audit_logs WHERE action <> 'stray'`);
      expect(await run(cleanupExpiredAuditLogs, s.ctx())).to.include({ droppedPartitions: 0, deleted: 10, batches: 4, complete: true });
      expect(await placed("stray")).to.have.length(0);
      expect(await sql(`SELECT count(*)::int AS n FROM user_audit_logs WHERE action <> 'stray'`)).to.deep.equal(before);
      expect(await run(cleanupExpiredAuditLogs, s.ctx())).to.include({ deleted: 0, batches: 1 });
    });

    it("honours AUDIT_RETENTION_DAYS", async () => {
      // The month before the 30-day cut-off's month is wholly past it; a row 29 days old is not.
      await sql(`INSERT INTO user_audit_logs (action, entity_type, created_at) VALUES ('expired', 'user', date_trunc('month', (now() - interval '30 days') AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '1 day')`);
      await sql(`INSERT INTO user_audit_logs (action, entity_type, created_at) VALUES ('fresh', 'user', now() - interval '29 days')`);
      await run(createAuditLogPartitions, s.ctx());
      const [{ expired }] = (await sql(`SELECT created_at AS expired FROM user_audit_logs WHERE action = 'expired'`)) as [{ expired: Date }];
      const summary = await run(cleanupExpiredAuditLogs, s.ctx({ auditRetentionDays: 30 }));
      expect(String(summary.dropped).split(",")).to.include(monthPartition(expired).name);
      expect(await sql(`SELECT 1 FROM user_audit_logs WHERE action = 'expired'`)).to.have.length(0);
      expect(await sql(`SELECT 1 FROM user_audit_logs WHERE action = 'fresh'`)).to.have.length(1);
      // Every partition left ends after the cut-off.
      const [{ n }] = (await sql(`SELECT count(*)::int AS n FROM user_audit_logs WHERE created_at < date_trunc('month', (now() - interval '30 days') AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`)) as [{ n: number }];
      expect(n).to.equal(0);
    });

    it("stops between partitions and batches when the worker stops", async () => {
      await sql(`INSERT INTO user_audit_logs (action, entity_type, created_at) VALUES ('interrupted', 'user', now() - interval '450 days')`);
      await run(createAuditLogPartitions, s.ctx());
      const stop = new AbortController();
      stop.abort();
      let error: unknown;
      await run(cleanupExpiredAuditLogs, s.ctx({}, stop.signal)).catch((e: unknown) => (error = e));
      expect(error).to.be.instanceOf(JobInterrupted);
      expect(await placed("interrupted")).to.have.length(1);
    });
  });

  describe("deactivate-inactive-users", () => {
    const s = useJobStores();
    let sql: Sql;
    before(() => (sql = sqlOn(s.stores)));

    const auditRows = (userId: string) => sql(`SELECT actor_id, new_values FROM user_audit_logs WHERE user_id = $1 AND action = 'user.deactivated'`, [userId]);

    it("deactivates users silent for 180 days, ends their sessions and devices, one audit and outbox row each", async () => {
      const stale = await seedUser(sql, { joinedDaysAgo: 400, lastLoginDaysAgo: 200 });
      const neverLoggedIn = await seedUser(sql, { joinedDaysAgo: 200 });
      const recent = await seedUser(sql, { joinedDaysAgo: 400, lastLoginDaysAgo: 10 });
      const staff = await seedUser(sql, { joinedDaysAgo: 800, lastLoginDaysAgo: 400, staff: true });
      const stillUsingApp = await seedUser(sql, { joinedDaysAgo: 400, lastLoginDaysAgo: 200, lastActivityDaysAgo: 5 });
      const alreadyInactive = await seedUser(sql, { joinedDaysAgo: 400, lastLoginDaysAgo: 300, active: false });
      const live = [await seedSession(sql, stale), await seedSession(sql, stale)];
      const earlier = await seedSession(sql, stale, { revokedReason: "logout" });
      await seedDevice(sql, stale, { token: "t-1" });
      await seedDevice(sql, stale, { token: "t-2" });
      const fillers = [];
      for (let i = 0; i < 8; i++) fillers.push(await seedUser(sql, { joinedDaysAgo: 365, lastLoginDaysAgo: 181 }));

      const summary = await run(deactivateInactiveUsers, s.ctx());
      expect(summary).to.include({ deactivated: 10, sessionsRevoked: 2, devicesDeactivated: 2, batches: 4, complete: true });

      const users = await sql(`SELECT id, is_active, deactivated_at FROM users`);
      const byId = new Map(users.map((u) => [u.id as string, u]));
      for (const id of [stale, neverLoggedIn, ...fillers]) {
        expect(byId.get(id)).to.include({ is_active: false });
        expect(byId.get(id)!.deactivated_at).to.be.instanceOf(Date);
        expect(await auditRows(id)).to.deep.equal([{ actor_id: "job:deactivate-inactive-users", new_values: { is_active: false, reason: "inactive", inactive_days: 180 } }]);
      }
      for (const id of [recent, staff, stillUsingApp]) expect(byId.get(id)).to.include({ is_active: true });
      expect(byId.get(alreadyInactive)!.deactivated_at).to.equal(null);
      expect(await auditRows(alreadyInactive)).to.have.length(0);

      const sessions = await sql(`SELECT id, revoked_reason FROM sessions WHERE user_id = $1 ORDER BY id`, [stale]);
      expect(Object.fromEntries(sessions.map((r) => [r.id, r.revoked_reason]))).to.deep.equal({ [live[0]!]: "inactive", [live[1]!]: "inactive", [earlier]: "logout" });
      expect(await sql(`SELECT 1 FROM user_devices WHERE user_id = $1 AND is_active`, [stale])).to.have.length(0);
      const outbox = await sql(`SELECT user_id, reason FROM outbox WHERE reason = 'user.deactivated'`);
      expect(outbox.map((r) => r.user_id)).to.have.members([stale, neverLoggedIn, ...fillers]);
    });

    it("is idempotent: a second run changes nothing and writes no audit row", async () => {
      const before = await sql(`SELECT count(*)::int AS n FROM user_audit_logs`);
      expect(await run(deactivateInactiveUsers, s.ctx())).to.include({ deactivated: 0, sessionsRevoked: 0, devicesDeactivated: 0 });
      expect(await sql(`SELECT count(*)::int AS n FROM user_audit_logs`)).to.deep.equal(before);
    });

    it("two concurrent runs deactivate each user once", async () => {
      const ids = [];
      for (let i = 0; i < 9; i++) ids.push(await seedUser(sql, { joinedDaysAgo: 500, lastLoginDaysAgo: 250 }));
      const [a, b] = await Promise.all([run(deactivateInactiveUsers, s.ctx()), run(deactivateInactiveUsers, s.ctx())]);
      expect(Number(a!.deactivated) + Number(b!.deactivated)).to.equal(9);
      const rows = await sql(`SELECT user_id, count(*)::int AS n FROM user_audit_logs WHERE action = 'user.deactivated' AND user_id = ANY($1::uuid[]) GROUP BY user_id`, [ids]);
      expect(rows).to.have.length(9);
      expect(rows.every((r) => r.n === 1)).to.equal(true);
    });
  });

  describe("update-user-last-activity", () => {
    const s = useJobStores();
    let sql: Sql;
    before(() => (sql = sqlOn(s.stores)));

    it("debounces: 100 touches of one user within the window make one queue entry; other subjects are ignored", async () => {
      const tracker = createActivityTracker({ redis: s.stores.redis, logger });
      const user = await seedUser(sql);
      await Promise.all(Array.from({ length: 100 }, () => tracker.touch(user)));
      await tracker.touch("service:billing");
      expect(await s.stores.redis.zrange(ACTIVITY_QUEUE_KEY, "0", "-1")).to.deep.equal([user]);
      expect(await s.stores.redis.ttl(`activity:seen:{${user}}`)).to.be.within(295, 300);

      const summary = await run(updateUserLastActivity, s.ctx());
      expect(summary).to.include({ drained: 1, updated: 1 });
      const [row] = await sql(`SELECT last_activity_at FROM users WHERE id = $1`, [user]);
      expect(Date.now() - (row!.last_activity_at as Date).getTime()).to.be.below(10_000);
      expect(await s.stores.redis.zcard(ACTIVITY_QUEUE_KEY)).to.equal(0);

      await tracker.touch(user);
      expect(await s.stores.redis.zcard(ACTIVITY_QUEUE_KEY), "still within the window").to.equal(0);
    });

    it("drains in batches and never moves last_activity_at backwards", async () => {
      const later = new Date(Date.now() + 3_600_000);
      const ahead = await seedUser(sql);
      await sql(`UPDATE users SET last_activity_at = $2 WHERE id = $1`, [ahead, later]);
      const others = [];
      for (let i = 0; i < 9; i++) others.push(await seedUser(sql));
      const at = Date.now() - 60_000;
      for (const id of [ahead, ...others]) await s.stores.redis.zadd(ACTIVITY_QUEUE_KEY, at, id);

      expect(await run(updateUserLastActivity, s.ctx())).to.include({ drained: 10, updated: 9, batches: 4, complete: true });
      const [kept] = await sql(`SELECT last_activity_at FROM users WHERE id = $1`, [ahead]);
      expect((kept!.last_activity_at as Date).getTime()).to.equal(later.getTime());
      const rows = await sql(`SELECT last_activity_at FROM users WHERE id = ANY($1::uuid[])`, [others]);
      expect(rows.every((r) => (r.last_activity_at as Date).getTime() === at)).to.equal(true);
    });

    it("keeps an entry touched again while its batch was being written", async () => {
      const queue = openActivityQueue(s.stores.redis);
      const user = await seedUser(sql);
      await s.stores.redis.zadd(ACTIVITY_QUEUE_KEY, 1000, user);
      const entries = await queue.peek(10);
      await s.stores.redis.zadd(ACTIVITY_QUEUE_KEY, 2000, user);
      await queue.remove(entries);
      expect(await s.stores.redis.zscore(ACTIVITY_QUEUE_KEY, user)).to.equal("2000");
      await s.stores.redis.del(ACTIVITY_QUEUE_KEY);
    });
  });

  describe("reminders", () => {
    let fcm: FakeFcm;
    let smtp: FakeSmtp;
    before(async () => {
      [fcm, smtp] = await Promise.all([startFakeFcm(), startFakeSmtp()]);
    });
    after(async () => {
      await Promise.all([fcm.close(), smtp.close()]);
    });
    const s = useJobStores(() => ({ FCM_ENDPOINT: fcm.url, FCM_PROJECT_ID: "demo-project", FCM_ACCESS_TOKEN: "fcm-access", SMTP_URL: smtp.url }));
    let sql: Sql;
    before(() => (sql = sqlOn(s.stores)));

    const logOf = (userId: string) => sql(`SELECT kind, channel FROM notification_log WHERE user_id = $1`, [userId]);
    const mailTo = (address: string) => smtp.messages.filter((m) => m.to.includes(address));

    describe("send-profile-completion-reminder", () => {
      it("pushes to active devices (FCM HTTP v1), else e-mails, 24 h after registration, and deactivates unregistered tokens", async () => {
        const withDevices = await seedUser(sql, { joinedDaysAgo: 1.05 });
        await seedDevice(sql, withDevices, { token: "good-token" });
        const deadDevice = await seedDevice(sql, withDevices, { token: "dead-token" });
        await seedDevice(sql, withDevices, { token: "inactive-token", active: false });
        fcm.unregistered.add("dead-token");
        const emailOnly = await seedUser(sql, { joinedDaysAgo: 2, email: "complete-me@example.com" });
        const tooNew = await seedUser(sql, { joinedDaysAgo: 0.5 });
        const complete = await seedUser(sql, { joinedDaysAgo: 2 });
        await sql(`INSERT INTO user_profiles (user_id, full_name, date_of_birth, address, is_profile_complete) VALUES ($1, 'Ada L', '1990-01-01', 'Street 1', true)`, [complete]);
        const phoneOnly = await seedUser(sql, { joinedDaysAgo: 2, email: null, phone: "+15550001111" });
        const staff = await seedUser(sql, { joinedDaysAgo: 2, staff: true });

        const summary = await run(sendProfileCompletionReminder, s.ctx());
        expect(summary).to.include({ pushed: 1, emailed: 1, noChannel: 1, failed: 0, devicesDeactivated: 1 });

        expect(fcm.messages).to.have.length(1);
        expect(fcm.messages[0]).to.deep.include({ project: "demo-project", authorization: "Bearer fcm-access", token: "good-token", title: "Complete your profile", data: { kind: "profile_completion" } });
        expect(await logOf(withDevices)).to.deep.equal([{ kind: "profile_completion", channel: "push" }]);
        const [dead] = await sql(`SELECT is_active FROM user_devices WHERE device_id = $1`, [deadDevice]);
        expect(dead!.is_active).to.equal(false);
        const audit = await sql(`SELECT actor_id, entity_id, new_values FROM user_audit_logs WHERE action = 'device.deactivated' AND user_id = $1`, [withDevices]);
        expect(audit).to.deep.equal([{ actor_id: "job:send-profile-completion-reminder", entity_id: deadDevice, new_values: { is_active: false, reason: "fcm_unregistered" } }]);

        await smtp.waitFor(1);
        expect(mailTo("complete-me@example.com")).to.have.length(1);
        expect(mailTo("complete-me@example.com")[0]!.subject).to.equal("Complete your profile");
        expect(await logOf(emailOnly)).to.deep.equal([{ kind: "profile_completion", channel: "email" }]);
        for (const id of [tooNew, complete, phoneOnly, staff]) expect(await logOf(id)).to.deep.equal([]);
      });

      it("never reminds twice within 7 days, and reminds again after them", async () => {
        const pushes = fcm.messages.length;
        const mails = smtp.messages.length;
        expect(await run(sendProfileCompletionReminder, s.ctx())).to.include({ pushed: 0, emailed: 0 });
        expect(fcm.messages).to.have.length(pushes);

        await sql(`UPDATE notification_log SET sent_at = sent_at - interval '6 days'`);
        expect(await run(sendProfileCompletionReminder, s.ctx())).to.include({ pushed: 0, emailed: 0 });

        await sql(`UPDATE notification_log SET sent_at = sent_at - interval '2 days'`);
        expect(await run(sendProfileCompletionReminder, s.ctx())).to.include({ pushed: 1, emailed: 1 });
        await smtp.waitFor(mails + 1);
        expect(fcm.messages).to.have.length(pushes + 1);
      });

      it("sends one reminder when two runs race", async () => {
        await sql(`DELETE FROM notification_log`);
        await sql(`UPDATE users SET is_active = false`);
        await seedUser(sql, { joinedDaysAgo: 3, email: "race@example.com" });
        const results = await Promise.all([run(sendProfileCompletionReminder, s.ctx()), run(sendProfileCompletionReminder, s.ctx())]);
        expect(results.reduce((n, r) => n + Number(r.emailed), 0)).to.equal(1);
        await smtp.waitFor(smtp.messages.length);
        await new Promise((r) => setTimeout(r, 200));
        expect(mailTo("race@example.com")).to.have.length(1);
      });
    });

    describe("send-kyc-verification-reminder", () => {
      before(async () => {
        await sql(`UPDATE users SET is_active = false`);
      });

      it("reminds 3 days after registration without KYC, and after a rejection; never for pending or approved", async () => {
        const kycRow = (userId: string, status: string) =>
          sql(
            `INSERT INTO user_kyc (user_id, status, document_type, document_number, submitted_at, rejection_reason, reviewed_at, verified_at)
             VALUES ($1, $2, 'PASSPORT', 'X1234567', now() - interval '2 days', $3, $4, $5)`,
            [userId, status, status === "REJECTED" ? "blurry" : null, status === "PENDING" ? null : new Date(Date.now() - 3_600_000), status === "APPROVED" ? new Date() : null],
          );
        const notSubmitted = await seedUser(sql, { joinedDaysAgo: 4, email: "kyc-none@example.com" });
        const pending = await seedUser(sql, { joinedDaysAgo: 4 });
        await kycRow(pending, "PENDING");
        const approved = await seedUser(sql, { joinedDaysAgo: 4 });
        await kycRow(approved, "APPROVED");
        const rejected = await seedUser(sql, { joinedDaysAgo: 10, email: "kyc-rejected@example.com" });
        await kycRow(rejected, "REJECTED");
        const tooNew = await seedUser(sql, { joinedDaysAgo: 1 });

        const mails = smtp.messages.length;
        expect(await run(sendKycVerificationReminder, s.ctx())).to.include({ emailed: 2, pushed: 0 });
        await smtp.waitFor(mails + 2);
        expect(mailTo("kyc-none@example.com")[0]!.subject).to.equal("Verify your identity");
        expect(mailTo("kyc-rejected@example.com")[0]!.subject).to.equal("Your identity check needs another look");
        for (const id of [pending, approved, tooNew]) expect(await logOf(id)).to.deep.equal([]);
        expect(await logOf(notSubmitted)).to.deep.equal([{ kind: "kyc_verification", channel: "email" }]);

        expect(await run(sendKycVerificationReminder, s.ctx())).to.include({ emailed: 0 });
      });
    });
  });

  describe("generate-user-analytics-report", () => {
    const s = useJobStores();
    let sql: Sql;
    before(() => (sql = sqlOn(s.stores)));
    const from = "2026-11-02";
    const to = "2026-11-09";
    const inPeriod = "2026-11-04T10:00:00Z";

    it("stores each user's usage of the period, and a rerun upserts", async () => {
      const user = await seedUser(sql, { joinedDaysAgo: 30 });
      await sql(`UPDATE users SET date_joined = '2026-10-01T00:00:00Z' WHERE id = $1`, [user]);
      await sql(
        `INSERT INTO user_audit_logs (user_id, action, entity_type, created_at) VALUES
          ($1, 'user.login', 'user', '2026-11-03T08:00:00Z'), ($1, 'user.login', 'user', '2026-11-04T09:00:00Z'),
          ($1, 'profile.updated', 'profile', '2026-11-04T09:05:00Z'), ($1, 'user.login', 'user', '2026-11-10T09:00:00Z'),
          ($1, 'user.login', 'user', '2026-10-20T09:00:00Z')`,
        [user],
      );
      await sql(`INSERT INTO sessions (user_id, refresh_seed, created_at, expires_at) VALUES ($1, 's', $2, '2026-12-01T00:00:00Z')`, [user, inPeriod]);
      await sql(`INSERT INTO sessions (user_id, refresh_seed, created_at, expires_at, revoked_at) VALUES ($1, 's', '2026-10-20T00:00:00Z', '2026-12-01T00:00:00Z', '2026-11-05T00:00:00Z')`, [user]);
      await sql(`INSERT INTO user_devices (user_id, device_id, device_type, created_at) VALUES ($1, 'd1', 'IOS', $2)`, [user, inPeriod]);
      await sql(
        `INSERT INTO points_transactions (user_id, delta, balance_after, reason, idempotency_key, request_fingerprint, created_at) VALUES
          ($1, 100, 100, 'r', $3, 'f', $2), ($1, -30, 70, 'r', $4, 'f', $2), ($1, 5, 75, 'r', $5, 'f', '2026-11-20T00:00:00Z')`,
        [user, inPeriod, `k1-${user}`, `k2-${user}`, `k3-${user}`],
      );
      const joinedLater = await seedUser(sql);
      const goneBefore = await seedUser(sql, { joinedDaysAgo: 60, active: false });
      await sql(`UPDATE users SET date_joined = '2026-09-01T00:00:00Z', deactivated_at = '2026-10-15T00:00:00Z' WHERE id = $1`, [goneBefore]);

      const summary = await run(generateUserAnalyticsReport, s.ctx(), { from, to });
      expect(summary).to.include({ periodStart: "2026-11-02T00:00:00.000Z", periodEnd: "2026-11-09T00:00:00.000Z", reports: 1 });
      const reports = await sql(`SELECT user_id, period_start, period_end, stats, generated_at FROM analytics_reports`);
      expect(reports).to.have.length(1);
      expect(reports[0]!.user_id).to.equal(user);
      expect(reports[0]!.stats).to.deep.equal({
        logins: 2,
        events: 3,
        active_days: 2,
        last_login: "2026-11-04T09:00:00+00:00",
        last_activity: "2026-11-04T09:05:00+00:00",
        sessions_started: 1,
        active_sessions_at_end: 1,
        devices_registered: 1,
        active_devices: 1,
        points_earned: "100",
        points_spent: "30",
        profile_complete: false,
        kyc_status: "NOT_SUBMITTED",
      });
      expect(await sql(`SELECT 1 FROM analytics_reports WHERE user_id = ANY($1::uuid[])`, [[joinedLater, goneBefore]])).to.have.length(0);

      await sql(`INSERT INTO user_audit_logs (user_id, action, entity_type, created_at) VALUES ($1, 'user.login', 'user', '2026-11-08T23:59:59Z')`, [user]);
      await run(generateUserAnalyticsReport, s.ctx(), { from, to });
      const again = await sql(`SELECT stats, generated_at FROM analytics_reports`);
      expect(again).to.have.length(1);
      expect(again[0]!.stats.logins).to.equal(3);
      expect((again[0]!.generated_at as Date).getTime()).to.be.greaterThan((reports[0]!.generated_at as Date).getTime());
    });

    it("works through all users in batches", async () => {
      for (let i = 0; i < 9; i++) await seedUser(sql, { joinedDaysAgo: 400 });
      await sql(`UPDATE users SET date_joined = '2026-01-01T00:00:00Z' WHERE date_joined < now() - interval '300 days'`);
      const summary = await run(generateUserAnalyticsReport, s.ctx(), { from: "2026-11-09", to: "2026-11-16" });
      const [{ n }] = (await sql(`SELECT count(*)::int AS n FROM users WHERE date_joined < '2026-11-16' AND is_active`)) as [{ n: number }];
      expect(summary).to.include({ reports: n, complete: true });
      expect(Number(summary.batches)).to.equal(Math.floor(n / 3) + 1);
    });

    it("defaults to the last full ISO week and checks on-demand periods", () => {
      expect(lastFullWeek(new Date("2026-11-11T15:00:00Z"))).to.deep.equal({ start: new Date("2026-11-02T00:00:00Z"), end: new Date("2026-11-09T00:00:00Z") });
      expect(lastFullWeek(new Date("2026-11-09T00:30:00Z"))).to.deep.equal({ start: new Date("2026-11-02T00:00:00Z"), end: new Date("2026-11-09T00:00:00Z") });
      expect(lastFullWeek(new Date("2026-11-08T23:00:00Z"))).to.deep.equal({ start: new Date("2026-10-26T00:00:00Z"), end: new Date("2026-11-02T00:00:00Z") });
      expect(() => periodOf({ from: "2026-11-01" })).to.throw(/go together/);
      expect(() => periodOf({ from: "2026-11-08", to: "2026-11-01" })).to.throw(/after/);
      expect(() => periodOf({ from: "yesterday", to: "2026-11-01" })).to.throw(/--from/);
      expect(() => periodOf({ from: "2025-01-01", to: "2026-11-01" })).to.throw(/at most/);
    });
  });

  describe("sync-user-data-with-external-services", () => {
    let good: FakeWebhook;
    let flaky: FakeWebhook;
    before(async () => {
      [good, flaky] = await Promise.all([startFakeWebhook(), startFakeWebhook({ failFirst: 2 })]);
    });
    after(async () => {
      await Promise.all([good.close(), flaky.close()]);
    });
    const s = useJobStores(() => ({ WEBHOOK_URLS: `${good.url},${flaky.url}`, WEBHOOK_SECRET: SECRET, WEBHOOK_MAX_ATTEMPTS: "3", WEBHOOK_BACKOFF_SECONDS: "10" }));
    let sql: Sql;
    let user: string;
    before(async () => {
      sql = sqlOn(s.stores);
      user = await seedUser(sql, { email: "sync@example.com" });
      await sql(`INSERT INTO user_profiles (user_id, full_name) VALUES ($1, 'Sync Me')`, [user]);
      await sql(`INSERT INTO user_kyc (user_id, status, document_type, document_number, document_front_url, submitted_at) VALUES ($1, 'PENDING', 'PASSPORT', 'X1234567', 'https://docs/front.png', now())`, [user]);
    });

    const change = (userId: string, reason: string) => s.stores.sequelize.transaction((t) => recordUserChange(s.stores.models, t, userId, reason));
    const delivery = (endpoint: string) => sql(`SELECT status, attempts, last_error, change_seq, next_attempt_at, last_attempt_at FROM webhook_deliveries WHERE endpoint = $1`, [endpoint]);
    const fastForward = () => sql(`UPDATE webhook_deliveries SET next_attempt_at = now() WHERE status = 'pending'`);

    it("coalesces a user's changes into one signed snapshot per endpoint, without document numbers", async () => {
      await change(user, "profile.updated");
      await change(user, "kyc.submitted");
      const summary = await run(syncUserDataWithExternalServices, s.ctx());
      expect(summary).to.include({ changes: 2, deliveriesQueued: 2, delivered: 1, failed: 1, deadLettered: 0 });
      expect(await sql(`SELECT 1 FROM outbox`)).to.have.length(0);

      expect(good.requests).to.have.length(1);
      const [req] = good.requests;
      const timestamp = req!.headers[TIMESTAMP_HEADER]!;
      expect(Math.abs(Number(timestamp) - Date.now() / 1000)).to.be.below(60);
      const expected = `v1=${createHmac("sha256", SECRET).update(`${timestamp}.${req!.body}`).digest("hex")}`;
      expect(req!.headers[SIGNATURE_HEADER]).to.equal(expected);
      expect(verifyWebhookSignature(SECRET, { timestamp, signature: req!.headers[SIGNATURE_HEADER]!, body: req!.body })).to.equal(true);
      expect(verifyWebhookSignature("other-secret", { timestamp, signature: req!.headers[SIGNATURE_HEADER]!, body: req!.body })).to.equal(false);
      expect(req!.headers["content-type"]).to.equal("application/json");

      const payload = JSON.parse(req!.body) as Record<string, any>;
      expect(payload).to.include({ type: "user.changed", user_id: user, id: req!.headers[DELIVERY_HEADER] });
      expect(payload.reasons).to.deep.equal(["kyc.submitted", "profile.updated"]);
      expect(payload.user).to.include({ id: user, email: "sync@example.com", is_active: true });
      expect(payload.user.profile).to.include({ full_name: "Sync Me", is_profile_complete: false });
      expect(payload.user.kyc).to.include({ status: "PENDING" });
      expect(req!.body).not.to.match(/X1234567|document_number|front\.png|refresh/);
    });

    it("retries a failing endpoint with exponential backoff, never resending to the others", async () => {
      let [row] = await delivery(flaky.url);
      expect(row).to.include({ status: "pending", attempts: 1, last_error: "HTTP 500" });
      const wait1 = ((row!.next_attempt_at as Date).getTime() - (row!.last_attempt_at as Date).getTime()) / 1000;
      expect(wait1).to.be.within(9.5, 11.5);

      expect(await run(syncUserDataWithExternalServices, s.ctx()), "not due yet").to.include({ delivered: 0, failed: 0 });
      expect(flaky.requests).to.have.length(1);

      await fastForward();
      expect(await run(syncUserDataWithExternalServices, s.ctx())).to.include({ failed: 1 });
      [row] = await delivery(flaky.url);
      expect(row).to.include({ status: "pending", attempts: 2 });
      const wait2 = ((row!.next_attempt_at as Date).getTime() - (row!.last_attempt_at as Date).getTime()) / 1000;
      expect(wait2).to.be.within(19.5, 22.5);

      await fastForward();
      expect(await run(syncUserDataWithExternalServices, s.ctx())).to.include({ delivered: 1 });
      expect(flaky.requests.map((r) => r.status)).to.deep.equal([500, 500, 204]);
      expect(await delivery(flaky.url)).to.deep.equal([]);
      expect(good.requests, "the healthy endpoint got the snapshot once").to.have.length(1);
      const ids = new Set(flaky.requests.map((r) => r.headers[DELIVERY_HEADER]));
      expect(ids.size, "retries carry the same delivery id").to.equal(1);
    });

    it("folds a change into a pending delivery instead of queueing another", async () => {
      flaky.failFirst = 1;
      await change(user, "profile.updated");
      await run(syncUserDataWithExternalServices, s.ctx());
      await change(user, "device.registered");
      expect(await run(syncUserDataWithExternalServices, s.ctx())).to.include({ changes: 1, deliveriesQueued: 2, delivered: 1 });
      const rows = await delivery(flaky.url);
      expect(rows).to.have.length(1);
      expect(rows[0]).to.include({ change_seq: 2, attempts: 1 });
      await fastForward();
      await run(syncUserDataWithExternalServices, s.ctx());
      const last = JSON.parse(flaky.requests.at(-1)!.body) as { reasons: string[] };
      expect(last.reasons).to.deep.equal(["device.registered", "profile.updated"]);
      expect(await delivery(flaky.url)).to.deep.equal([]);
    });

    it("dead-letters after WEBHOOK_MAX_ATTEMPTS with the last error, and --retry-dead requeues", async () => {
      flaky.failFirst = 100;
      await change(user, "profile.updated");
      for (let i = 0; i < 3; i++) {
        await fastForward();
        await run(syncUserDataWithExternalServices, s.ctx());
      }
      const [row] = await delivery(flaky.url);
      expect(row).to.include({ status: "dead", attempts: 3, last_error: "HTTP 500" });
      await fastForward();
      const requests = flaky.requests.length;
      await run(syncUserDataWithExternalServices, s.ctx());
      expect(flaky.requests, "a dead letter is not retried").to.have.length(requests);

      flaky.failFirst = 0;
      expect(await run(syncUserDataWithExternalServices, s.ctx(), { "retry-dead": true })).to.include({ revived: 1, delivered: 1 });
      expect(await delivery(flaky.url)).to.deep.equal([]);
    });

    it("drains the outbox when no endpoint is configured", async () => {
      await change(user, "profile.updated");
      expect(await run(syncUserDataWithExternalServices, s.ctx({ webhookUrls: [] }))).to.include({ changes: 1, deliveriesQueued: 0 });
      expect(await sql(`SELECT 1 FROM outbox`)).to.have.length(0);
    });
  });
});
