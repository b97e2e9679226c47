// The Headers of a call on the unary gRPC fast path (grpc-unary.ts). Handlers and
// interceptors see the fetch `Headers` interface, as connect gives them; this one keeps
// lower-cased names in a Map and skips the WebIDL conversions and validation that fetch's
// own class runs on every entry of every call. Names and values reach the wire only
// through node's HTTP/2 layer, which refuses invalid ones.
import type { IncomingHttpHeaders } from "node:http2";

export class CallHeaders implements Headers {
  private readonly map = new Map<string, string>();

  constructor(init?: Iterable<readonly [string, string]>) {
    if (init) for (const [name, value] of init) this.append(name, value);
  }

  /** A request's headers, pseudo-headers left out; repeated headers joined as fetch joins them. */
  static fromRequest(headers: IncomingHttpHeaders): CallHeaders {
    const out = new CallHeaders();
    for (const name in headers) {
      const value = headers[name];
      if (name.charCodeAt(0) === 58 /* ":" */ || value === undefined) continue;
      out.map.set(name, Array.isArray(value) ? value.join(", ") : String(value));
    }
    return out;
  }

  /** As node's respond() and sendTrailers() take them. */
  toObject(): Record<string, string> {
    return Object.fromEntries(this.map);
  }

  append(name: string, value: string): void {
    const key = name.toLowerCase();
    const v = value.trim();
    const existing = this.map.get(key);
    this.map.set(key, existing === undefined ? v : `${existing}, ${v}`);
  }

  delete(name: string): void {
    this.map.delete(name.toLowerCase());
  }

  get(name: string): string | null {
    return this.map.get(name.toLowerCase()) ?? null;
  }

  getSetCookie(): string[] {
    const cookie = this.map.get("set-cookie");
    return cookie === undefined ? [] : [cookie];
  }

  has(name: string): boolean {
    return this.map.has(name.toLowerCase());
  }

  set(name: string, value: string): void {
    this.map.set(name.toLowerCase(), value.trim());
  }

  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    for (const [name, value] of this.sorted()) callback.call(thisArg, value, name, this);
  }

  *entries(): IterableIterator<[string, string]> {
    yield* this.sorted();
  }

  *keys(): IterableIterator<string> {
    for (const [name] of this.sorted()) yield name;
  }

  *values(): IterableIterator<string> {
    for (const [, value] of this.sorted()) yield value;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  /** Fetch's Headers iterate in name order. */
  private sorted(): Array<[string, string]> {
    return [...this.map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
