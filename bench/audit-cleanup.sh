#!/usr/bin/env bash
# The audit cleanup on ROWS (10,000,000) audit rows spread evenly over the last 730 days
# (half of them past the 365-day retention), seeded like bench/database.ts (one INSERT …
# SELECT over generate_series), in a scratch database dropped at the end (bench/RESULTS.md,
# "Audit log cleanup"):
#   before: the former cleanup-expired-audit-logs batch statement (row DELETE, JOB_BATCH_SIZE
#           500, one commit per batch) on the unpartitioned table, until every expired row is gone;
#   then:   migration 0007 converts the rows left;
#   after:  the expired months are filled again with the same rows as before (each built as a
#           plain table and attached: a second row-by-row seed would take as long as the first),
#           and `npm run job -- cleanup-expired-audit-logs` drops them.
# usage: bench/audit-cleanup.sh [rows]   (PostgreSQL at PG_ADMIN_URL, Redis at REDIS_URL)
# STAGE=after DATABASE=<name> resumes on a database seeded and cleaned by the first stage.
set -euo pipefail
ROWS=${1:-10000000}
ADMIN=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=${DATABASE:-identity_bench_audit_$$}
export DATABASE_URL=${ADMIN%/*}/$DB REDIS_KEY_PREFIX="bench-audit-$$:" LOG_LEVEL=warn
trap 'psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DB"' EXIT
psql_db() { psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qAt "$@"; }
now() { date +%s.%N; }
took() { echo "scale=1; ($(now) - $1) / 1" | bc; }
# Row i of the seed, as bench/database.ts writes audit rows (user, session, entity).
ROW="md5((i % 1000000)::text)::uuid, 'session.created', 'session', md5(i::text), md5(i::text)::uuid, now() - (i % 730) * interval '1 day' - (i % 86400) * interval '1 second'"
COLS="user_id, action, entity_type, entity_id, session_id, created_at"

if [ "${STAGE:-}" != after ]; then
  npm run -s migrate >/dev/null && npm run -s migrate -- down >/dev/null # the unpartitioned table (0007 reverted)
  t=$(now)
  psql_db -c "INSERT INTO user_audit_logs ($COLS) SELECT $ROW FROM generate_series(1, $ROWS) AS i" -c "VACUUM (ANALYZE) user_audit_logs" -c "CHECKPOINT"
  echo "seeded $ROWS rows in $(took "$t") s; expired: $(psql_db -c "SELECT count(*) FROM user_audit_logs WHERE created_at < now() - interval '365 days'")"
  psql_db -c "CREATE PROCEDURE old_cleanup(cutoff timestamptz, size int) LANGUAGE plpgsql AS \$\$
    DECLARE n int; total bigint := 0; batches int := 0;
    BEGIN
      LOOP
        WITH doomed AS (SELECT id FROM user_audit_logs WHERE created_at < cutoff ORDER BY created_at LIMIT size FOR UPDATE SKIP LOCKED),
             gone AS (DELETE FROM user_audit_logs a USING doomed WHERE a.id = doomed.id RETURNING 1)
        SELECT count(*) INTO n FROM gone;
        total := total + n; batches := batches + 1;
        COMMIT;
        EXIT WHEN n < size;
      END LOOP;
      RAISE NOTICE 'deleted % rows in % batches', total, batches;
    END \$\$"
  t=$(now)
  psql_db -c "CALL old_cleanup(now() - interval '365 days', 500)"
  echo "before: row DELETE cleanup $(took "$t") s"
  psql_db -c "DROP PROCEDURE old_cleanup"
fi

t=$(now)
npm run -s migrate >/dev/null
echo "migration 0007 (convert $(psql_db -c "SELECT count(*) FROM user_audit_logs") rows): $(took "$t") s"
t=$(now)
psql_db <<SQL
CREATE UNLOGGED TABLE expired_seed AS SELECT * FROM (SELECT $ROW FROM generate_series(1, $ROWS) AS i) r($COLS) WHERE created_at < now() - interval '365 days';
DO \$\$
DECLARE m timestamptz; name text;
BEGIN
  FOR m IN SELECT generate_series(date_trunc('month', min(created_at) AT TIME ZONE 'UTC'), date_trunc('month', (now() - interval '365 days') AT TIME ZONE 'UTC') - interval '1 month', interval '1 month') AT TIME ZONE 'UTC' FROM expired_seed LOOP
    name := 'user_audit_logs_y' || to_char(m AT TIME ZONE 'UTC', 'YYYY"m"MM');
    EXECUTE format('CREATE TABLE %I (LIKE user_audit_logs INCLUDING DEFAULTS)', name);
    EXECUTE format('INSERT INTO %I ($COLS) SELECT $COLS FROM expired_seed WHERE created_at >= %L AND created_at < %L', name, m, m + interval '1 month');
    EXECUTE format('ALTER TABLE user_audit_logs ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', name, m, m + interval '1 month');
  END LOOP;
END \$\$;
DROP TABLE expired_seed;
VACUUM (ANALYZE) user_audit_logs;
CHECKPOINT;
SQL
echo "refilled the expired months in $(took "$t") s: $(psql_db -c "SELECT count(*) FROM user_audit_logs") rows, expired: $(psql_db -c "SELECT count(*) FROM user_audit_logs WHERE created_at < now() - interval '365 days'")"
t=$(now)
npm run -s job -- cleanup-expired-audit-logs 2>/dev/null
echo "after: partition-drop cleanup $(took "$t") s (process start included); rows left: $(psql_db -c "SELECT count(*) FROM user_audit_logs")"
