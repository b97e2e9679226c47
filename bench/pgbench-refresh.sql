-- The two statements of a RefreshToken (S8 in bench/RESULTS.md), for pgbench: PostgreSQL's own
-- rate for them with nothing else in the way. On a copy of the bench database:
--   createdb -h 127.0.0.1 -U postgres -T identity_bench pgb
--   psql -h 127.0.0.1 -U postgres -d pgb -c "CREATE TABLE ids AS SELECT row_number() OVER () AS n, id FROM (SELECT id FROM sessions WHERE revoked_at IS NULL LIMIT 10000) s"
--   psql -h 127.0.0.1 -U postgres -d pgb -c "CREATE UNIQUE INDEX ON ids (n)"
--   pgbench -h 127.0.0.1 -U postgres -n -c 64 -j 2 -T 10 -M prepared -f bench/pgbench-refresh.sql pgb   # or -M extended
\set n random(1, 10000)
SELECT s.id, s.user_id, s.refresh_seed, s.refresh_generation, s.rotated_at, s.expires_at, s.revoked_at, s.ip_address, s.user_agent, u.is_active, u.is_staff FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = (SELECT id FROM ids WHERE n = :n);
WITH c0 AS (UPDATE sessions SET refresh_generation = refresh_generation + 1, rotated_at = now(), last_used_at = now(), expires_at = now() + interval '30 days', ip_address = '127.0.0.1', user_agent = 'bench' WHERE id = (SELECT id FROM ids WHERE n = :n) AND revoked_at IS NULL RETURNING 1), audit AS (INSERT INTO user_audit_logs (user_id, actor_id, action, entity_type, entity_id, old_values, new_values, ip_address, user_agent, session_id, created_at) SELECT * FROM (VALUES (NULL::uuid, NULL::text, 'session.refreshed'::text, 'session'::text, 'x'::text, NULL::jsonb, '{"generation":1}'::jsonb, '127.0.0.1'::text, 'bench'::text, NULL::uuid, now())) AS e WHERE EXISTS (SELECT 1 FROM c0)) SELECT EXISTS (SELECT 1 FROM c0);
