// Page tokens of the staff listings (AdminService.ListUsers, ListAuditLogs): opaque base64url
// of a JSON array [filters, ...key], where `filters` is a short digest of the filters the
// page was made for (a token is refused under other filters: the key would mean nothing
// there) and `key` the keyset position of the page's last row.
import { createHash } from "node:crypto";
import { invalid, Violations } from "./errors.js";

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

/** A digest of the filters a token is valid for. */
export function filtersDigest(filters: unknown): string {
  return createHash("sha256").update(JSON.stringify(filters)).digest("base64url").slice(0, 12);
}

export function encodePageToken(filters: string, key: readonly string[]): string {
  return Buffer.from(JSON.stringify([filters, ...key])).toString("base64url");
}

/**
 * The key of a page token, checked against the filters digest and `keyPattern` (one per
 * key element); invalid_argument with a field violation on page_token otherwise.
 */
export function decodePageToken(token: string, filters: string, keyPattern: readonly RegExp[]): string[] {
  const bad = (description: string) => invalid([{ field: "page_token", description }]);
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(token)) throw bad("is not a token this service issued");
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw bad("is not a token this service issued");
  }
  if (!Array.isArray(value) || value.length !== keyPattern.length + 1 || !value.every((v) => typeof v === "string")) throw bad("is not a token this service issued");
  const [digest, ...key] = value as string[];
  if (!key.every((k, i) => keyPattern[i]!.test(k))) throw bad("is not a token this service issued");
  if (digest !== filters) throw bad("was issued for other filters");
  return key;
}

/** page_size: 0 means the default; otherwise 1–MAX_PAGE_SIZE. */
export function checkPageSize(v: Violations, pageSize: number): number {
  if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > MAX_PAGE_SIZE) v.add("page_size", `must be from 1 to ${MAX_PAGE_SIZE}`);
  return pageSize || DEFAULT_PAGE_SIZE;
}
