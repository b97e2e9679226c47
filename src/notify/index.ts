// Picks a delivery adapter per channel: the configured provider, else (outside production
// only) the log sink.
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { createEmailNotifier } from "./email.js";
import { createLogSink } from "./log-sink.js";
import { createSmsNotifier } from "./sms.js";
import type { Notifier, NotifyChannel } from "./types.js";

export { DeliveryError, type MessageNotice, type Notifier, type NotifyChannel, type OtpNotice } from "./types.js";

export function createNotifier(config: Pick<Config, "nodeEnv" | "smtpUrl" | "emailFrom" | "sms">, logger: Logger): Notifier {
  const { smtpUrl, sms } = config;
  const byChannel: Record<NotifyChannel, Notifier> = {
    email: smtpUrl ? createEmailNotifier({ smtpUrl, from: config.emailFrom }) : createLogSink("email", config.nodeEnv, logger),
    sms: sms ? createSmsNotifier(sms) : createLogSink("sms", config.nodeEnv, logger),
  };
  return {
    sendOtp: (notice) => byChannel[notice.channel].sendOtp(notice),
    sendMessage: (notice) => byChannel[notice.channel].sendMessage(notice),
    async close() {
      await Promise.all(Object.values(byChannel).map((n) => n.close()));
    },
  };
}
