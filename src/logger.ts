// Structured JSON logs (pino). Message bodies, codes and tokens are never logged outside
// development; redact the usual carriers just in case.
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { service: "identity", ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ["authorization", "*.authorization", "headers.authorization", "*.refresh_token", "*.access_token", "*.otp", "*.document_number"],
      censor: "[redacted]",
    },
  });
}
