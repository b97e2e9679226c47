// Account deletion (DESIGN §10): when a user asked for their account to be deleted, when it
// is due for erasure (deletion_scheduled_for, shown to staff by GetUser), and when the
// purge-deleted-accounts job erased the person (erased_at). An erased account keeps its row,
// anonymous — its id still carries the points ledger, a financial record — so username, like
// email and phone_number, may now be null.
//
// Indexes: the job finds due accounts through a partial index that holds only pending
// deletions; ListMyActivity pages a user's audit rows by id (keyset, newest first).
import type { MigrationFn } from "umzug";
import type { MigrationContext } from "./context.js";
import { runStatements } from "./context.js";

export const up: MigrationFn<MigrationContext> = ({ context }) =>
  runStatements(context.sequelize, [
    "ALTER TABLE users ADD COLUMN IF NOT EXISTS deletion_requested_at timestamptz",
    "ALTER TABLE users ADD COLUMN IF NOT EXISTS deletion_scheduled_for timestamptz",
    "ALTER TABLE users ADD COLUMN IF NOT EXISTS erased_at timestamptz",
    "ALTER TABLE users ALTER COLUMN username DROP NOT NULL",
    "CREATE INDEX IF NOT EXISTS users_deletion_due_idx ON users (deletion_scheduled_for) WHERE deletion_scheduled_for IS NOT NULL AND erased_at IS NULL",
    "CREATE INDEX IF NOT EXISTS user_audit_logs_user_id_idx ON user_audit_logs (user_id, id)",
  ]);

export const down: MigrationFn<MigrationContext> = ({ context }) =>
  runStatements(context.sequelize, [
    "DROP INDEX IF EXISTS user_audit_logs_user_id_idx",
    "DROP INDEX IF EXISTS users_deletion_due_idx",
    // Erased accounts have no username: they get a placeholder so that NOT NULL holds again.
    "UPDATE users SET username = 'erased_' || replace(id::text, '-', '') WHERE username IS NULL",
    "ALTER TABLE users ALTER COLUMN username SET NOT NULL",
    "ALTER TABLE users DROP COLUMN IF EXISTS erased_at",
    "ALTER TABLE users DROP COLUMN IF EXISTS deletion_scheduled_for",
    "ALTER TABLE users DROP COLUMN IF EXISTS deletion_requested_at",
  ]);
