// Profiles (DESIGN §2, ProfileService): the caller's personal data, one user_profiles row per
// user. UpdateProfile is a partial update: only the fields present change and an empty
// string clears one. is_profile_complete is derived here (full_name, date_of_birth and
// address present), never taken from callers.
//
// The row is created at Register by the auth flow; a user without one reads as an empty
// profile and gets the row on the first update.
import { ForeignKeyConstraintError, type Sequelize, type Transaction } from "sequelize";
import { writeAudit } from "../store/audit-writer.js";
import { runTransaction } from "../store/transaction.js";
import { recordUserChange } from "./outbox.js";
import type { Models, UserProfile } from "../store/models/index.js";
import { audited, changedFields } from "./audit.js";
import { callerUserId, type Caller } from "./caller.js";
import { notFound, Violations } from "./errors.js";
import { characterCount, hasControlCharacters, httpsUrlProblem } from "./validation.js";

/** The editable fields; null when unset. */
export interface ProfileFields {
  fullName: string | null;
  /** Calendar date, YYYY-MM-DD. */
  dateOfBirth: string | null;
  address: string | null;
  avatarUrl: string | null;
}

export interface Profile extends ProfileFields {
  isProfileComplete: boolean;
  /** Null until the profile was first saved. */
  updatedAt: Date | null;
}

/** What to change: an absent field stays as it is, an empty string clears it. */
export type ProfileChanges = { [K in keyof ProfileFields]?: string };

export interface ProfileDomain {
  /** The caller's profile (empty when they never saved one). */
  get(caller: Caller): Promise<Profile>;
  /**
   * Applies the fields present in `changes` to the caller's profile. Every bad field is
   * reported at once (invalid_argument) and nothing is changed. When no field actually
   * changes, nothing is written, not even an audit row.
   */
  update(caller: Caller, changes: ProfileChanges): Promise<Profile>;
}

export interface ProfileDomainDeps {
  sequelize: Sequelize;
  models: Pick<Models, "UserProfile" | "UserAuditLog" | "OutboxEvent">;
}

/** True when full_name, date_of_birth and address are all present. */
export function isProfileComplete(fields: ProfileFields): boolean {
  return Boolean(fields.fullName && fields.dateOfBirth && fields.address);
}

/** Share of the profile fields filled in, 0–100 (usage statistics). */
export function profileCompleteness(fields: ProfileFields): number {
  const values = [fields.fullName, fields.dateOfBirth, fields.address, fields.avatarUrl];
  return Math.round((100 * values.filter(Boolean).length) / values.length);
}

// ---------------------------------------------------------------------------------------
// Validation

const FULL_NAME_MIN = 2;
const FULL_NAME_MAX = 100;
const ADDRESS_MAX = 255;
const MIN_AGE_YEARS = 13;
/** Older dates are typing mistakes (and PostgreSQL has no year 0). */
const EARLIEST_DATE_OF_BIRTH = "1900-01-01";

const FULL_NAME_ALPHABET = /^[\p{L}\p{M}' .-]+$/u;
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

function fullNameProblem(value: string): string | undefined {
  const length = characterCount(value);
  if (length < FULL_NAME_MIN || length > FULL_NAME_MAX) return `must be ${FULL_NAME_MIN}–${FULL_NAME_MAX} characters`;
  if (!FULL_NAME_ALPHABET.test(value)) return `may contain only letters, spaces, "'", "-" and "."`;
  if (!/\p{L}/u.test(value)) return "must contain a letter";
  return undefined;
}

/** `today` is the current UTC date, YYYY-MM-DD (so string order is date order). */
function dateOfBirthProblem(value: string, today: string): string | undefined {
  const match = ISO_DATE.exec(value);
  if (!match) return "must be a date in the form YYYY-MM-DD";
  const [year, month, day] = match.slice(1).map(Number) as [number, number, number];
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return "must be a real calendar date";
  if (value < EARLIEST_DATE_OF_BIRTH) return `must be on or after ${EARLIEST_DATE_OF_BIRTH}`;
  if (value >= today) return "must be in the past";
  // The 13th birthday, as a string; born on 29 February → 1 March in common years.
  const coming = `${String(year + MIN_AGE_YEARS).padStart(4, "0")}${value.slice(4)}`;
  if (coming > today) return `age must be at least ${MIN_AGE_YEARS}`;
  return undefined;
}

function addressProblem(value: string): string | undefined {
  if (characterCount(value) > ADDRESS_MAX) return `must be at most ${ADDRESS_MAX} characters`;
  if (hasControlCharacters(value, true)) return "must not contain control characters";
  return undefined;
}

interface FieldRule {
  /** The request field, as violations name it. */
  field: string;
  normalize(raw: string): string;
  problem(value: string, today: string): string | undefined;
}

const rules: Record<keyof ProfileFields, FieldRule> = {
  fullName: { field: "full_name", normalize: (raw) => raw.normalize("NFC").trim().replace(/ {2,}/g, " "), problem: fullNameProblem },
  dateOfBirth: { field: "date_of_birth", normalize: (raw) => raw.trim(), problem: dateOfBirthProblem },
  address: { field: "address", normalize: (raw) => raw.normalize("NFC").trim(), problem: addressProblem },
  avatarUrl: { field: "avatar_url", normalize: (raw) => raw.trim(), problem: (value) => httpsUrlProblem(value) },
};

/** The normalised new values of the fields present (null = clear); throws every violation at once. */
function validateChanges(changes: ProfileChanges, now: Date): Partial<ProfileFields> {
  const today = now.toISOString().slice(0, 10);
  const violations = new Violations();
  const values: Partial<ProfileFields> = {};
  for (const key of Object.keys(rules) as Array<keyof ProfileFields>) {
    const raw = changes[key];
    if (raw === undefined) continue;
    const rule = rules[key];
    const value = rule.normalize(raw);
    const problem = value === "" ? undefined : rule.problem(value, today);
    if (problem) violations.add(rule.field, problem);
    else values[key] = value === "" ? null : value;
  }
  violations.throwIfAny();
  return values;
}

// ---------------------------------------------------------------------------------------
// Reading and writing

function fieldsOf(row: UserProfile): ProfileFields {
  return { fullName: row.fullName ?? null, dateOfBirth: row.dateOfBirth ?? null, address: row.address ?? null, avatarUrl: row.avatarUrl ?? null };
}

function profileOf(fields: ProfileFields, updatedAt: Date | null): Profile {
  return { ...fields, isProfileComplete: isProfileComplete(fields), updatedAt };
}

const EMPTY: ProfileFields = { fullName: null, dateOfBirth: null, address: null, avatarUrl: null };

/** The profile a user_profiles row holds (empty when the user never saved one). */
export function profileOfRow(row: UserProfile | null): Profile {
  return row ? profileOf(fieldsOf(row), row.updatedAt) : profileOf(EMPTY, null);
}

/** Audit values use the column names, which operators read. */
function auditValues(fields: ProfileFields): Record<string, unknown> {
  return {
    full_name: fields.fullName,
    date_of_birth: fields.dateOfBirth,
    address: fields.address,
    avatar_url: fields.avatarUrl,
    is_profile_complete: isProfileComplete(fields),
  };
}

export function createProfileDomain({ sequelize, models }: ProfileDomainDeps): ProfileDomain {
  /** The caller's row, locked for the transaction; created when missing. */
  async function lockedProfile(userId: string, transaction: Transaction): Promise<UserProfile> {
    const lock = transaction.LOCK.UPDATE;
    const existing = await models.UserProfile.findByPk(userId, { transaction, lock });
    if (existing) return existing;
    try {
      // ON CONFLICT DO NOTHING: a concurrent first update may insert it first.
      await models.UserProfile.bulkCreate([{ userId }], { transaction, ignoreDuplicates: true });
    } catch (err) {
      if (err instanceof ForeignKeyConstraintError) throw notFound("User not found");
      throw err;
    }
    return models.UserProfile.findByPk(userId, { transaction, lock, rejectOnEmpty: true });
  }

  async function get(caller: Caller): Promise<Profile> {
    return profileOfRow(await models.UserProfile.findByPk(callerUserId(caller)));
  }

  async function update(caller: Caller, changes: ProfileChanges): Promise<Profile> {
    const userId = callerUserId(caller);
    const values = validateChanges(changes, new Date());
    if (Object.keys(values).length === 0) return get(caller);

    return runTransaction(sequelize, caller.signal, async (transaction) => {
      const row = await lockedProfile(userId, transaction);
      const before = fieldsOf(row);
      const after: ProfileFields = { ...before, ...values };
      const diff = changedFields(auditValues(before), auditValues(after));
      if (!diff) return profileOf(before, row.updatedAt);

      await row.update({ ...values, isProfileComplete: isProfileComplete(after) }, { transaction });
      await writeAudit(models, audited(caller, { userId, action: "profile.updated", entityType: "profile", entityId: userId, ...diff }), transaction);
      await recordUserChange(models, transaction, userId, "profile.updated");
      return profileOf(after, row.updatedAt);
    });
  }

  return { get, update };
}
