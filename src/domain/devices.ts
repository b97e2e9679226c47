// Devices (DESIGN §2, DeviceService): the caller's installations that receive push
// notifications, one user_devices row per (user, device_id).
//
// An FCM token belongs to one device at a time. RegisterDevice takes it from any other
// device holding it (of the caller or of another user): that device loses the token and is
// deactivated, so no push meant for the new holder reaches a previous owner. Invariant kept
// by every write here: a row holding a token is active (deactivation clears the token).
//
// Audit values use the column names; the token itself never enters the trail, only a short
// SHA-256 fingerprint of it (fcm_token_fingerprint), enough to see that it changed.
// last_used is not audited: it moves at every registration (every app start) and is
// usage, not a change of the device.
import { createHash } from "node:crypto";
import { Op, QueryTypes, type Sequelize, type Transaction } from "sequelize";
import { writeAudit } from "../store/audit-writer.js";
import { runTransaction } from "../store/transaction.js";
import type { DeviceTypeValue, Models, UserDevice } from "../store/models/index.js";
import { audited, changedFields, type AuditEntry } from "./audit.js";
import { callerUserId, type Caller } from "./caller.js";
import { notFound, Violations } from "./errors.js";
import { characterCount, hasControlCharacters } from "./validation.js";

export interface Device {
  deviceId: string;
  fcmToken: string | null;
  deviceType: DeviceTypeValue;
  deviceName: string | null;
  appVersion: string | null;
  osVersion: string | null;
  isActive: boolean;
  lastUsed: Date;
  createdAt: Date;
}

/** RegisterDevice's arguments as received; an empty name or version clears it. */
export interface RegisterDeviceInput {
  deviceId: string;
  fcmToken: string;
  /** Undefined when the caller named none (invalid_argument). */
  deviceType: DeviceTypeValue | undefined;
  deviceName: string;
  appVersion: string;
  osVersion: string;
}

export interface DevicesDomain {
  /**
   * Creates or updates the caller's device `deviceId`, marks it active and used now, and
   * moves its FCM token away from any other device (deactivating that one).
   */
  register(caller: Caller, input: RegisterDeviceInput): Promise<Device>;
  /** The caller's active devices, most recently used first. */
  list(caller: Caller): Promise<Device[]>;
  /** Stops pushes to the caller's device (not_found when the caller has none with this id). */
  deactivate(caller: Caller, deviceId: string): Promise<void>;
}

export interface DevicesDomainDeps {
  sequelize: Sequelize;
  models: Pick<Models, "UserDevice" | "UserAuditLog">;
}

// ---------------------------------------------------------------------------------------
// Validation

const DEVICE_ID_MAX = 255;
const FCM_TOKEN_MAX = 4096;
const DESCRIPTION_MAX = 100;

/** What a registration stores (names and versions null when absent). */
interface Registration {
  deviceId: string;
  fcmToken: string;
  deviceType: DeviceTypeValue;
  deviceName: string | null;
  appVersion: string | null;
  osVersion: string | null;
}

/** Adds a violation unless `value` has 1–max characters and no control characters. */
function checkRequired(v: Violations, field: string, value: string, max: number): void {
  const length = characterCount(value);
  if (length === 0) v.add(field, "required");
  else if (length > max) v.add(field, `must be at most ${max} characters`);
  else if (hasControlCharacters(value)) v.add(field, "must not contain control characters");
}

/** The trimmed value, null when empty; adds a violation when longer than DESCRIPTION_MAX. */
function checkDescription(v: Violations, field: string, raw: string): string | null {
  const value = raw.trim();
  if (characterCount(value) > DESCRIPTION_MAX) v.add(field, `must be at most ${DESCRIPTION_MAX} characters`);
  else if (hasControlCharacters(value)) v.add(field, "must not contain control characters");
  return value || null;
}

function validateRegistration(input: RegisterDeviceInput): Registration {
  const v = new Violations();
  const deviceId = input.deviceId.trim();
  const fcmToken = input.fcmToken.trim();
  checkRequired(v, "device_id", deviceId, DEVICE_ID_MAX);
  checkRequired(v, "fcm_token", fcmToken, FCM_TOKEN_MAX);
  if (!input.deviceType) v.add("device_type", "required: DEVICE_TYPE_ANDROID, DEVICE_TYPE_IOS or DEVICE_TYPE_WEB");
  const deviceName = checkDescription(v, "device_name", input.deviceName);
  const appVersion = checkDescription(v, "app_version", input.appVersion);
  const osVersion = checkDescription(v, "os_version", input.osVersion);
  v.throwIfAny();
  return { deviceId, fcmToken, deviceType: input.deviceType!, deviceName, appVersion, osVersion };
}

function validateDeviceId(raw: string): string {
  const v = new Violations();
  const deviceId = raw.trim();
  checkRequired(v, "device_id", deviceId, DEVICE_ID_MAX);
  v.throwIfAny();
  return deviceId;
}

// ---------------------------------------------------------------------------------------
// Reading and writing

export function deviceOf(row: UserDevice): Device {
  return {
    deviceId: row.deviceId,
    fcmToken: row.fcmToken ?? null,
    deviceType: row.deviceType,
    deviceName: row.deviceName ?? null,
    appVersion: row.appVersion ?? null,
    osVersion: row.osVersion ?? null,
    isActive: row.isActive,
    lastUsed: row.lastUsed,
    createdAt: row.createdAt,
  };
}

const fingerprint = (token: string): string => createHash("sha256").update(token).digest("hex").slice(0, 16);

type AuditedState = Pick<Device, "fcmToken" | "deviceType" | "deviceName" | "appVersion" | "osVersion" | "isActive">;

function auditValues(state: AuditedState): Record<string, unknown> {
  return {
    fcm_token_fingerprint: state.fcmToken ? fingerprint(state.fcmToken) : null,
    device_type: state.deviceType,
    device_name: state.deviceName,
    app_version: state.appVersion,
    os_version: state.osVersion,
    is_active: state.isActive,
  };
}

/** The audit entry of a change to `row` (owned by row.userId), or null when nothing audited changed. */
function changeEntry(caller: Caller, action: string, row: UserDevice, before: AuditedState | null, after: AuditedState): AuditEntry | null {
  const diff = before ? changedFields(auditValues(before), auditValues(after)) : { oldValues: null, newValues: nonNull(auditValues(after)) };
  if (!diff) return null;
  const actorId = callerUserId(caller);
  return audited(caller, {
    userId: row.userId,
    // Set when the caller changed another user's device (it claimed that device's token).
    actorId: actorId === row.userId ? null : actorId,
    action,
    entityType: "device",
    entityId: row.deviceId,
    ...diff,
  });
}

function nonNull(values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== null));
}

/** Namespace of the advisory locks on FCM tokens (the first key of pg_advisory_xact_lock(int, int)). */
const FCM_TOKEN_LOCK = 0x46434d; // "FCM"

export function createDevicesDomain({ sequelize, models }: DevicesDomainDeps): DevicesDomain {
  /**
   * Writes the audit rows of device changes in the transaction that makes them. Devices are
   * not part of the user snapshot sent to external services, so no outbox row.
   */
  async function record(entries: Array<AuditEntry | null>, transaction: Transaction): Promise<void> {
    await writeAudit(models, entries.filter((e): e is AuditEntry => e !== null), transaction);
  }

  /**
   * Serialises the claims of one FCM token. Row locks alone cannot: two new devices claiming
   * it concurrently have no row to lock yet. Taken first, before any row lock, so that it
   * never waits while holding one (a hash collision only serialises two unrelated claims).
   */
  async function lockToken(fcmToken: string, transaction: Transaction): Promise<void> {
    await sequelize.query("SELECT pg_advisory_xact_lock(:namespace, hashtext(:fcmToken))", {
      replacements: { namespace: FCM_TOKEN_LOCK, fcmToken },
      type: QueryTypes.SELECT,
      transaction,
    });
  }

  /** Inserts the device unless (user, device_id) exists; true when this call inserted it. */
  async function insertIfMissing(userId: string, r: Registration, now: Date, transaction: Transaction): Promise<boolean> {
    const inserted = await sequelize.query(
      `INSERT INTO user_devices (user_id, device_id, fcm_token, device_type, device_name, app_version, os_version, is_active, last_used, created_at, updated_at)
       VALUES (:userId, :deviceId, :fcmToken, :deviceType, :deviceName, :appVersion, :osVersion, true, :now, :now, :now)
       ON CONFLICT (user_id, device_id) DO NOTHING
       RETURNING id`,
      { replacements: { userId, ...r, now }, type: QueryTypes.SELECT, transaction },
    );
    return inserted.length === 1;
  }

  async function register(caller: Caller, input: RegisterDeviceInput): Promise<Device> {
    const userId = callerUserId(caller);
    const r = validateRegistration(input);

    return runTransaction(sequelize, caller.signal, async (transaction) => {
      await lockToken(r.fcmToken, transaction);
      const now = new Date();
      const created = await insertIfMissing(userId, r, now, transaction);
      // The caller's device and every holder of the token, locked in one ordered statement
      // (concurrent registrations lock shared rows in the same order: no deadlock).
      const rows = await models.UserDevice.findAll({
        where: { [Op.or]: [{ userId, deviceId: r.deviceId }, { fcmToken: r.fcmToken }] },
        order: [["id", "ASC"]],
        lock: transaction.LOCK.UPDATE,
        transaction,
      });
      const own = rows.find((row) => row.userId === userId && row.deviceId === r.deviceId)!;
      const entries: Array<AuditEntry | null> = [];

      if (created) {
        entries.push(changeEntry(caller, "device.registered", own, null, deviceOf(own)));
      } else {
        const before = deviceOf(own);
        await own.update({ ...r, isActive: true, lastUsed: now }, { transaction });
        entries.push(changeEntry(caller, "device.updated", own, before, deviceOf(own)));
      }

      for (const holder of rows.filter((row) => row !== own)) {
        const before = deviceOf(holder);
        await holder.update({ fcmToken: null, isActive: false }, { transaction });
        entries.push(changeEntry(caller, "device.deactivated", holder, before, deviceOf(holder)));
      }

      await record(entries, transaction);
      return deviceOf(own);
    });
  }

  async function list(caller: Caller): Promise<Device[]> {
    const rows = await models.UserDevice.findAll({
      where: { userId: callerUserId(caller), isActive: true },
      order: [
        ["lastUsed", "DESC"],
        ["id", "DESC"],
      ],
    });
    return rows.map(deviceOf);
  }

  async function deactivate(caller: Caller, rawDeviceId: string): Promise<void> {
    const userId = callerUserId(caller);
    const deviceId = validateDeviceId(rawDeviceId);

    await runTransaction(sequelize, caller.signal, async (transaction) => {
      // Scoped to the caller: another user's device answers exactly like a missing one.
      const row = await models.UserDevice.findOne({ where: { userId, deviceId }, lock: transaction.LOCK.UPDATE, transaction });
      if (!row) throw notFound("Device not found");
      const before = deviceOf(row);
      await row.update({ fcmToken: null, isActive: false }, { transaction });
      await record([changeEntry(caller, "device.deactivated", row, before, deviceOf(row))], transaction);
    });
  }

  return { register, list, deactivate };
}
