// The calls in flight of the server's own unary paths, for telling them of a shutdown. An array in which
// each item knows its place, rather than a Set: adding and removing cost a push and a pop, and
// nothing of a removed item stays behind. A long-lived Set whose entries keep coming and going
// is rehashed every few entries, and V8 keeps each table it rehashed away, entries included,
// linked to its successor: once one of them is in the old generation, every item that passes
// through the Set is held until the next full collection (bench/RESULTS.md, S24).
export interface Placed {
  /** The item's index in its InFlight, -1 when in none. */
  inFlightIndex: number;
}

export class InFlight<T extends Placed> {
  readonly #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  add(item: T): void {
    if (item.inFlightIndex >= 0) return;
    item.inFlightIndex = this.#items.push(item) - 1;
  }

  /** Removes the item (nothing happens if it is not here): the last item takes its place. */
  delete(item: T): void {
    const at = item.inFlightIndex;
    if (at < 0 || this.#items[at] !== item) return;
    item.inFlightIndex = -1;
    const last = this.#items.pop()!;
    if (last !== item) {
      this.#items[at] = last;
      last.inFlightIndex = at;
    }
  }

  /** A copy of the items, safe to iterate while they remove themselves. */
  snapshot(): T[] {
    return [...this.#items];
  }
}
