// A service token minted the way operators mint one: `npm run token:service -- <name>`,
// run with the server's environment.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export async function mintServiceToken(env: Record<string, string>, name: string): Promise<string> {
  const { stdout } = await run(join(process.cwd(), "node_modules/.bin/tsx"), ["src/cli/token-service.ts", name], { env: { ...process.env, ...env } });
  return stdout.trim();
}
