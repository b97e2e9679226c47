// Identifiers a person proves they own: an e-mail address or a phone number. Everything
// that keys on an identifier (OTP codes, rate limits, accounts) sees the normalised form
// only, so " Foo@Example.COM " and "foo@example.com" are one identifier, as are
// "+44 20 7946 0958" and "0044 20 7946 0958".
import { parsePhoneNumberFromString } from "libphonenumber-js";
import { domainToASCII } from "node:url";
import { invalid } from "./errors.js";
import type { ExpiringMap } from "./expiring-map.js";

export type IdentifierKind = "email" | "phone";

export interface Identifier {
  kind: IdentifierKind;
  /** Lower-cased e-mail address, or phone number in E.164 ("+12133734253"). */
  value: string;
}

export interface NormalizeOptions {
  /** Field named in the invalid_argument violation. */
  field?: string;
  /**
   * E.164 prefixes (e.g. "+1555") whose numbers are accepted when merely *possible*
   * (right length for the country) although the numbering plan says they are unassigned:
   * the reserved ranges used as OTP test identifiers fail libphonenumber's isValid().
   */
  testPhonePrefixes?: readonly string[];
  /**
   * Remembers valid phone numbers (input as given, trimmed → E.164) for these options:
   * libphonenumber's validation is a noticeable part of a sign-in, which normalises the same
   * number on each of its three calls.
   */
  phoneMemo?: ExpiringMap<string, string>;
}

const MAX_EMAIL = 254; // RFC 5321 forward-path limit, less the angle brackets
const MAX_LOCAL = 64;
const MAX_PHONE_INPUT = 32;
// RFC 5322 dot-atom; quoted local parts and non-ASCII local parts (SMTPUTF8) are refused
// on purpose: they are rare in the wild and a favourite of parser-confusion tricks.
const LOCAL_PART = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const DOMAIN_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
// A top-level label starts with a letter: this refuses IP-literal domains like "1.2.3.4".
const TOP_LABEL = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])$/;
const PHONE_CHARS = /^\+?[0-9 ().\-]+$/;

function fail(field: string, description: string): never {
  throw invalid([{ field, description }]);
}

/** Trimmed, lower-cased, validated e-mail address; an internationalised domain becomes punycode. */
export function normalizeEmail(raw: string, opts: NormalizeOptions = {}): string {
  const field = opts.field ?? "email";
  const s = raw.trim().toLowerCase();
  const at = s.lastIndexOf("@");
  if (s.length > MAX_EMAIL) fail(field, `must be at most ${MAX_EMAIL} characters`);
  if (at <= 0 || at === s.length - 1) fail(field, "must be an e-mail address");
  const local = s.slice(0, at);
  const domain = domainToASCII(s.slice(at + 1));
  if (local.length > MAX_LOCAL || !LOCAL_PART.test(local)) fail(field, "must be an e-mail address");
  const labels = domain.split(".");
  const top = labels[labels.length - 1] ?? "";
  if (labels.length < 2 || !labels.every((l) => DOMAIN_LABEL.test(l)) || !TOP_LABEL.test(top)) fail(field, "must be an e-mail address with a valid domain");
  const email = `${local}@${domain}`;
  // Checked again: punycode makes an internationalised domain longer.
  if (email.length > MAX_EMAIL) fail(field, `must be at most ${MAX_EMAIL} characters`);
  return email;
}

const PHONE_MEMO_MS = 10 * 60_000;

/**
 * Phone number in international form ("+…" or "00…", spaces, dots, dashes and brackets
 * allowed) → E.164. There is no default country: a national number is ambiguous.
 */
export function normalizePhone(raw: string, opts: NormalizeOptions = {}): string {
  const field = opts.field ?? "phone_number";
  const description = "must be a phone number in international format, e.g. +12133734253";
  let s = raw.trim();
  const known = opts.phoneMemo?.get(s);
  if (known) return known;
  const input = s;
  if (s.length > MAX_PHONE_INPUT || !PHONE_CHARS.test(s)) fail(field, description);
  if (s.startsWith("00")) s = `+${s.slice(2)}`;
  if (!s.startsWith("+")) fail(field, description);
  const parsed = parsePhoneNumberFromString(s, { extract: false });
  if (!parsed) fail(field, description);
  const e164 = parsed.number;
  const isTest = (opts.testPhonePrefixes ?? []).some((p) => e164.startsWith(p));
  if (!(parsed.isValid() || (isTest && parsed.isPossible()))) fail(field, "is not a valid phone number");
  opts.phoneMemo?.set(input, e164, Date.now() + PHONE_MEMO_MS);
  return e164;
}

/** An e-mail address (contains "@") or an international phone number. */
export function normalizeIdentifier(raw: string, opts: NormalizeOptions = {}): Identifier {
  const field = opts.field ?? "identifier";
  if (typeof raw !== "string" || raw.trim() === "") fail(field, "is required");
  if (raw.includes("@")) return { kind: "email", value: normalizeEmail(raw, { ...opts, field }) };
  return { kind: "phone", value: normalizePhone(raw, { ...opts, field }) };
}

/**
 * A hint for logs and audit rows that names no one: "j***@example.com", "+1555***67".
 * Takes a normalised identifier.
 */
export function maskIdentifier(id: Identifier): string {
  if (id.kind === "email") {
    const at = id.value.lastIndexOf("@");
    return `${id.value.slice(0, 1)}***${id.value.slice(at)}`;
  }
  // Country code and area stay readable for support; the subscriber part does not.
  const keep = id.value.length >= 11 ? 5 : 3;
  return `${id.value.slice(0, keep)}***${id.value.slice(-2)}`;
}
