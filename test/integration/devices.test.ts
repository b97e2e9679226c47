// The devices domain against a real PostgreSQL: upsert by (user, device_id), the FCM token
// hand-over between devices and users (also under concurrent claims), listing, deactivation
// and the audit rows of each change.
import { expect } from "chai";
import { createHash, randomUUID } from "node:crypto";
import type { Caller } from "../../src/domain/caller.js";
import { createDevicesDomain, type DevicesDomain, type RegisterDeviceInput } from "../../src/domain/devices.js";
import { createLogger } from "../../src/logger.js";
import { openStores, type Stores } from "../../src/store/index.js";
import { REDIS_URL, uniqueDatabaseUrl, uniqueRedisPrefix } from "../support/env.js";
import { fieldsOf, rejection } from "../support/domain-errors.js";

const meta = { ip: "198.51.100.4", userAgent: "devices-test/1.0", requestId: "req-1" };

function userCaller(userId: string): Caller {
  return { principal: { kind: "user", subject: userId, sessionId: randomUUID(), roles: [], jti: randomUUID(), expiresAt: 0 }, meta };
}

const fingerprint = (token: string) => createHash("sha256").update(token).digest("hex").slice(0, 16);
const tick = () => new Promise((resolve) => setTimeout(resolve, 5)); // last_used has millisecond precision
const token = () => `fcm-${randomUUID()}-${"x".repeat(150)}`;

describe("devices (integration)", function () {
  let stores: Stores;
  let devices: DevicesDomain;

  before(async () => {
    stores = await openStores({ databaseUrl: uniqueDatabaseUrl("devices"), redisUrl: REDIS_URL, redisKeyPrefix: uniqueRedisPrefix("devices") }, createLogger("silent"));
    devices = createDevicesDomain({ sequelize: stores.sequelize, models: stores.models });
  });

  after(() => stores?.close());

  let userCount = 0;
  async function newCaller(): Promise<Caller & { userId: string }> {
    const user = await stores.models.User.create({ username: `devices_user_${++userCount}` });
    return { ...userCaller(user.id), userId: user.id };
  }

  const input = (extra: Partial<RegisterDeviceInput> = {}): RegisterDeviceInput => ({
    deviceId: `device-${randomUUID()}`,
    fcmToken: token(),
    deviceType: "ANDROID",
    deviceName: "Pixel 8",
    appVersion: "2.1.0",
    osVersion: "Android 14",
    ...extra,
  });

  const rowsOf = (userId: string) => stores.models.UserDevice.findAll({ where: { userId }, order: [["createdAt", "ASC"]] });
  const auditsOf = (userId: string) => stores.models.UserAuditLog.findAll({ where: { userId, entityType: "device" }, order: [["id", "ASC"]] });

  describe("RegisterDevice", () => {
    it("creates the device, active and used now, with its audit row (no token in it)", async () => {
      const a = await newCaller();
      const i = input({ deviceName: "  Pixel 8  ", osVersion: "" });
      const before = Date.now();
      const device = await devices.register(a, i);
      expect(device).to.deep.include({ deviceId: i.deviceId, fcmToken: i.fcmToken, deviceType: "ANDROID", deviceName: "Pixel 8", appVersion: "2.1.0", osVersion: null, isActive: true });
      expect(device.lastUsed.getTime()).to.be.within(before - 1000, Date.now() + 1000);
      const [audit, ...more] = await auditsOf(a.userId);
      expect(more).to.have.length(0);
      expect(audit!).to.deep.include({
        actorId: null,
        action: "device.registered",
        entityId: i.deviceId,
        oldValues: null,
        newValues: { fcm_token_fingerprint: fingerprint(i.fcmToken), device_type: "ANDROID", device_name: "Pixel 8", app_version: "2.1.0", is_active: true },
        ipAddress: meta.ip,
        userAgent: meta.userAgent,
        sessionId: a.principal!.sessionId,
      });
      expect(JSON.stringify(audit!.newValues)).not.to.include(i.fcmToken);
    });

    it("upserts by (user, device_id): fields, last_used and is_active change, one row, an audit row of the changed fields", async () => {
      const a = await newCaller();
      const i = input();
      const first = await devices.register(a, i);
      await devices.deactivate(a, i.deviceId);
      await tick();
      const newToken = token();
      const second = await devices.register(a, { ...i, fcmToken: newToken, deviceName: "Pixel 9", appVersion: "2.2.0" });
      expect(second).to.deep.include({ fcmToken: newToken, deviceName: "Pixel 9", appVersion: "2.2.0", osVersion: "Android 14", isActive: true });
      expect(second.createdAt.getTime()).to.equal(first.createdAt.getTime());
      expect(second.lastUsed.getTime()).to.be.greaterThan(first.lastUsed.getTime());
      expect(await rowsOf(a.userId)).to.have.length(1);
      const audits = await auditsOf(a.userId);
      expect(audits.map((x) => x.action)).to.deep.equal(["device.registered", "device.deactivated", "device.updated"]);
      expect(audits[2]!).to.deep.include({
        oldValues: { fcm_token_fingerprint: null, device_name: "Pixel 8", app_version: "2.1.0", is_active: false },
        newValues: { fcm_token_fingerprint: fingerprint(newToken), device_name: "Pixel 9", app_version: "2.2.0", is_active: true },
      });
    });

    it("only touches last_used when nothing else changed (no audit row)", async () => {
      const a = await newCaller();
      const i = input();
      const first = await devices.register(a, i);
      await tick();
      const again = await devices.register(a, i);
      expect(again.lastUsed.getTime()).to.be.greaterThan(first.lastUsed.getTime());
      expect((await auditsOf(a.userId)).map((x) => x.action)).to.deep.equal(["device.registered"]);
    });

    it("moves an FCM token held by another user's device, deactivating it with an audit row for its owner", async () => {
      const a = await newCaller();
      const b = await newCaller();
      const shared = token();
      const aDevice = input({ fcmToken: shared });
      await devices.register(a, aDevice);
      const bDevice = await devices.register(b, input({ fcmToken: shared, deviceType: "IOS" }));
      expect(bDevice).to.deep.include({ fcmToken: shared, isActive: true });

      const [aRow] = await rowsOf(a.userId);
      expect(aRow!).to.deep.include({ fcmToken: null, isActive: false });
      expect(await devices.list(a)).to.deep.equal([]);
      expect((await devices.list(b)).map((d) => d.deviceId)).to.deep.equal([bDevice.deviceId]);

      const aAudits = await auditsOf(a.userId);
      expect(aAudits.map((x) => x.action)).to.deep.equal(["device.registered", "device.deactivated"]);
      expect(aAudits[1]!).to.deep.include({
        userId: a.userId,
        actorId: b.userId,
        entityId: aDevice.deviceId,
        oldValues: { fcm_token_fingerprint: fingerprint(shared), is_active: true },
        newValues: { fcm_token_fingerprint: null, is_active: false },
        ipAddress: meta.ip,
        sessionId: b.principal!.sessionId,
      });
      expect((await auditsOf(b.userId)).map((x) => x.action)).to.deep.equal(["device.registered"]);
      expect(await stores.models.UserDevice.count({ where: { fcmToken: shared } })).to.equal(1);
    });

    it("moves a token between two devices of the same user", async () => {
      const a = await newCaller();
      const shared = token();
      const old = await devices.register(a, input({ fcmToken: shared }));
      const fresh = await devices.register(a, input({ fcmToken: shared }));
      expect((await devices.list(a)).map((d) => d.deviceId)).to.deep.equal([fresh.deviceId]);
      const audits = await auditsOf(a.userId);
      expect(audits.map((x) => [x.action, x.entityId, x.actorId])).to.deep.equal([
        ["device.registered", old.deviceId, null],
        ["device.registered", fresh.deviceId, null],
        ["device.deactivated", old.deviceId, null],
      ]);
    });

    it("leaves exactly one active holder when many users claim one token at once", async () => {
      const callers = await Promise.all(Array.from({ length: 12 }, newCaller));
      const shared = token();
      // Half of them already have a device (with another token) that now claims the shared one.
      const existing = await Promise.all(callers.slice(0, 6).map((c) => devices.register(c, input())));
      const claims = callers.map((c, n) => devices.register(c, input({ fcmToken: shared, deviceId: existing[n]?.deviceId ?? `device-${randomUUID()}` })));
      const results = await Promise.all(claims);
      expect(results.every((d) => d.fcmToken === shared && d.isActive)).to.equal(true);
      const holders = await stores.models.UserDevice.findAll({ where: { fcmToken: shared } });
      expect(holders).to.have.length(1);
      expect(holders[0]!.isActive).to.equal(true);
      const active = await stores.models.UserDevice.count({ where: { userId: callers.map((c) => c.userId), isActive: true } });
      expect(active).to.equal(1);
      // Every claim after the first took the token from the one before: 11 hand-overs audited.
      const handovers = await stores.models.UserAuditLog.count({ where: { userId: callers.map((c) => c.userId), action: "device.deactivated" } });
      expect(handovers).to.equal(11);
    });

    it("settles concurrent registrations of one device (different tokens) on one row", async () => {
      const a = await newCaller();
      const deviceId = `device-${randomUUID()}`;
      await Promise.all(Array.from({ length: 8 }, () => devices.register(a, input({ deviceId }))));
      const rows = await rowsOf(a.userId);
      expect(rows).to.have.length(1);
      expect(rows[0]!.isActive).to.equal(true);
    });

    it("refuses bad arguments with field violations, all at once, and stores nothing", async () => {
      const a = await newCaller();
      const err = await rejection(
        devices.register(a, { deviceId: " ", fcmToken: "", deviceType: undefined, deviceName: "n".repeat(101), appVersion: "v".repeat(101), osVersion: "o".repeat(101) }),
        "invalid_argument",
      );
      expect(fieldsOf(err)).to.deep.equal(["device_id", "fcm_token", "device_type", "device_name", "app_version", "os_version"]);
      const long = await rejection(devices.register(a, input({ deviceId: "d".repeat(256), fcmToken: "t".repeat(4097) })), "invalid_argument");
      expect(fieldsOf(long)).to.deep.equal(["device_id", "fcm_token"]);
      expect(await rowsOf(a.userId)).to.have.length(0);
      const max = await devices.register(a, input({ deviceId: "d".repeat(255), fcmToken: `${"t".repeat(4060)}${randomUUID()}`, deviceName: "n".repeat(100) }));
      expect(max.deviceId).to.have.length(255);
    });
  });

  describe("ListDevices", () => {
    it("lists the caller's active devices, most recently used first", async () => {
      const a = await newCaller();
      const b = await newCaller();
      const one = await devices.register(a, input());
      const two = await devices.register(a, input());
      const three = await devices.register(a, input());
      await devices.register(b, input());
      await devices.deactivate(a, two.deviceId);
      await tick();
      await devices.register(a, input({ deviceId: one.deviceId, fcmToken: one.fcmToken! }));
      expect((await devices.list(a)).map((d) => d.deviceId)).to.deep.equal([one.deviceId, three.deviceId]);
    });
  });

  describe("DeactivateDevice", () => {
    it("deactivates the caller's device, clears its token and audits it; repeating it changes nothing", async () => {
      const a = await newCaller();
      const d = await devices.register(a, input());
      await devices.deactivate(a, d.deviceId);
      const [row] = await rowsOf(a.userId);
      expect(row!).to.deep.include({ isActive: false, fcmToken: null });
      await devices.deactivate(a, d.deviceId);
      const audits = await auditsOf(a.userId);
      expect(audits.map((x) => x.action)).to.deep.equal(["device.registered", "device.deactivated"]);
      expect(audits[1]!).to.deep.include({
        actorId: null,
        entityId: d.deviceId,
        oldValues: { fcm_token_fingerprint: fingerprint(d.fcmToken!), is_active: true },
        newValues: { fcm_token_fingerprint: null, is_active: false },
        ipAddress: meta.ip,
        userAgent: meta.userAgent,
        sessionId: a.principal!.sessionId,
      });
    });

    it("answers not_found for another user's device, exactly as for a missing one, and changes nothing", async () => {
      const a = await newCaller();
      const b = await newCaller();
      const d = await devices.register(a, input());
      const foreign = await rejection(devices.deactivate(b, d.deviceId), "not_found");
      const missing = await rejection(devices.deactivate(b, `device-${randomUUID()}`), "not_found");
      expect(foreign.message).to.equal(missing.message);
      const [row] = await rowsOf(a.userId);
      expect(row!).to.deep.include({ isActive: true, fcmToken: d.fcmToken });
      expect(await auditsOf(a.userId)).to.have.length(1);
      expect(await auditsOf(b.userId)).to.have.length(0);
    });

    it("refuses an empty device_id (invalid_argument)", async () => {
      const a = await newCaller();
      expect(fieldsOf(await rejection(devices.deactivate(a, ""), "invalid_argument"))).to.deep.equal(["device_id"]);
    });
  });
});
