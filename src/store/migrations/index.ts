// The migrations, in the order they apply. A new migration is a new file here and a new
// entry at the end of this list; an applied migration is never edited (its name is the key
// recorded in schema_migrations).
import type { RunnableMigration } from "umzug";
import type { MigrationContext } from "./context.js";
import * as initial from "./0001_initial.js";
import * as jobs from "./0002_jobs.js";
import * as sessionsHotUpdates from "./0003_sessions_hot_updates.js";
import * as deniedTokens from "./0004_denied_tokens.js";
import * as accountDeletion from "./0005_account_deletion.js";
import * as adminUserSearch from "./0006_admin_user_search.js";
import * as partitionAuditLogs from "./0007_partition_audit_logs.js";

export const migrations: ReadonlyArray<RunnableMigration<MigrationContext>> = [
  { name: "0001_initial", ...initial },
  { name: "0002_jobs", ...jobs },
  { name: "0003_sessions_hot_updates", ...sessionsHotUpdates },
  { name: "0004_denied_tokens", ...deniedTokens },
  { name: "0005_account_deletion", ...accountDeletion },
  { name: "0006_admin_user_search", ...adminUserSearch },
  { name: "0007_partition_audit_logs", ...partitionAuditLogs },
];
