// Accounts: the view callers get, lookups by identifier, and the username rule.
import type { Sequelize, Transaction } from "sequelize";
import { queryPrepared } from "../store/index.js";
import { createBatchLoader } from "./batch-loader.js";
import type { Identifier } from "./identifiers.js";

export interface UserView {
  id: string;
  username: string;
  email: string;
  phoneNumber: string;
  isActive: boolean;
  isStaff: boolean;
  dateJoined: Date;
  lastLogin: Date | null;
}

export const USERNAME = /^[A-Za-z0-9._]{3,30}$/;

/** The columns of a UserView, of the users table aliased `u`. */
export const USER_VIEW_COLUMNS = "u.id, u.username, u.email, u.phone_number, u.is_active, u.is_staff, u.date_joined, u.last_login";

export interface UserRow {
  id: string;
  /** Null for an erased account. */
  username: string | null;
  email: string | null;
  phone_number: string | null;
  is_active: boolean;
  is_staff: boolean;
  date_joined: Date;
  last_login: Date | null;
}

export const viewOf = (r: UserRow): UserView => ({
  id: r.id,
  username: r.username ?? "",
  email: r.email ?? "",
  phoneNumber: r.phone_number ?? "",
  isActive: r.is_active,
  isStaff: r.is_staff,
  dateJoined: r.date_joined,
  lastLogin: r.last_login,
});

/** The accounts of these ids (one query, inside `transaction` if given; ids with no account are absent from the map). */
export async function loadUsers(sequelize: Sequelize, ids: readonly string[], transaction?: Transaction): Promise<Map<string, UserView>> {
  const rows = await queryPrepared<UserRow>(sequelize, `SELECT ${USER_VIEW_COLUMNS} FROM users u WHERE u.id = ANY($1::uuid[])`, [ids], transaction);
  return new Map(rows.map((r) => [r.id, viewOf(r)]));
}

/**
 * Finds the account owning a normalised identifier, if any. Look-ups made during one turn of
 * the event loop go out as one query (batch-loader.ts): sign-in storms make many at once.
 */
export function createIdentifierLookup(sequelize: Sequelize): (id: Identifier) => Promise<UserView | undefined> {
  const load = createBatchLoader(async (keys: string[]) => {
    const phones: string[] = [];
    const emails: string[] = [];
    for (const key of keys) (key.startsWith("email:") ? emails : phones).push(key.slice(key.indexOf(":") + 1));
    const rows = await queryPrepared<UserRow>(
      sequelize,
      `SELECT ${USER_VIEW_COLUMNS} FROM users u WHERE u.phone_number = ANY($1::text[]) OR lower(u.email) = ANY($2::text[])`,
      [phones, emails],
    );
    const found = new Map<string, UserView>();
    for (const row of rows) {
      const view = viewOf(row);
      if (row.phone_number) found.set(`phone:${row.phone_number}`, view);
      if (row.email) found.set(`email:${row.email.toLowerCase()}`, view);
    }
    return found;
  });
  return (id) => load(`${id.kind}:${id.value}`);
}
