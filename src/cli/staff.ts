// Grants or revokes staff (who may review KYC and adjust points):
//
//   npm run --silent staff -- grant <username | e-mail | +phone>
//   npm run --silent staff -- revoke <username | e-mail | +phone>
//
// Runs against the configured database (run it with the service's environment); takes
// effect on the user's next call. The change is audited with actor "cli:staff:<OS user>".
import { userInfo } from "node:os";
import { pino } from "pino";
import { loadConfig } from "../config.js";
import { DomainError } from "../domain/errors.js";
import { setStaff } from "../domain/staff.js";
import { openStores } from "../store/index.js";

const USAGE = "usage: npm run --silent staff -- grant|revoke <username | e-mail | +phone>\n";

async function main(): Promise<number> {
  const [verb, who, ...rest] = process.argv.slice(2);
  if ((verb !== "grant" && verb !== "revoke") || !who || rest.length) {
    process.stderr.write(USAGE);
    return 2;
  }
  const config = loadConfig();
  const logger = pino({ level: config.logLevel, base: { service: "identity", cli: "staff" } }, pino.destination(2));
  const stores = await openStores(config, logger);
  try {
    const user = await setStaff(stores.sequelize, stores.models, who, verb === "grant", `cli:staff:${userInfo().username}`);
    process.stdout.write(`${JSON.stringify({ id: user.id, username: user.username, is_staff: user.isStaff })}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof DomainError)) throw err;
    process.stderr.write(`staff: ${err.message}\n`);
    return 1;
  } finally {
    await stores.close();
  }
}

process.exitCode = await main();
