// Tables of the scheduled jobs (DESIGN §6; README.jobs.md). Agenda's own job table
// (agenda_jobs, PostgreSQL store only) is created by its backend, not here: its shape belongs
// to the library version.
//
// - outbox: the transactional outbox. One row per user change, inserted in the transaction
//   of the change (src/domain/outbox.ts); a statement trigger NOTIFYs `identity_outbox` on
//   commit so that a worker syncs right away instead of at its next poll.
// - webhook_deliveries: the sync job's per-endpoint delivery state. At most one pending row
//   per (user, endpoint): later changes of that user fold into it (change_seq counts them).
//   Delivered rows are deleted; dead-lettered rows stay (status 'dead', last_error) for staff.
// - notification_log: reminders sent, for "never twice within 7 days".
// - analytics_reports: one report per user and period; a rerun upserts.
//
// Idempotent statements, as in 0001.
import type { MigrationFn } from "umzug";
import type { MigrationContext } from "./context.js";
import { runStatements } from "./context.js";

const statements = [
  // No foreign key: a change is announced even when its user is gone by the time it syncs.
  `CREATE TABLE IF NOT EXISTS outbox (
    id bigserial PRIMARY KEY,
    user_id uuid NOT NULL,
    reason text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  )`,
  `CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('identity_outbox', '');
      RETURN NULL;
    END
  $$`,
  // FOR EACH STATEMENT, and PostgreSQL folds identical notifications of one transaction: one
  // NOTIFY per committing transaction, however many rows it inserted.
  `DROP TRIGGER IF EXISTS outbox_notify ON outbox`,
  `CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()`,

  `CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id bigserial PRIMARY KEY,
    user_id uuid NOT NULL,
    endpoint text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CONSTRAINT webhook_deliveries_status_check CHECK (status IN ('pending', 'dead')),
    reasons text[] NOT NULL DEFAULT '{}',
    change_seq integer NOT NULL DEFAULT 1,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz,
    last_attempt_at timestamptz,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
  )`,
  `CREATE UNIQUE INDEX IF NOT EXISTS webhook_deliveries_pending_key ON webhook_deliveries (user_id, endpoint) WHERE status = 'pending'`,
  `CREATE INDEX IF NOT EXISTS webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at, id) WHERE status = 'pending'`,
  `CREATE INDEX IF NOT EXISTS webhook_deliveries_dead_idx ON webhook_deliveries (updated_at DESC) WHERE status = 'dead'`,

  // channel 'sending' marks a reminder claimed but not yet handed to a provider; it counts as
  // sent, so a crash mid-send skips a reminder rather than sending it twice.
  `CREATE TABLE IF NOT EXISTS notification_log (
    id bigserial PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind text NOT NULL,
    channel text NOT NULL CONSTRAINT notification_log_channel_check CHECK (channel IN ('sending', 'push', 'email')),
    sent_at timestamptz NOT NULL DEFAULT now()
  )`,
  `CREATE INDEX IF NOT EXISTS notification_log_user_kind_sent_idx ON notification_log (user_id, kind, sent_at)`,

  `CREATE TABLE IF NOT EXISTS analytics_reports (
    id bigserial PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    period_start timestamptz NOT NULL,
    period_end timestamptz NOT NULL,
    stats jsonb NOT NULL,
    generated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT analytics_reports_period_check CHECK (period_end > period_start),
    CONSTRAINT analytics_reports_user_period_key UNIQUE (user_id, period_start, period_end)
  )`,
  `CREATE INDEX IF NOT EXISTS analytics_reports_period_idx ON analytics_reports (period_start, period_end)`,

  // deactivate-inactive-users: the candidates, in the order the job reads them. The
  // expression is the job's "last sign of life" (see src/jobs/deactivate-inactive-users.ts).
  `CREATE INDEX IF NOT EXISTS users_last_seen_idx ON users ((COALESCE(GREATEST(last_login, last_activity_at), date_joined)), id) WHERE is_active AND NOT is_staff`,
];

export const up: MigrationFn<MigrationContext> = ({ context }) => runStatements(context.sequelize, statements);

export const down: MigrationFn<MigrationContext> = ({ context }) =>
  runStatements(context.sequelize, [
    "DROP INDEX IF EXISTS users_last_seen_idx",
    "DROP TABLE IF EXISTS analytics_reports, notification_log, webhook_deliveries, outbox",
    "DROP FUNCTION IF EXISTS outbox_notify()",
  ]);
