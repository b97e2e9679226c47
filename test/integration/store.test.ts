// The data layer against real PostgreSQL and Redis: database creation, migrations (fresh,
// repeated, concurrent, reverted), constraints, models, audit writes, Redis key prefixing.
import { expect } from "chai";
import { Redis } from "ioredis";
import pg from "pg";
import { pino } from "pino";
import { createLogger } from "../../src/logger.js";
import { writeAudit, writeChangesWithAudit, writeChangeWithAudit, writeKeyedChangeWithAudit } from "../../src/store/audit-writer.js";
import { ensureDatabase, openDatabase } from "../../src/store/database.js";
import { openStores, type StoreConfig, type Stores } from "../../src/store/index.js";
import { migrate, revertLastMigration } from "../../src/store/migrate.js";
import { whereLower } from "../../src/store/models/index.js";
import { createIdentifierLookup } from "../../src/domain/users.js";
import { defineScript, openRedis } from "../../src/store/redis.js";
import { REDIS_PREFIX, REDIS_URL, uniqueDatabaseUrl, uniqueRedisPrefix } from "../support/env.js";
import { freePort, startPrivateRedis, type PrivateRedis } from "../support/private-redis.js";

const logger = createLogger("silent");

/** Every migration, in the order it applies. */
const MIGRATIONS = ["0001_initial", "0002_jobs", "0003_sessions_hot_updates", "0004_denied_tokens", "0005_account_deletion", "0006_admin_user_search", "0007_partition_audit_logs"];
const TABLES = [
  "analytics_reports",
  "denied_tokens",
  "notification_log",
  "outbox",
  "points_transactions",
  "schema_migrations",
  "sessions",
  "user_audit_logs",
  "user_devices",
  "user_kyc",
  "user_points",
  "user_profiles",
  "users",
  "webhook_deliveries",
];

const INDEXES = [
  "users_pkey",
  "users_username_lower_key",
  "users_email_lower_key",
  "users_username_prefix_idx",
  "users_email_prefix_idx",
  "users_phone_number_prefix_idx",
  "users_date_joined_id_idx",
  "users_phone_number_key",
  "users_last_login_idx",
  "users_deletion_due_idx",
  "user_profiles_pkey",
  "user_kyc_pkey",
  "user_kyc_status_submitted_idx",
  "user_devices_pkey",
  "user_devices_user_id_device_id_key",
  "user_devices_fcm_token_idx",
  "user_devices_user_active_last_used_idx",
  "sessions_pkey",
  "sessions_user_idx",
  "user_audit_logs_pkey",
  "user_audit_logs_user_created_idx",
  "user_audit_logs_created_idx",
  "user_audit_logs_user_id_idx",
  "user_points_pkey",
  "points_transactions_pkey",
  "points_transactions_idempotency_key_key",
  "points_transactions_user_created_idx",
];

function storeConfig(label: string): StoreConfig {
  return { databaseUrl: uniqueDatabaseUrl(label), redisUrl: REDIS_URL, redisKeyPrefix: uniqueRedisPrefix(label) };
}

async function sql<T extends pg.QueryResultRow>(databaseUrl: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

async function databaseExists(databaseUrl: string): Promise<boolean> {
  const name = new URL(databaseUrl).pathname.slice(1);
  const admin = new URL(databaseUrl);
  admin.pathname = "/postgres";
  return (await sql(admin.toString(), "SELECT 1 FROM pg_database WHERE datname = $1", [name])).length === 1;
}

async function publicTables(databaseUrl: string): Promise<string[]> {
  const rows = await sql<{ table_name: string }>(databaseUrl, "SELECT table_name FROM information_schema.tables t JOIN pg_class c ON c.oid = format('%I.%I', t.table_schema, t.table_name)::regclass WHERE table_schema = 'public' AND NOT c.relispartition ORDER BY table_name");
  return rows.map((r) => r.table_name);
}

/** The SQLSTATE of a failed query (Sequelize wraps pg's error as `parent`). */
async function sqlState(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    const e = err as { parent?: { code?: string }; code?: string };
    return e.parent?.code ?? e.code ?? "no code";
  }
  throw new Error("expected the statement to fail");
}

const UNIQUE_VIOLATION = "23505";
const CHECK_VIOLATION = "23514";

describe("store (PostgreSQL + Redis)", () => {
  describe("ensureDatabase", () => {
    it("creates a missing database once", async () => {
      const url = uniqueDatabaseUrl("ensure");
      expect(await databaseExists(url)).to.equal(false);
      expect(await ensureDatabase(url)).to.equal(true);
      expect(await databaseExists(url)).to.equal(true);
      expect(await ensureDatabase(url)).to.equal(false);
    });

    it("lets exactly one of several racing processes create it, and none fail", async () => {
      const url = uniqueDatabaseUrl("race");
      const created = await Promise.all(Array.from({ length: 4 }, () => ensureDatabase(url)));
      expect(created.filter(Boolean)).to.have.length(1);
      expect(await databaseExists(url)).to.equal(true);
    });

    it("refuses a URL that names no database", async () => {
      const err = await ensureDatabase("postgres://postgres@127.0.0.1:5432").catch((e: Error) => e);
      expect(err).to.be.instanceOf(Error).with.property("message").that.matches(/names no database/);
    });
  });

  describe("migrations", () => {
    it("build every table, index and foreign key from an empty server, then are a no-op", async () => {
      const config = storeConfig("fresh");
      const stores = await openStores(config, logger);
      try {
        expect(await publicTables(config.databaseUrl)).to.deep.equal(TABLES);
        const indexes = (await sql<{ indexname: string }>(config.databaseUrl, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")).map((r) => r.indexname);
        expect(indexes).to.include.members(INDEXES);
        const fks = await sql<{ table_name: string; delete_rule: string }>(
          config.databaseUrl,
          `SELECT tc.table_name, rc.delete_rule FROM information_schema.table_constraints tc
             JOIN information_schema.referential_constraints rc USING (constraint_schema, constraint_name)
            WHERE tc.constraint_type = 'FOREIGN KEY' ORDER BY tc.table_name`,
        );
        expect(fks).to.deep.equal(
          ["analytics_reports", "notification_log", "points_transactions", "sessions", "user_devices", "user_kyc", "user_points", "user_profiles"].map((table_name) => ({ table_name, delete_rule: "CASCADE" })),
        );
        expect(await sql(config.databaseUrl, "SELECT name FROM schema_migrations ORDER BY name")).to.deep.equal(MIGRATIONS.map((name) => ({ name })));
        expect(indexes).to.not.include("sessions_user_revoked_expires_idx");
        const [sessions] = await sql<{ reloptions: string[] }>(config.databaseUrl, "SELECT reloptions FROM pg_class WHERE relname = 'sessions'");
        expect(sessions!.reloptions).to.deep.equal(["fillfactor=80"]);

        expect(await migrate(stores.sequelize, logger)).to.deep.equal([]);
        expect(await sql(config.databaseUrl, "SELECT name FROM schema_migrations")).to.have.length(MIGRATIONS.length);
      } finally {
        await stores.close();
      }
    });

    it("run once when two instances start at once, and revert cleanly", async () => {
      const url = uniqueDatabaseUrl("concurrent");
      await ensureDatabase(url);
      const a = openDatabase({ databaseUrl: url }, logger);
      const b = openDatabase({ databaseUrl: url }, logger);
      try {
        const applied = await Promise.all([migrate(a, logger), migrate(b, logger)]);
        expect(applied.flat()).to.deep.equal(MIGRATIONS);
        expect(await publicTables(url)).to.deep.equal(TABLES);

        expect(await revertLastMigration(a, logger)).to.equal("0007_partition_audit_logs");

        // 0006 drops the staff search indexes.
        expect(await revertLastMigration(a, logger)).to.equal("0006_admin_user_search");
        const userIndexes = (await sql<{ indexname: string }>(url, "SELECT indexname FROM pg_indexes WHERE tablename = 'users'")).map((r) => r.indexname);
        expect(userIndexes.filter((name) => name.endsWith("_prefix_idx") || name === "users_date_joined_id_idx")).to.deep.equal([]);
        // 0005 gives erased accounts (no username) a placeholder so that NOT NULL holds again.
        await sql(url, "INSERT INTO users (username, erased_at) VALUES (NULL, now())");
        expect(await revertLastMigration(a, logger)).to.equal("0005_account_deletion");
        const [erased] = await sql<{ username: string }>(url, "SELECT username FROM users");
        expect(erased!.username).to.match(/^erased_[0-9a-f]{32}$/);
        const columns = (await sql<{ column_name: string }>(url, "SELECT column_name FROM information_schema.columns WHERE table_name = 'users' AND column_name LIKE 'deletion%' OR column_name = 'erased_at'")).length;
        expect(columns).to.equal(0);
        await sql(url, "DELETE FROM users");
        expect(await revertLastMigration(a, logger)).to.equal("0004_denied_tokens");
        expect(await revertLastMigration(a, logger)).to.equal("0003_sessions_hot_updates");
        const indexes = (await sql<{ indexname: string }>(url, "SELECT indexname FROM pg_indexes WHERE tablename = 'sessions' ORDER BY 1")).map((r) => r.indexname);
        expect(indexes).to.deep.equal(["sessions_pkey", "sessions_user_revoked_expires_idx"]);
        expect(await revertLastMigration(a, logger)).to.equal("0002_jobs");
        expect(await revertLastMigration(a, logger)).to.equal("0001_initial");
        expect(await publicTables(url)).to.deep.equal(["schema_migrations"]);
        expect(await migrate(b, logger)).to.deep.equal(MIGRATIONS);
        expect(await publicTables(url)).to.deep.equal(TABLES);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });
  });

  describe("with an open store", () => {
    let stores: Stores;
    let config: StoreConfig;
    let n = 0;
    const newUser = (fields: { username?: string; email?: string | null; phoneNumber?: string | null } = {}) =>
      stores.models.User.create({ username: fields.username ?? `user_${++n}`, email: fields.email, phoneNumber: fields.phoneNumber });

    before(async () => {
      config = storeConfig("shared");
      stores = await openStores(config, logger);
    });
    after(async () => stores.close());

    describe("constraints", () => {
      it("username is unique case-insensitively", async () => {
        await newUser({ username: "Alice" });
        expect(await sqlState(newUser({ username: "aLICE" }))).to.equal(UNIQUE_VIOLATION);
        const found = await stores.models.User.findOne({ where: whereLower("username", "ALICE") });
        expect(found?.username).to.equal("Alice");
      });

      it("email is unique case-insensitively; many users may have none", async () => {
        await newUser({ email: "bob@example.com" });
        expect(await sqlState(newUser({ email: "Bob@Example.COM" }))).to.equal(UNIQUE_VIOLATION);
        await newUser({ email: null });
        await newUser({ email: null });
      });

      it("phone number is unique; many users may have none", async () => {
        await newUser({ phoneNumber: "+14155550100" });
        expect(await sqlState(newUser({ phoneNumber: "+14155550100" }))).to.equal(UNIQUE_VIOLATION);
        await newUser({ phoneNumber: null });
        await newUser({ phoneNumber: null });
      });

      it("current_points never goes negative", async () => {
        const user = await newUser();
        expect(await sqlState(stores.models.UserPoints.create({ userId: user.id, currentPoints: "-1" }))).to.equal(CHECK_VIOLATION);
        await stores.models.UserPoints.create({ userId: user.id, currentPoints: "5" });
        const debit = stores.models.UserPoints.decrement({ currentPoints: 6 }, { where: { userId: user.id } });
        expect(await sqlState(debit)).to.equal(CHECK_VIOLATION);
        expect((await stores.models.UserPoints.findByPk(user.id))?.currentPoints).to.equal("5");
      });

      it("a points transaction has a non-zero delta and a unique idempotency key", async () => {
        const user = await newUser();
        const tx = (delta: string, idempotencyKey: string) =>
          stores.models.PointsTransaction.create({ userId: user.id, delta, balanceAfter: "10", reason: "test", idempotencyKey, requestFingerprint: "fp" });
        expect(await sqlState(tx("0", "k-zero"))).to.equal(CHECK_VIOLATION);
        await tx("10", "k-once");
        expect(await sqlState(tx("10", "k-once"))).to.equal(UNIQUE_VIOLATION);
      });

      it("a device id is unique per user, not across users", async () => {
        const [u1, u2] = [await newUser(), await newUser()];
        const device = (userId: string) => stores.models.UserDevice.create({ userId, deviceId: "install-1", deviceType: "ANDROID" });
        await device(u1.id);
        expect(await sqlState(device(u1.id))).to.equal(UNIQUE_VIOLATION);
        await device(u2.id);
        const badType = stores.models.UserDevice.create({ userId: u1.id, deviceId: "install-2", deviceType: "PHONE" as "IOS" });
        expect(await sqlState(badType)).to.equal(CHECK_VIOLATION);
      });

      it("KYC status and document type are closed sets; a rejection carries its reason", async () => {
        const user = await newUser();
        const { UserKyc } = stores.models;
        expect(await sqlState(UserKyc.create({ userId: user.id, status: "MAYBE" as "PENDING" }))).to.equal(CHECK_VIOLATION);
        expect(await sqlState(UserKyc.create({ userId: user.id, status: "PENDING" }))).to.equal(CHECK_VIOLATION);
        const submitted = { userId: user.id, status: "REJECTED" as const, documentType: "PASSPORT" as const, documentNumber: "X1234567", submittedAt: new Date() };
        expect(await sqlState(UserKyc.create(submitted))).to.equal(CHECK_VIOLATION);
        expect(await sqlState(UserKyc.create({ ...submitted, status: "PENDING", documentType: "VISA" as "PASSPORT" }))).to.equal(CHECK_VIOLATION);
        await UserKyc.create({ ...submitted, rejectionReason: "blurred photo" });
      });

      it("deleting a user removes what it owns and keeps its audit trail", async () => {
        const user = await newUser();
        const { models } = stores;
        await models.UserProfile.create({ userId: user.id });
        await models.UserKyc.create({ userId: user.id });
        await models.UserDevice.create({ userId: user.id, deviceId: "d", deviceType: "IOS" });
        await models.Session.create({ userId: user.id, refreshSeed: `h-${user.id}`, expiresAt: new Date(Date.now() + 60_000) });
        await models.UserPoints.create({ userId: user.id });
        await models.PointsTransaction.create({ userId: user.id, delta: "1", balanceAfter: "1", reason: "r", idempotencyKey: `k-${user.id}`, requestFingerprint: "f" });
        await writeAudit(models, { userId: user.id, action: "user.registered", entityType: "user", entityId: user.id });
        await user.destroy();
        const where = { userId: user.id };
        const counts = await Promise.all([
          models.UserProfile.count({ where }),
          models.UserKyc.count({ where }),
          models.UserDevice.count({ where }),
          models.Session.count({ where }),
          models.UserPoints.count({ where }),
          models.PointsTransaction.count({ where }),
        ]);
        expect(counts).to.deep.equal([0, 0, 0, 0, 0, 0]);
        expect(await models.UserAuditLog.count({ where })).to.equal(1);
      });
    });

    describe("models", () => {
      it("User: database defaults come back, timestamps are Dates", async () => {
        const created = await stores.models.User.create({ username: "Carol", email: "carol@example.com", phoneNumber: "+442071838750" });
        const user = await stores.models.User.findByPk(created.id, { rejectOnEmpty: true });
        expect(user.id).to.match(/^[0-9a-f-]{36}$/);
        expect(user.get({ plain: true })).to.include({ username: "Carol", email: "carol@example.com", phoneNumber: "+442071838750", isActive: true, isStaff: false, lastLogin: null, lastActivityAt: null, deactivatedAt: null });
        expect(user.dateJoined).to.be.instanceOf(Date);
        expect(user.updatedAt).to.be.instanceOf(Date);
        const login = new Date("2026-01-02T03:04:05.678Z");
        await user.update({ lastLogin: login });
        expect((await stores.models.User.findByPk(user.id, { rejectOnEmpty: true })).lastLogin?.toISOString()).to.equal(login.toISOString());
        const [row] = await sql<{ date_joined: Date; last_login: Date }>(config.databaseUrl, "SELECT date_joined, last_login FROM users WHERE id = $1", [user.id]);
        expect(row!.last_login.toISOString()).to.equal(login.toISOString());
      });

      it("UserProfile: date_of_birth stays a calendar date", async () => {
        const user = await newUser();
        await stores.models.UserProfile.create({ userId: user.id, fullName: "Dana Doe", dateOfBirth: "1990-12-31", address: "1 Main St", avatarUrl: "https://cdn.example/a.png" });
        const profile = await stores.models.UserProfile.findByPk(user.id, { rejectOnEmpty: true });
        expect(profile.get({ plain: true })).to.include({ fullName: "Dana Doe", dateOfBirth: "1990-12-31", address: "1 Main St", avatarUrl: "https://cdn.example/a.png", isProfileComplete: false });
        expect(profile.createdAt).to.be.instanceOf(Date);
      });

      it("UserKyc: defaults to NOT_SUBMITTED; a review round trips", async () => {
        const [user, staff] = [await newUser(), await newUser()];
        const kyc = await stores.models.UserKyc.create({ userId: user.id });
        expect(kyc.status).to.equal("NOT_SUBMITTED");
        await kyc.update({ status: "PENDING", documentType: "NATIONAL_ID", documentNumber: "AB12345", documentNumberLast4: "2345", documentFrontUrl: "https://f", documentBackUrl: "https://b", submittedAt: new Date() });
        await kyc.update({ status: "APPROVED", verifiedAt: new Date(), reviewedBy: staff.id, reviewedAt: new Date() });
        const back = await stores.models.UserKyc.findByPk(user.id, { rejectOnEmpty: true });
        expect(back.get({ plain: true })).to.include({ status: "APPROVED", documentType: "NATIONAL_ID", documentNumber: "AB12345", documentNumberLast4: "2345", reviewedBy: staff.id, rejectionReason: null });
        expect(back.verifiedAt).to.be.instanceOf(Date);
        const [row] = await sql(config.databaseUrl, "SELECT document_number_last4 FROM user_kyc WHERE user_id = $1", [user.id]);
        expect(row).to.deep.equal({ document_number_last4: "2345" });
      });

      it("UserDevice: defaults and optional fields", async () => {
        const user = await newUser();
        const d = await stores.models.UserDevice.create({ userId: user.id, deviceId: "pixel", deviceType: "ANDROID", fcmToken: "t".repeat(4096), deviceName: "Pixel 9", appVersion: "1.2.3", osVersion: "15" });
        const back = await stores.models.UserDevice.findOne({ where: { fcmToken: "t".repeat(4096) }, rejectOnEmpty: true });
        expect(back.get({ plain: true })).to.include({ id: d.id, userId: user.id, deviceId: "pixel", deviceType: "ANDROID", deviceName: "Pixel 9", appVersion: "1.2.3", osVersion: "15", isActive: true });
        expect(back.lastUsed).to.be.instanceOf(Date);
      });

      it("Session: rotation fields round trip", async () => {
        const user = await newUser();
        const expiresAt = new Date(Date.now() + 3_600_000);
        const s = await stores.models.Session.create({ userId: user.id, refreshSeed: "seed1", deviceType: "WEB", ipAddress: "203.0.113.9", userAgent: "ua", expiresAt });
        expect(s.refreshGeneration).to.equal(0);
        await s.update({ rotatedAt: new Date(), refreshGeneration: s.refreshGeneration + 1 });
        const back = await stores.models.Session.findByPk(s.id, { rejectOnEmpty: true });
        expect(back.get({ plain: true })).to.include({ id: s.id, refreshSeed: "seed1", refreshGeneration: 1, deviceType: "WEB", ipAddress: "203.0.113.9", revokedAt: null, revokedReason: null });
        expect(back.expiresAt.toISOString()).to.equal(expiresAt.toISOString());
      });

      it("UserPoints and PointsTransaction: BIGINT values come back as exact decimal strings", async () => {
        const user = await newUser();
        const big = "9007199254740993"; // 2^53 + 1: not representable as a JS number
        const points = await stores.models.UserPoints.create({ userId: user.id });
        expect(points.currentPoints).to.equal("0");
        await points.update({ currentPoints: big, totalPoints: big, totalSpent: "0" });
        const back = await stores.models.UserPoints.findByPk(user.id, { rejectOnEmpty: true });
        expect(back.get({ plain: true })).to.include({ currentPoints: big, totalPoints: big, totalSpent: "0" });
        expect(back.lastUpdated).to.be.instanceOf(Date);
        const tx = await stores.models.PointsTransaction.create({ userId: user.id, delta: `-${big}`, balanceAfter: "0", reason: "cash out", idempotencyKey: `big-${user.id}`, requestFingerprint: "f", actorId: "svc:test" });
        const txBack = await stores.models.PointsTransaction.findByPk(tx.id, { rejectOnEmpty: true });
        expect(txBack.get({ plain: true })).to.include({ delta: `-${big}`, balanceAfter: "0", reason: "cash out", actorId: "svc:test" });
        expect(BigInt(txBack.delta) + BigInt(back.currentPoints)).to.equal(0n);
      });

      it("UserAuditLog: bigserial id is a string, JSON values round trip", async () => {
        const row = await stores.models.UserAuditLog.create({ userId: null, action: "otp.requested", entityType: "otp", newValues: { channel: "sms", nested: { a: [1, 2] } } });
        const back = await stores.models.UserAuditLog.findByPk(row.id, { rejectOnEmpty: true });
        expect(back.id).to.be.a("string").that.matches(/^\d+$/);
        expect(back.newValues).to.deep.equal({ channel: "sms", nested: { a: [1, 2] } });
        expect(back.createdAt).to.be.instanceOf(Date);
      });
    });

    describe("writeAudit", () => {
      const entry = (userId: string, action: string) => ({
        userId,
        action,
        entityType: "profile",
        entityId: userId,
        oldValues: { full_name: null },
        newValues: { full_name: "Eve" },
        ipAddress: "198.51.100.7",
        userAgent: "app/1.0",
        sessionId: "00000000-0000-4000-8000-000000000001",
        actorId: "staff-1",
      });

      it("writes one or several rows inside the caller's transaction", async () => {
        const user = await newUser();
        await stores.sequelize.transaction(async (transaction) => {
          await user.update({ lastActivityAt: new Date() }, { transaction });
          await writeAudit(stores.models, entry(user.id, "profile.updated"), transaction);
          await writeAudit(stores.models, [entry(user.id, "a.one"), entry(user.id, "a.two")], transaction);
          await writeAudit(stores.models, [], transaction);
        });
        const rows = await sql(config.databaseUrl, "SELECT user_id, actor_id, action, entity_type, entity_id, old_values, new_values, ip_address, user_agent, session_id FROM user_audit_logs WHERE user_id = $1 ORDER BY id", [user.id]);
        expect(rows.map((r) => r.action)).to.deep.equal(["profile.updated", "a.one", "a.two"]);
        expect(rows[0]).to.deep.equal({
          user_id: user.id,
          actor_id: "staff-1",
          action: "profile.updated",
          entity_type: "profile",
          entity_id: user.id,
          old_values: { full_name: null },
          new_values: { full_name: "Eve" },
          ip_address: "198.51.100.7",
          user_agent: "app/1.0",
          session_id: "00000000-0000-4000-8000-000000000001",
        });
      });

      it("writes thousands of rows at once (one INSERT per thousand, under PostgreSQL's parameter limit)", async () => {
        const user = await newUser();
        await writeAudit(stores.models, Array.from({ length: 2500 }, (_, i) => entry(user.id, `bulk.${i}`)));
        const [row] = await sql(config.databaseUrl, "SELECT count(*)::int AS n, count(DISTINCT action)::int AS actions FROM user_audit_logs WHERE user_id = $1", [user.id]);
        expect(row).to.deep.equal({ n: 2500, actions: 2500 });
      });

      it("writes nothing when the transaction rolls back", async () => {
        const user = await newUser();
        const failed = stores.sequelize.transaction(async (transaction) => {
          await writeAudit(stores.models, entry(user.id, "x.single"), transaction);
          await writeAudit(stores.models, [entry(user.id, "x.one"), entry(user.id, "x.two")], transaction);
          throw new Error("change failed");
        });
        expect(await failed.catch((e: Error) => e.message)).to.equal("change failed");
        expect(await stores.models.UserAuditLog.count({ where: { userId: user.id } })).to.equal(0);
      });
    });

    describe("writeChangesWithAudit", () => {
      const entry = (userId: string, action: string) => ({ userId, action, entityType: "user", entityId: userId, newValues: { n: 1 } });
      const actions = async (userId: string) => (await sql(config.databaseUrl, "SELECT action FROM user_audit_logs WHERE user_id = $1 ORDER BY id", [userId])).map((r) => r.action);

      it("applies several changes and their audit rows in one statement", async () => {
        const user = await newUser();
        const at = new Date("2026-01-02T03:04:05Z");
        const applied = await writeChangesWithAudit(stores.sequelize, undefined, [
          { sql: "UPDATE users SET last_login = $2 WHERE id = $1", bind: [user.id, at], audit: [entry(user.id, "c.one")] },
          { sql: "INSERT INTO user_points (user_id, current_points) VALUES ($1, $2)", bind: [user.id, 7], audit: [entry(user.id, "c.two"), entry(user.id, "c.three")] },
        ]);
        expect(applied).to.equal(true);
        expect((await user.reload()).lastLogin?.toISOString()).to.equal(at.toISOString());
        expect((await stores.models.UserPoints.findByPk(user.id))?.currentPoints).to.equal("7");
        expect(await actions(user.id)).to.deep.equal(["c.one", "c.two", "c.three"]);
      });

      it("writes no audit row for a guarded change that matched nothing, and says so", async () => {
        const user = await newUser();
        const applied = await writeChangeWithAudit(stores.sequelize, undefined, "UPDATE users SET username = $2 WHERE id = $1 AND is_active = false", [user.id, "nobody"], [entry(user.id, "g.none")]);
        expect(applied).to.equal(false);
        expect(await actions(user.id)).to.deep.equal([]);
        expect((await user.reload()).username).to.not.equal("nobody");
      });

      it("applies nothing when one of the changes fails", async () => {
        const user = await newUser();
        const failed = writeChangesWithAudit(stores.sequelize, undefined, [
          { sql: "UPDATE users SET last_login = now() WHERE id = $1", bind: [user.id], audit: [entry(user.id, "f.one")] },
          { sql: "INSERT INTO user_points (user_id) VALUES ($1), ($1)", bind: [user.id], audit: [entry(user.id, "f.two")] },
        ]);
        expect(await failed.then(() => "applied", (e: { code?: string }) => e.code)).to.equal("23505"); // unique_violation
        expect((await user.reload()).lastLogin).to.equal(null);
        expect(await actions(user.id)).to.deep.equal([]);
      });
    });

    describe("writeKeyedChangeWithAudit", () => {
      const entry = (userId: string, action: string) => ({ userId, action, entityType: "user", entityId: userId });
      const actions = async (ids: string[]) =>
        (await sql(config.databaseUrl, "SELECT user_id, action FROM user_audit_logs WHERE user_id = ANY($1::uuid[]) ORDER BY id", [ids])).map((r) => `${r.user_id} ${r.action}`);

      it("changes many rows in one statement and writes the audit rows of those it changed only", async () => {
        const [a, b, c] = [await newUser(), await newUser(), await newUser()];
        await stores.models.User.update({ isActive: false }, { where: { id: c.id } });
        const changed = await writeKeyedChangeWithAudit(stores.sequelize, undefined, {
          sql: "UPDATE users u SET last_login = $2 FROM unnest($1::uuid[]) AS v(id) WHERE u.id = v.id AND u.is_active RETURNING u.id AS key",
          bind: [[a.id, b.id, c.id], new Date()],
          audit: [
            { key: a.id, entry: entry(a.id, "k.one") },
            { key: b.id, entry: entry(b.id, "k.two") },
            { key: b.id, entry: entry(b.id, "k.three") },
            { key: c.id, entry: entry(c.id, "k.inactive") },
          ],
        });
        expect([...changed].sort()).to.deep.equal([a.id, b.id].sort());
        expect(await actions([a.id, b.id, c.id])).to.deep.equal([`${a.id} k.one`, `${b.id} k.two`, `${b.id} k.three`]);
        expect((await c.reload()).lastLogin).to.equal(null);
      });

      it("applies nothing when the statement fails", async () => {
        const a = await newUser();
        const failed = writeKeyedChangeWithAudit(stores.sequelize, undefined, {
          sql: "UPDATE users u SET username = 'same_name_for_all' FROM unnest($1::uuid[]) AS v(id) WHERE u.id = v.id RETURNING u.id AS key",
          bind: [[a.id, (await newUser()).id]],
          audit: [{ key: a.id, entry: entry(a.id, "k.failed") }],
        });
        expect(await failed.then(() => "applied", (e: { code?: string }) => e.code)).to.equal("23505");
        expect(await actions([a.id])).to.deep.equal([]);
      });
    });

    describe("createIdentifierLookup", () => {
      it("answers look-ups made together, by phone and by e-mail, each with its own account", async () => {
        const a = await newUser({ email: "Lookup.A@Example.com", phoneNumber: "+14155550181" });
        const b = await newUser({ email: "lookup.b@example.com", phoneNumber: "+14155550182" });
        const find = createIdentifierLookup(stores.sequelize);
        const found = await Promise.all([
          find({ kind: "phone", value: "+14155550182" }),
          find({ kind: "email", value: "lookup.a@example.com" }),
          find({ kind: "phone", value: "+14155550181" }),
          find({ kind: "email", value: "lookup.b@example.com" }),
          find({ kind: "phone", value: "+14155550189" }),
          find({ kind: "email", value: "nobody@example.com" }),
          find({ kind: "email", value: "+14155550181" }),
        ]);
        expect(found.map((u) => u?.id)).to.deep.equal([b.id, a.id, a.id, b.id, undefined, undefined, undefined]);
        expect(found[1]).to.include({ email: "Lookup.A@Example.com", phoneNumber: "+14155550181", isActive: true });
      });
    });

    describe("redis", () => {
      let raw: Redis;
      before(() => {
        raw = new Redis(REDIS_URL);
      });
      after(() => raw.disconnect());

      it("prefixes every key", async () => {
        await stores.redis.set("greeting", "hello", "EX", 60);
        expect(await raw.get(`${config.redisKeyPrefix}greeting`)).to.equal("hello");
        expect(await raw.exists("greeting")).to.equal(0);
        expect(await stores.redis.get("greeting")).to.equal("hello");
      });

      it("hands Lua scripts prefixed KEYS and unchanged ARGV", async () => {
        const lua = "redis.call('SET', KEYS[1], ARGV[1], 'EX', 60); return {KEYS[1], KEYS[2], ARGV[1]}";
        const script = defineScript<[string, string, string]>(stores.redis, "storeTestEcho", lua, 2);
        expect(await script(["otp:{id}:code", "otp:{id}:tries"], ["v1"])).to.deep.equal([`${config.redisKeyPrefix}otp:{id}:code`, `${config.redisKeyPrefix}otp:{id}:tries`, "v1"]);
        expect(await raw.get(`${config.redisKeyPrefix}otp:{id}:code`)).to.equal("v1");
        // A second call goes by EVALSHA; the prefix still applies.
        expect((await script(["k2", "k3"], ["v2"]))[0]).to.equal(`${config.redisKeyPrefix}k2`);
        // A plain EVAL prefixes its keys as well.
        expect(await stores.redis.eval("return KEYS[1]", 1, "plain")).to.equal(`${config.redisKeyPrefix}plain`);
        expect(() => script(["only-one"], [])).to.throw(/takes 2 keys/);
      });

      it("does not prefix a key name a script builds itself", async () => {
        const built = `${REDIS_PREFIX}built-in-lua`;
        await stores.redis.eval("return redis.call('SET', ARGV[1], 'x', 'EX', 60)", 0, built);
        expect(await raw.exists(built)).to.equal(1);
        expect(await raw.exists(`${config.redisKeyPrefix}${built}`)).to.equal(0);
      });
    });

    describe("openRedis", () => {
      it("logs connection errors (once per outage) instead of throwing them", async () => {
        const lines: Array<{ level: number; msg: string }> = [];
        const capture = pino({ level: "debug" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
        const redis = openRedis({ redisUrl: "redis://127.0.0.1:1/0", redisKeyPrefix: uniqueRedisPrefix("down") }, capture);
        try {
          while (lines.length < 3) await new Promise((resolve) => setTimeout(resolve, 25));
          expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).to.deep.equal(["store unavailable"]);
          expect(lines.filter((l) => l.level === 20).length).to.be.greaterThan(0);
        } finally {
          redis.disconnect();
        }
      });
    });
  });

  it("waits a moment for Redis at start (the two are often started together)", async () => {
    const port = await freePort();
    let redis: PrivateRedis | undefined;
    const starting = new Promise<void>((resolve) =>
      setTimeout(async () => {
        redis = await startPrivateRedis({ port });
        resolve();
      }, 500),
    );
    try {
      const stores = await openStores({ ...storeConfig("startwait"), redisUrl: `redis://127.0.0.1:${port}/0` }, logger);
      expect(await stores.redis.ping()).to.equal("PONG");
      await stores.close();
    } finally {
      await starting;
      await redis?.close();
    }
  });

  it("close() shuts both stores down and may be called twice", async () => {
    const stores = await openStores(storeConfig("close"), logger);
    await Promise.all([stores.close(), stores.close()]);
    await stores.close();
    expect(stores.redis.status).to.equal("end");
    expect(await stores.sequelize.query("SELECT 1").catch((e: Error) => e)).to.be.instanceOf(Error);
  });
});
