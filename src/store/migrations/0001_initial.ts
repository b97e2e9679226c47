// The initial schema (DESIGN §5). Table, column, index and constraint names are part of the
// operators' interface: they read the database directly.
//
// Every statement is idempotent (IF NOT EXISTS) so that a crash between this migration's
// commit and umzug recording it in schema_migrations only means running it again.
import type { MigrationFn } from "umzug";
import type { MigrationContext } from "./context.js";
import { runStatements } from "./context.js";

const created = "created_at timestamptz NOT NULL DEFAULT now()";
const updated = "updated_at timestamptz NOT NULL DEFAULT now()";
const deviceTypes = "('ANDROID', 'IOS', 'WEB')";

const statements = [
  `CREATE TABLE IF NOT EXISTS users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username text NOT NULL,
    email text,
    phone_number text,
    is_active boolean NOT NULL DEFAULT true,
    is_staff boolean NOT NULL DEFAULT false,
    date_joined timestamptz NOT NULL DEFAULT now(),
    last_login timestamptz,
    last_activity_at timestamptz,
    deactivated_at timestamptz,
    ${updated}
  )`,
  // Look-ups must compare lower(username) / lower(email) to use these indexes.
  `CREATE UNIQUE INDEX IF NOT EXISTS users_username_lower_key ON users (lower(username))`,
  `CREATE UNIQUE INDEX IF NOT EXISTS users_email_lower_key ON users (lower(email)) WHERE email IS NOT NULL`,
  `CREATE UNIQUE INDEX IF NOT EXISTS users_phone_number_key ON users (phone_number) WHERE phone_number IS NOT NULL`,
  `CREATE INDEX IF NOT EXISTS users_last_login_idx ON users (last_login)`,

  `CREATE TABLE IF NOT EXISTS user_profiles (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    full_name text,
    date_of_birth date,
    address text,
    avatar_url text,
    is_profile_complete boolean NOT NULL DEFAULT false,
    ${created},
    ${updated}
  )`,

  // reviewed_by has no foreign key, like the audit trail's actor: the record of who decided
  // outlives the reviewer's account (and deleting any user needs no scan of this table).
  `CREATE TABLE IF NOT EXISTS user_kyc (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    status text NOT NULL DEFAULT 'NOT_SUBMITTED'
      CONSTRAINT user_kyc_status_check CHECK (status IN ('NOT_SUBMITTED', 'PENDING', 'APPROVED', 'REJECTED')),
    document_type text
      CONSTRAINT user_kyc_document_type_check CHECK (document_type IN ('PASSPORT', 'NATIONAL_ID', 'DRIVING_LICENSE')),
    document_number text,
    document_number_last4 text,
    document_front_url text,
    document_back_url text,
    rejection_reason text,
    submitted_at timestamptz,
    verified_at timestamptz,
    reviewed_by uuid,
    reviewed_at timestamptz,
    ${created},
    ${updated},
    CONSTRAINT user_kyc_submission_check CHECK (
      status = 'NOT_SUBMITTED' OR (document_type IS NOT NULL AND document_number IS NOT NULL AND submitted_at IS NOT NULL)
    ),
    CONSTRAINT user_kyc_rejection_reason_check CHECK (status <> 'REJECTED' OR rejection_reason IS NOT NULL)
  )`,
  `CREATE INDEX IF NOT EXISTS user_kyc_status_submitted_idx ON user_kyc (status, submitted_at, user_id)`,

  `CREATE TABLE IF NOT EXISTS user_devices (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id text NOT NULL,
    fcm_token text,
    device_type text NOT NULL CONSTRAINT user_devices_device_type_check CHECK (device_type IN ${deviceTypes}),
    device_name text,
    app_version text,
    os_version text,
    is_active boolean NOT NULL DEFAULT true,
    last_used timestamptz NOT NULL DEFAULT now(),
    ${created},
    ${updated},
    CONSTRAINT user_devices_user_id_device_id_key UNIQUE (user_id, device_id)
  )`,
  // Hash, not B-tree: FCM tokens may be up to 4096 characters, beyond a B-tree entry's
  // limit, and they are only ever looked up by equality.
  `CREATE INDEX IF NOT EXISTS user_devices_fcm_token_idx ON user_devices USING hash (fcm_token) WHERE fcm_token IS NOT NULL`,
  `CREATE INDEX IF NOT EXISTS user_devices_user_active_last_used_idx ON user_devices (user_id, is_active, last_used)`,

  `CREATE TABLE IF NOT EXISTS sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Refresh tokens are derived from this seed and the generation (domain/refresh-tokens.ts);
    -- the seed is useless without the server secret.
    refresh_seed text NOT NULL,
    rotated_at timestamptz,
    refresh_generation integer NOT NULL DEFAULT 0 CONSTRAINT sessions_refresh_generation_check CHECK (refresh_generation >= 0),
    device_id text,
    device_type text CONSTRAINT sessions_device_type_check CHECK (device_type IN ${deviceTypes}),
    device_name text,
    app_version text,
    os_version text,
    ip_address text,
    user_agent text,
    ${created},
    last_used_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason text
  )`,

  `CREATE INDEX IF NOT EXISTS sessions_user_revoked_expires_idx ON sessions (user_id, revoked_at, expires_at)`,

  // No foreign key on user_id: the trail survives the deletion of its user, and events about
  // identifiers with no account (user_id null) fit too.
  `CREATE TABLE IF NOT EXISTS user_audit_logs (
    id bigserial PRIMARY KEY,
    user_id uuid,
    actor_id text,
    action text NOT NULL,
    entity_type text NOT NULL,
    entity_id text,
    old_values jsonb,
    new_values jsonb,
    ip_address text,
    user_agent text,
    session_id uuid,
    ${created}
  )`,
  `CREATE INDEX IF NOT EXISTS user_audit_logs_user_created_idx ON user_audit_logs (user_id, created_at)`,
  `CREATE INDEX IF NOT EXISTS user_audit_logs_created_idx ON user_audit_logs (created_at)`,

  `CREATE TABLE IF NOT EXISTS user_points (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    current_points bigint NOT NULL DEFAULT 0 CONSTRAINT user_points_current_points_check CHECK (current_points >= 0),
    total_points bigint NOT NULL DEFAULT 0 CONSTRAINT user_points_total_points_check CHECK (total_points >= 0),
    total_spent bigint NOT NULL DEFAULT 0 CONSTRAINT user_points_total_spent_check CHECK (total_spent >= 0),
    last_updated timestamptz NOT NULL DEFAULT now()
  )`,

  // request_fingerprint is a hash of (user_id, delta, reason): a retry with the same
  // idempotency_key but other arguments is told apart from a genuine retry.
  `CREATE TABLE IF NOT EXISTS points_transactions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    delta bigint NOT NULL CONSTRAINT points_transactions_delta_check CHECK (delta <> 0),
    balance_after bigint NOT NULL CONSTRAINT points_transactions_balance_after_check CHECK (balance_after >= 0),
    reason text NOT NULL,
    idempotency_key text NOT NULL CONSTRAINT points_transactions_idempotency_key_key UNIQUE,
    request_fingerprint text NOT NULL,
    actor_id text,
    ${created}
  )`,
  `CREATE INDEX IF NOT EXISTS points_transactions_user_created_idx ON points_transactions (user_id, created_at DESC, id DESC)`,
];

export const up: MigrationFn<MigrationContext> = ({ context }) => runStatements(context.sequelize, statements);

export const down: MigrationFn<MigrationContext> = ({ context }) =>
  runStatements(context.sequelize, [
    "DROP TABLE IF EXISTS points_transactions, user_points, user_audit_logs, sessions, user_devices, user_kyc, user_profiles, users",
  ]);
