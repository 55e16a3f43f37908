/** Serialises async critical sections in arrival order. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(critical: () => Promise<T>): Promise<T> {
    const result = this.tail.then(critical);
    this.tail = result.catch(() => {});
    return result;
  }
}
