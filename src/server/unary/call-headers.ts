// The Headers of a call on the server's own unary paths (unary/call.ts). Handlers and
// interceptors see the fetch `Headers` interface, as connect gives them; this one keeps
// lower-cased names and skips the WebIDL conversions and validation that fetch's own class
// runs on every entry of every call. Names and values reach the wire only through node's
// HTTP/2 layer, which refuses invalid ones.
//
// Most calls only read a header or two (the authorization of the auth interceptor) and
// never write one, so the entries stay where they came from (the request's header object
// as node parsed it, or a shared default) until the first write or walk copies them into a
// Map of their own.
import type { OutgoingHttpHeaders } from "node:http2";

/** As node parses a request's headers (IncomingHttpHeaders), or plain defaults. */
type Source = Readonly<Record<string, string | string[] | number | undefined>>;

/** A source entry as fetch would show it: pseudo-headers left out, repeated headers joined. */
function sourceValue(source: Source, name: string): string | undefined {
  if (name.charCodeAt(0) === 58 /* ":" */) return undefined;
  const value = source[name];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(", ") : String(value);
}

export class CallHeaders implements Headers {
  private map?: Map<string, string>;

  /**
   * Headers that start as `source`: a request's headers as node parsed them, or defaults with
   * lower-case names. The object is only read (never written, so it may be shared) until the
   * first change.
   */
  constructor(private readonly source: Source) {}

  /** Copies every entry onto `target` (as node's respond() and sendTrailers() take them). */
  copyTo(target: OutgoingHttpHeaders): void {
    if (this.map) for (const [name, value] of this.map) target[name] = value;
    else for (const name in this.source) {
      const value = sourceValue(this.source, name);
      if (value !== undefined) target[name] = value;
    }
  }

  append(name: string, value: string): void {
    const key = name.toLowerCase();
    const v = value.trim();
    const existing = this.get(key);
    this.own().set(key, existing === null ? v : `${existing}, ${v}`);
  }

  delete(name: string): void {
    this.own().delete(name.toLowerCase());
  }

  get(name: string): string | null {
    const key = name.toLowerCase();
    return (this.map ? this.map.get(key) : sourceValue(this.source, key)) ?? null;
  }

  getSetCookie(): string[] {
    const cookie = this.get("set-cookie");
    return cookie === null ? [] : [cookie];
  }

  has(name: string): boolean {
    return this.get(name) !== null;
  }

  set(name: string, value: string): void {
    this.own().set(name.toLowerCase(), value.trim());
  }

  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    for (const [name, value] of this.sorted()) callback.call(thisArg, value, name, this);
  }

  entries(): HeadersIterator<[string, string]> {
    return this.sorted().values();
  }

  keys(): HeadersIterator<string> {
    return this.sorted().map(([name]) => name).values();
  }

  values(): HeadersIterator<string> {
    return this.sorted().map(([, value]) => value).values();
  }

  [Symbol.iterator](): HeadersIterator<[string, string]> {
    return this.entries();
  }

  /** The entries in a Map of this object's own, copied from the source on first use. */
  private own(): Map<string, string> {
    if (!this.map) {
      const copy: Record<string, string> = {};
      this.copyTo(copy);
      this.map = new Map(Object.entries(copy));
    }
    return this.map;
  }

  /** Fetch's Headers iterate in name order. */
  private sorted(): Array<[string, string]> {
    return [...this.own()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
