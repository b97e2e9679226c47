// Mints a service token for a backend-to-backend caller (DESIGN §4):
//
//   npm run --silent token:service -- <name> [--ttl-days N]
//
// <name> is 1-64 of a-z, 0-9 and "-" and becomes sub "service:<name>" with roles
// ["service"]; the token lives 30 days unless --ttl-days (1-365) says otherwise. It is
// signed with the signing key of the environment's configuration (JWT_KEYS_DIR,
// JWT_SIGNING_KID; run it where the service's environment is set), so it verifies on
// every instance sharing those keys. Only the token goes to stdout; its jti and expiry go
// to stderr: keep them, denying that jti is how the token is withdrawn before it expires:
//
//   npm run --silent token:service -- --revoke <jti> --expires <unix seconds>
//
// writes the denial to PostgreSQL (durable) and to the Redis cache (effective at once on
// every instance; see src/domain/deny-list.ts).
import { parseArgs } from "node:util";
import { pino } from "pino";
import { loadConfig } from "../config.js";
import { createDenyList } from "../domain/deny-list.js";
import { loadKeyRing } from "../domain/keys.js";
import { createTokenIssuer, SERVICE_NAME, SERVICE_SUBJECT_PREFIX } from "../domain/tokens.js";
import { openStores } from "../store/index.js";

const DEFAULT_TTL_DAYS = 30;
const MAX_TTL_DAYS = 365;
const USAGE = "usage: npm run --silent token:service -- <name> [--ttl-days N]\n       npm run --silent token:service -- --revoke <jti> --expires <unix seconds>\n";

class UsageError extends Error {}

type Command = { mint: { name: string; ttlDays: number } } | { revoke: { jti: string; expiresAt: number } };

function parse(argv: string[]): Command {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { "ttl-days": { type: "string" }, revoke: { type: "string" }, expires: { type: "string" } } });
  if (values.revoke !== undefined) {
    if (positionals.length || values["ttl-days"] !== undefined) throw new UsageError("--revoke takes only --expires");
    const jti = values.revoke;
    if (!/^[A-Za-z0-9_-]{8,128}$/.test(jti)) throw new UsageError("--revoke expects the token's jti (as printed when it was minted)");
    const expires = values.expires ?? "";
    if (!/^\d{9,11}$/.test(expires)) throw new UsageError("--expires expects the token's expiry in unix seconds (as printed when it was minted)");
    return { revoke: { jti, expiresAt: Number(expires) } };
  }
  if (values.expires !== undefined) throw new UsageError("--expires goes with --revoke");
  if (positionals.length !== 1) throw new UsageError("expected exactly one service name");
  const name = positionals[0]!;
  if (!SERVICE_NAME.test(name)) throw new UsageError(`service name "${name}" must be 1-64 characters of a-z, 0-9 and "-"`);
  const rawTtl = values["ttl-days"] ?? String(DEFAULT_TTL_DAYS);
  const ttlDays = Number(rawTtl);
  if (!/^\d+$/.test(rawTtl) || ttlDays < 1 || ttlDays > MAX_TTL_DAYS) throw new UsageError(`--ttl-days must be a whole number from 1 to ${MAX_TTL_DAYS}`);
  return { mint: { name, ttlDays } };
}

async function main(): Promise<void> {
  const command = parse(process.argv.slice(2));
  const config = loadConfig();
  // Logs go to stderr so that stdout carries the token alone.
  const logger = pino({ level: config.logLevel, base: { service: "identity", cli: "token:service" } }, pino.destination(2));
  if ("revoke" in command) {
    const { jti, expiresAt } = command.revoke;
    const stores = await openStores(config, logger);
    try {
      await createDenyList(stores).deny(jti, expiresAt);
    } finally {
      await stores.close();
    }
    process.stderr.write(`service token ${jti} denied until ${new Date(expiresAt * 1000).toISOString()}\n`);
    return;
  }
  const { name, ttlDays } = command.mint;
  const issuer = createTokenIssuer(loadKeyRing(config, logger), config);
  const issued = issuer.issueAccess({ sub: `${SERVICE_SUBJECT_PREFIX}${name}`, roles: ["service"], kind: "service", ttlSeconds: ttlDays * 86400 });
  process.stdout.write(`${issued.token}\n`);
  process.stderr.write(`service token for "${name}": jti ${issued.jti}, expires ${new Date(issued.expiresAt * 1000).toISOString()} (${issued.expiresAt})\n`);
}

await main().catch((e: unknown) => {
  const usage = e instanceof UsageError || /^ERR_PARSE_ARGS_/.test(String((e as NodeJS.ErrnoException).code));
  process.stderr.write(`token:service: ${(e as Error).message}\n${usage ? USAGE : ""}`);
  process.exitCode = usage ? 2 : 1;
});
