// Structured JSON logs (pino). Message bodies, codes and tokens are never logged outside
// development; redact the usual carriers just in case.
import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

/** `destination` defaults to stdout; tests pass a stream to read the lines back. */
export function createLogger(level: string, base: Record<string, unknown> = {}, destination?: DestinationStream): Logger {
  return pino({
    level,
    base: { service: "identity", ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ["authorization", "*.authorization", "headers.authorization", "*.refresh_token", "*.access_token", "*.otp", "*.document_number"],
      censor: "[redacted]",
    },
  }, destination);
}
