// Coalesces look-ups: the keys asked for during one turn of the event loop are fetched
// together by one `load` (one query instead of one per caller). A batch always starts after
// its callers asked, never joining a fetch already under way, so every answer is as fresh as
// a look-up of its own would have been. Writes coalesce the same way (the keys are the rows,
// `load` inserts them and answers an empty map): each caller resumes once its row is written.
export type BatchLoad<K, V> = (keys: K[]) => Promise<Map<K, V>>;

export function createBatchLoader<K, V>(load: BatchLoad<K, V>): (key: K) => Promise<V | undefined> {
  let pending: Map<K, Array<{ resolve: (v: V | undefined) => void; reject: (e: unknown) => void }>> | undefined;

  function flush(batch: NonNullable<typeof pending>): void {
    pending = undefined;
    load([...batch.keys()]).then(
      (found) => batch.forEach((waiters, key) => waiters.forEach((w) => w.resolve(found.get(key)))),
      (err: unknown) => batch.forEach((waiters) => waiters.forEach((w) => w.reject(err))),
    );
  }

  return (key) =>
    new Promise((resolve, reject) => {
      if (!pending) {
        const batch = new Map();
        pending = batch;
        setImmediate(() => flush(batch));
      }
      const waiters = pending.get(key);
      if (waiters) waiters.push({ resolve, reject });
      else pending.set(key, [{ resolve, reject }]);
    });
}
