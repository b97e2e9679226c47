// Small validators shared by the domain modules. Each `…Problem` function returns what is
// wrong with a value, ready to be a field violation's description, or undefined when the
// value is acceptable.

/** Characters as people count them (code points, not UTF-16 units). */
export function characterCount(value: string): number {
  return Array.from(value).length;
}

const MAX_URL_LENGTH = 2048;

/**
 * An absolute https URL (the parser insists on a host for https) without credentials,
 * whitespace or control characters, at most `maxLength` characters.
 */
export function httpsUrlProblem(value: string, maxLength = MAX_URL_LENGTH): string | undefined {
  if (value.length > maxLength) return `must be at most ${maxLength} characters`;
  if (/[\s\p{Cc}]/u.test(value)) return "must not contain whitespace or control characters";
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "must be an absolute https URL";
  }
  if (url.protocol !== "https:") return "must be an https URL";
  if (url.username || url.password) return "must not contain credentials";
  return undefined;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A UUID in its canonical textual form (any version), as PostgreSQL's uuid type accepts it. */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/**
 * Control characters (C0, DEL, C1), which no free-text field should store (PostgreSQL text
 * refuses NUL outright); `allowLineBreaks` lets "\n" and "\r" through for multi-line text.
 */
export function hasControlCharacters(value: string, allowLineBreaks = false): boolean {
  return (allowLineBreaks ? /[^\P{Cc}\n\r]/u : /\p{Cc}/u).test(value);
}
