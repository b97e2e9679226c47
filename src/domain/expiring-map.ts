// A bounded in-process map whose entries expire: the memo of the auth path (verified tokens,
// session status, activity windows). When full, the oldest entry goes first; expired entries
// are dropped when read, and otherwise pushed out by newer ones, so memory stays bounded by
// `maxEntries` whatever the traffic.
export class ExpiringMap<K, V> {
  readonly #entries = new Map<K, { value: V; expiresAt: number }>();

  constructor(readonly maxEntries: number) {}

  get(key: K, now = Date.now()): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt > now) return entry.value;
    this.#entries.delete(key);
    return undefined;
  }

  /** `expiresAt`: milliseconds since the epoch. */
  set(key: K, value: V, expiresAt: number): void {
    this.#entries.delete(key);
    if (this.#entries.size >= this.maxEntries) this.#entries.delete(this.#entries.keys().next().value as K);
    this.#entries.set(key, { value, expiresAt });
  }
}
