// Lets a refresh update its session row in place (a HOT update: no new index entries).
// Every refresh sets expires_at, last_used_at and rotated_at; with expires_at in
// sessions_user_revoked_expires_idx, each refresh wrote a new entry into both indexes of the
// table, and left the old ones for vacuum. A plain (user_id) index serves the same look-ups
// (a user's sessions, filtered on the row; users hold a handful) and the foreign key's
// cascades, and no column a refresh or a revocation changes is indexed any longer. A fill
// factor of 80 leaves room on each page for the new row versions (new pages only; existing
// ones as they are rewritten). Measured: every refresh update HOT afterwards (bench/RESULTS.md,
// S12).
//
// Plain CREATE/DROP INDEX, inside the migration's transaction: they hold a write lock on
// sessions while the index builds (0.6 s for the 1,035,158 sessions of the bench's million-user
// database).
import type { MigrationFn } from "umzug";
import type { MigrationContext } from "./context.js";
import { runStatements } from "./context.js";

export const up: MigrationFn<MigrationContext> = ({ context }) =>
  runStatements(context.sequelize, [
    "CREATE INDEX IF NOT EXISTS sessions_user_idx ON sessions (user_id)",
    "DROP INDEX IF EXISTS sessions_user_revoked_expires_idx",
    "ALTER TABLE sessions SET (fillfactor = 80)",
  ]);

export const down: MigrationFn<MigrationContext> = ({ context }) =>
  runStatements(context.sequelize, [
    "CREATE INDEX IF NOT EXISTS sessions_user_revoked_expires_idx ON sessions (user_id, revoked_at, expires_at)",
    "DROP INDEX IF EXISTS sessions_user_idx",
    "ALTER TABLE sessions RESET (fillfactor)",
  ]);
