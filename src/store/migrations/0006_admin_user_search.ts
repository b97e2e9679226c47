// Staff user search (AdminService.ListUsers, DESIGN §10): a case-insensitive prefix of the
// username, e-mail or phone number must stay index-backed on millions of users. The unique
// lower() indexes of 0001 compare whole values under the database's collation, which LIKE
// 'abc%' cannot use (outside the C collation): these pattern-ops indexes can. The query
// ORs the three prefix conditions (a BitmapOr of the three indexes) and orders the matches
// newest first; without a query, (date_joined, id) is walked in order (keyset pages).
import type { MigrationFn } from "umzug";
import type { MigrationContext } from "./context.js";
import { runStatements } from "./context.js";

export const up: MigrationFn<MigrationContext> = ({ context }) =>
  runStatements(context.sequelize, [
    "CREATE INDEX IF NOT EXISTS users_username_prefix_idx ON users (lower(username) text_pattern_ops)",
    "CREATE INDEX IF NOT EXISTS users_email_prefix_idx ON users (lower(email) text_pattern_ops)",
    "CREATE INDEX IF NOT EXISTS users_phone_number_prefix_idx ON users (phone_number text_pattern_ops)",
    "CREATE INDEX IF NOT EXISTS users_date_joined_id_idx ON users (date_joined, id)",
  ]);

export const down: MigrationFn<MigrationContext> = ({ context }) =>
  runStatements(context.sequelize, [
    "DROP INDEX IF EXISTS users_date_joined_id_idx",
    "DROP INDEX IF EXISTS users_phone_number_prefix_idx",
    "DROP INDEX IF EXISTS users_email_prefix_idx",
    "DROP INDEX IF EXISTS users_username_prefix_idx",
  ]);
