/**
 * `fn` over every item with at most `limit` calls in flight, results in item order. For I/O that
 * a library already parallelises underneath (sharp on libuv's threads, file reads), where starting
 * everything at once only queues and holds memory.
 */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const k = next++;
      results[k] = await fn(items[k]!, k);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
