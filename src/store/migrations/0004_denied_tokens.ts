// Denied access-token ids (src/domain/deny-list.ts) move to PostgreSQL, with Redis as their
// cache: a Redis restart without persistence must not bring a revoked service token back
// (issue 15). One row per jti, kept until the token could no longer verify anyway
// (expires_at, which includes the clock margin); deny() purges expired rows as it goes.
import type { MigrationFn } from "umzug";
import type { MigrationContext } from "./context.js";
import { runStatements } from "./context.js";

export const up: MigrationFn<MigrationContext> = ({ context }) =>
  runStatements(context.sequelize, [
    `CREATE TABLE IF NOT EXISTS denied_tokens (
      jti text PRIMARY KEY,
      expires_at timestamptz NOT NULL,
      denied_at timestamptz NOT NULL DEFAULT now()
    )`,
    "CREATE INDEX IF NOT EXISTS denied_tokens_expires_idx ON denied_tokens (expires_at)",
  ]);

export const down: MigrationFn<MigrationContext> = ({ context }) => runStatements(context.sequelize, ["DROP TABLE IF EXISTS denied_tokens"]);
