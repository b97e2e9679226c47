// Delivery of messages to people: what the domain asks for, free of any provider's shape.
import type { OtpPurpose } from "../domain/otp.js";

export type NotifyChannel = "email" | "sms";

export interface OtpNotice {
  channel: NotifyChannel;
  /** Normalised e-mail address or E.164 phone number. */
  to: string;
  code: string;
  purpose: OtpPurpose;
  /** Lifetime of the code, stated in the message. */
  ttlSeconds: number;
}

export interface MessageNotice {
  channel: NotifyChannel;
  to: string;
  /** E-mail subject; ignored by SMS. */
  subject?: string;
  text: string;
}

export interface Notifier {
  /** Resolves once the provider accepted the message; rejects with a DeliveryError otherwise. */
  sendOtp(notice: OtpNotice): Promise<void>;
  sendMessage(notice: MessageNotice): Promise<void>;
  /** Releases connections (SMTP pool); call at shutdown. */
  close(): Promise<void>;
}

/**
 * A provider refused or could not be reached. The message is safe to log: it carries the
 * channel and a status or error code, never the recipient, the text or the code.
 */
export class DeliveryError extends Error {
  override name = "DeliveryError";
  constructor(
    readonly channel: NotifyChannel,
    reason: string,
  ) {
    super(`${channel} delivery failed: ${reason}`);
  }
}
