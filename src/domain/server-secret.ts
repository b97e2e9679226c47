// The server secret keys every HMAC of the service: stored OTP codes, verification tokens,
// refresh tokens. Each use derives its own subkey (HMAC of a label), so a MAC of one kind can
// never stand for another. Production must set SERVER_SECRET (config refuses otherwise);
// development and test without it generate one into `.keys/.server-secret` (git-ignored,
// mode 0600) and reuse it, so codes and sessions survive restarts and are shared by every
// local instance.
import { createHmac, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { DEV_KEYS_DIR } from "./keys.js";

export function loadServerSecret(config: Pick<Config, "secret" | "nodeEnv">, logger: Logger, devDir = DEV_KEYS_DIR): Buffer {
  if (config.secret) return Buffer.from(config.secret, "utf8");
  if (config.nodeEnv === "production") throw new Error("SERVER_SECRET is required in production");
  // Hidden, so the key ring (which reads this folder for <kid>.pem files) passes over it.
  const file = path.join(devDir, ".server-secret");
  fs.mkdirSync(devDir, { recursive: true, mode: 0o700 });
  try {
    // "wx": two processes starting together never overwrite each other's secret.
    fs.writeFileSync(file, randomBytes(32).toString("base64url"), { flag: "wx", mode: 0o600 });
    logger.warn({ file }, "SERVER_SECRET is not set: generated a development secret");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  return Buffer.from(fs.readFileSync(file, "utf8").trim(), "utf8");
}

/** A subkey of the server secret for one use, named by a versioned label. */
export function subkey(secret: Buffer, label: string): Buffer {
  return createHmac("sha256", secret).update(label).digest();
}
