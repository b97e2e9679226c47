// Development delivery: the message goes to the log as a JSON line carrying "otp" and
// "identifier", so a developer (or a test) can read the code. Refused in production, where
// it would print every code to the log shipper.
import type { NodeEnv } from "../config.js";
import type { Logger } from "../logger.js";
import { lifetime } from "./templates.js";
import type { NotifyChannel, Notifier } from "./types.js";

export function createLogSink(channel: NotifyChannel, nodeEnv: NodeEnv, logger: Logger): Notifier {
  if (nodeEnv === "production") throw new Error(`the log sink cannot deliver ${channel} messages in production: configure a provider`);
  const log = logger.child({ component: "notify", channel, sink: "log" });
  log.warn(`no ${channel} provider configured: ${channel} messages, codes included, are written to this log`);
  return {
    async sendOtp({ to, code, purpose, ttlSeconds }) {
      // Top-level "otp" on purpose: the logger redacts "*.otp" (nested), not this field.
      log.info({ identifier: to, otp: code, purpose, expires_in: ttlSeconds }, `OTP for ${to}: ${code} (expires in ${lifetime(ttlSeconds)}; development log sink)`);
    },
    async sendMessage({ to, subject, text }) {
      log.info({ identifier: to, subject, text }, "message (development log sink)");
    },
    async close() {},
  };
}
