// The profile domain against a real PostgreSQL: validation (every bad field named, nothing
// changed), partial updates, clearing, derived completeness, the audit row written in the
// change's transaction, and scoping to the caller.
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { QueryTypes } from "sequelize";
import type { Caller } from "../../src/domain/caller.js";
import { createProfileDomain, type ProfileChanges, type ProfileDomain } from "../../src/domain/profiles.js";
import { createLogger } from "../../src/logger.js";
import { openStores, type Stores } from "../../src/store/index.js";
import { REDIS_URL, uniqueDatabaseUrl, uniqueRedisPrefix } from "../support/env.js";
import { rejection } from "../support/domain-errors.js";

const IP = "203.0.113.7";
const USER_AGENT = "profile-test/1.0";

/** YYYY-MM-DD of today (UTC) moved by whole years and days. */
function utcDate(years: number, days = 0): string {
  const d = new Date();
  d.setUTCHours(12, 0, 0, 0);
  d.setUTCFullYear(d.getUTCFullYear() + years);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

describe("profiles (domain, PostgreSQL)", () => {
  let stores: Stores;
  let profiles: ProfileDomain;

  before(async () => {
    stores = await openStores({ databaseUrl: uniqueDatabaseUrl("profile"), redisUrl: REDIS_URL, redisKeyPrefix: uniqueRedisPrefix("profile") }, createLogger("silent"));
    profiles = createProfileDomain(stores);
  });
  after(() => stores?.close());

  async function newUser(withProfile = true): Promise<string> {
    const user = await stores.models.User.create({ username: `p_${randomUUID().slice(0, 12)}` });
    if (withProfile) await stores.models.UserProfile.create({ userId: user.id });
    return user.id;
  }

  function callerOf(userId: string, sessionId: string = randomUUID()): Caller {
    return {
      principal: { kind: "user", subject: userId, sessionId, roles: [], jti: randomUUID(), expiresAt: Math.floor(Date.now() / 1000) + 900 },
      meta: { ip: IP, userAgent: USER_AGENT, requestId: randomUUID() },
    };
  }

  const auditRows = (userId: string) => stores.models.UserAuditLog.findAll({ where: { userId }, order: [["id", "ASC"]] });

  const complete: ProfileChanges = { fullName: "Ada Lovelace", dateOfBirth: "1990-12-10", address: "12 St James's Square, London" };

  describe("GetProfile", () => {
    it("returns an empty, incomplete profile for a user who never saved one", async () => {
      const userId = await newUser(false);
      expect(await profiles.get(callerOf(userId))).to.deep.equal({
        fullName: null,
        dateOfBirth: null,
        address: null,
        avatarUrl: null,
        isProfileComplete: false,
        updatedAt: null,
      });
    });

    it("returns the caller's own profile only", async () => {
      const alice = await newUser();
      const bob = await newUser();
      await profiles.update(callerOf(alice), { fullName: "Alice Smith" });
      expect((await profiles.get(callerOf(bob))).fullName).to.equal(null);
      expect((await profiles.get(callerOf(alice))).fullName).to.equal("Alice Smith");
    });

    it("refuses callers that are not signed-in users", async () => {
      expect((await rejection(profiles.get({ meta: { ip: IP, userAgent: "", requestId: "r" } }))).kind).to.equal("unauthenticated");
      const service: Caller = { principal: { kind: "service", subject: "billing", roles: ["service"], jti: "j", expiresAt: 0 }, meta: { ip: IP, userAgent: "", requestId: "r" } };
      expect((await rejection(profiles.get(service))).kind).to.equal("permission_denied");
    });
  });

  describe("UpdateProfile validation", () => {
    const bad: Array<[string, ProfileChanges, string]> = [
      ["full_name too short", { fullName: "A" }, "full_name"],
      ["full_name too long", { fullName: "A".repeat(101) }, "full_name"],
      ["full_name with digits", { fullName: "J0hn Smith" }, "full_name"],
      ["full_name with other punctuation", { fullName: "Robert'); DROP TABLE users;--" }, "full_name"],
      ["full_name with a tab", { fullName: "John\tSmith" }, "full_name"],
      ["full_name without a letter", { fullName: "'.-" }, "full_name"],
      ["date_of_birth not a date", { dateOfBirth: "10/12/1990" }, "date_of_birth"],
      ["date_of_birth month 13", { dateOfBirth: "1990-13-01" }, "date_of_birth"],
      ["date_of_birth 29 February of a common year", { dateOfBirth: "2001-02-29" }, "date_of_birth"],
      ["date_of_birth 31 April", { dateOfBirth: "1990-04-31" }, "date_of_birth"],
      ["date_of_birth in the future", { dateOfBirth: utcDate(1) }, "date_of_birth"],
      ["date_of_birth today", { dateOfBirth: utcDate(0) }, "date_of_birth"],
      ["date_of_birth age 12", { dateOfBirth: utcDate(-12) }, "date_of_birth"],
      ["date_of_birth one day short of 13", { dateOfBirth: utcDate(-13, 1) }, "date_of_birth"],
      ["date_of_birth before 1900", { dateOfBirth: "1899-12-31" }, "date_of_birth"],
      ["address over 255 characters", { address: "x".repeat(256) }, "address"],
      ["address with a NUL", { address: "Main St\u0000 1" }, "address"],
      ["avatar_url over http", { avatarUrl: "http://cdn.example.com/a.png" }, "avatar_url"],
      ["avatar_url ftp", { avatarUrl: "ftp://cdn.example.com/a.png" }, "avatar_url"],
      ["avatar_url javascript:", { avatarUrl: "javascript:alert(1)" }, "avatar_url"],
      ["avatar_url relative", { avatarUrl: "/avatars/a.png" }, "avatar_url"],
      ["avatar_url with credentials", { avatarUrl: "https://user:pw@cdn.example.com/a.png" }, "avatar_url"],
      ["avatar_url with a space", { avatarUrl: "https://cdn.example.com/a b.png" }, "avatar_url"],
    ];

    for (const [name, changes, field] of bad) {
      it(`rejects ${name} with a violation on ${field} and changes nothing`, async () => {
        const userId = await newUser();
        const before = await profiles.update(callerOf(userId), { ...complete, avatarUrl: "https://cdn.example.com/me.png" });
        const auditsBefore = (await auditRows(userId)).length;

        const err = await rejection(profiles.update(callerOf(userId), { ...changes, address: changes.address ?? "Somewhere else 1" }));
        expect(err.kind).to.equal("invalid_argument");
        expect(err.extra.violations?.map((v) => v.field)).to.deep.equal([field]);

        expect(await profiles.get(callerOf(userId))).to.deep.equal(before);
        expect(await auditRows(userId)).to.have.length(auditsBefore);
      });
    }

    it("names every bad field at once", async () => {
      const userId = await newUser();
      const err = await rejection(profiles.update(callerOf(userId), { fullName: "1", dateOfBirth: "yesterday", address: "y".repeat(300), avatarUrl: "http://x" }));
      expect(err.kind).to.equal("invalid_argument");
      expect(err.extra.violations?.map((v) => v.field)).to.have.members(["full_name", "date_of_birth", "address", "avatar_url"]);
      expect(await profiles.get(callerOf(userId))).to.include({ fullName: null, dateOfBirth: null, address: null, avatarUrl: null });
      expect(await auditRows(userId)).to.be.empty;
    });

    it("accepts the edges of each rule and normalises spacing", async () => {
      const userId = await newUser();
      const profile = await profiles.update(callerOf(userId), {
        fullName: "  Mary-Jane  O'Neil Jr.  ",
        dateOfBirth: utcDate(-13),
        address: "a".repeat(255),
        avatarUrl: " https://cdn.example.com/avatars/1.png?v=2 ",
      });
      expect(profile).to.include({ fullName: "Mary-Jane O'Neil Jr.", dateOfBirth: utcDate(-13), address: "a".repeat(255), avatarUrl: "https://cdn.example.com/avatars/1.png?v=2" });
      expect((await profiles.update(callerOf(userId), { fullName: "José Ñúñez Ångström" })).fullName).to.equal("José Ñúñez Ångström");
      expect((await profiles.update(callerOf(userId), { fullName: "Al" })).fullName).to.equal("Al");
      expect((await profiles.update(callerOf(userId), { fullName: "B".repeat(100) })).fullName).to.equal("B".repeat(100));
      expect((await profiles.update(callerOf(userId), { dateOfBirth: "2000-02-29" })).dateOfBirth).to.equal("2000-02-29");
    });
  });

  describe("UpdateProfile", () => {
    it("changes only the fields present", async () => {
      const userId = await newUser();
      await profiles.update(callerOf(userId), { fullName: "Grace Hopper" });
      const profile = await profiles.update(callerOf(userId), { dateOfBirth: "1986-12-09" });
      expect(profile).to.include({ fullName: "Grace Hopper", dateOfBirth: "1986-12-09", address: null, avatarUrl: null });
      expect(await profiles.get(callerOf(userId))).to.deep.equal(profile);
    });

    it("derives is_profile_complete from full_name, date_of_birth and address", async () => {
      const userId = await newUser();
      const c = callerOf(userId);
      expect((await profiles.update(c, { fullName: "Alan Turing", dateOfBirth: "1992-06-23" })).isProfileComplete).to.equal(false);
      expect((await profiles.update(c, { avatarUrl: "https://cdn.example.com/alan.png" })).isProfileComplete).to.equal(false);
      expect((await profiles.update(c, { address: "Wilmslow" })).isProfileComplete).to.equal(true);
      expect((await stores.models.UserProfile.findByPk(userId))!.isProfileComplete).to.equal(true);
      expect((await profiles.update(c, { address: "" })).isProfileComplete).to.equal(false);
      expect((await stores.models.UserProfile.findByPk(userId))!.isProfileComplete).to.equal(false);
    });

    it("clears a field given an empty (or blank) string", async () => {
      const userId = await newUser();
      const c = callerOf(userId);
      await profiles.update(c, { ...complete, avatarUrl: "https://cdn.example.com/ada.png" });
      const profile = await profiles.update(c, { avatarUrl: "", dateOfBirth: "", fullName: "   " });
      expect(profile).to.include({ fullName: null, dateOfBirth: null, avatarUrl: null, address: complete.address, isProfileComplete: false });
      const row = (await stores.models.UserProfile.findByPk(userId))!;
      expect([row.fullName, row.dateOfBirth, row.avatarUrl]).to.deep.equal([null, null, null]);
    });

    it("with no field present returns the profile unchanged and writes nothing", async () => {
      const userId = await newUser();
      const c = callerOf(userId);
      const saved = await profiles.update(c, complete);
      const audits = (await auditRows(userId)).length;
      expect(await profiles.update(c, {})).to.deep.equal(saved);
      expect(await profiles.update(c, { fullName: undefined })).to.deep.equal(saved);
      expect(await auditRows(userId)).to.have.length(audits);
    });

    it("writes nothing when the values present equal the stored ones", async () => {
      const userId = await newUser();
      const c = callerOf(userId);
      const saved = await profiles.update(c, complete);
      const audits = (await auditRows(userId)).length;
      expect(await profiles.update(c, { fullName: ` ${complete.fullName} `, address: complete.address })).to.deep.equal(saved);
      expect(await auditRows(userId)).to.have.length(audits);
    });

    it("creates the profile row on the first update when Register made none", async () => {
      const userId = await newUser(false);
      const c = callerOf(userId);
      const profile = await profiles.update(c, { fullName: "Edsger Dijkstra" });
      expect(profile.fullName).to.equal("Edsger Dijkstra");
      expect(profile.updatedAt).to.be.instanceOf(Date);
      expect(await stores.models.UserProfile.count({ where: { userId } })).to.equal(1);
    });

    it("creates the row once when two first updates race", async () => {
      const userId = await newUser(false);
      const results = await Promise.all([
        profiles.update(callerOf(userId), { fullName: "Barbara Liskov" }),
        profiles.update(callerOf(userId), { address: "Cambridge, MA" }),
      ]);
      expect(results).to.have.length(2);
      expect(await profiles.get(callerOf(userId))).to.include({ fullName: "Barbara Liskov", address: "Cambridge, MA" });
      expect(await stores.models.UserProfile.count({ where: { userId } })).to.equal(1);
      expect(await auditRows(userId)).to.have.length(2);
    });

    it("answers not_found for a caller whose account is gone", async () => {
      expect((await rejection(profiles.update(callerOf(randomUUID()), { fullName: "Nobody Here" }))).kind).to.equal("not_found");
    });
  });

  describe("audit", () => {
    it("records only the changed fields with the caller's IP, user agent and session id", async () => {
      const userId = await newUser();
      const sessionId = randomUUID();
      await profiles.update(callerOf(userId, sessionId), { fullName: "Katherine Johnson", address: "Hampton, VA" });
      await profiles.update(callerOf(userId, sessionId), { fullName: "Katherine Johnson", dateOfBirth: "1990-08-26", avatarUrl: "" });

      const rows = await auditRows(userId);
      expect(rows).to.have.length(2);
      for (const row of rows) {
        expect(row).to.include({ action: "profile.updated", entityType: "profile", entityId: userId, ipAddress: IP, userAgent: USER_AGENT, sessionId, actorId: null });
      }
      expect(rows[0]!.oldValues).to.deep.equal({ full_name: null, address: null });
      expect(rows[0]!.newValues).to.deep.equal({ full_name: "Katherine Johnson", address: "Hampton, VA" });
      // full_name unchanged and avatar_url already empty: only the birth date and the derived flag.
      expect(rows[1]!.oldValues).to.deep.equal({ date_of_birth: null, is_profile_complete: false });
      expect(rows[1]!.newValues).to.deep.equal({ date_of_birth: "1990-08-26", is_profile_complete: true });
    });

    it("is written in the transaction of the change", async () => {
      const userId = await newUser();
      await profiles.update(callerOf(userId), { fullName: "Hedy Lamarr" });
      const [profileTx] = await stores.sequelize.query<{ xmin: string }>("SELECT xmin::text FROM user_profiles WHERE user_id = $1", { bind: [userId], type: QueryTypes.SELECT });
      const [auditTx] = await stores.sequelize.query<{ xmin: string }>("SELECT xmin::text FROM user_audit_logs WHERE user_id = $1", { bind: [userId], type: QueryTypes.SELECT });
      expect(auditTx!.xmin).to.equal(profileTx!.xmin);
    });

    it("rolls the change back when the audit row cannot be written", async () => {
      const userId = await newUser();
      const before = await profiles.update(callerOf(userId), complete);
      await stores.sequelize.query(`
        CREATE OR REPLACE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'audit refused by the test'; END $$`);
      await stores.sequelize.query(`CREATE TRIGGER test_refuse_audit BEFORE INSERT ON user_audit_logs FOR EACH ROW
        WHEN (NEW.user_id = '${userId}') EXECUTE FUNCTION test_refuse_audit()`);
      try {
        let failure: unknown;
        await profiles.update(callerOf(userId), { fullName: "Someone Else", address: "" }).catch((err: unknown) => (failure = err));
        expect(String(failure)).to.match(/audit refused by the test/);
      } finally {
        await stores.sequelize.query("DROP TRIGGER test_refuse_audit ON user_audit_logs");
      }
      expect(await profiles.get(callerOf(userId))).to.deep.equal(before);
      expect(await auditRows(userId)).to.have.length(1);
    });
  });
});
