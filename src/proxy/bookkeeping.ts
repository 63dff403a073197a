// Per-request bookkeeping that can wait (metrics, the access log), run after the response, while the
// gateway would otherwise wait. A client that sends its next request as soon as the last one ended then
// does not wait for the last one's bookkeeping (bench/README.md, "Where the time goes").

/** A FIFO of deferred tasks. */
export interface Bookkeeping {
  /** Runs `task` within about a millisecond, after the tasks queued before it. */
  later(task: () => void): void;
  /**
   * The caller has just sent an upstream request and waits for its answer: run the queued tasks once this
   * turn's I/O callbacks are done, in that wait, rather than when the timer fires.
   */
  waiting(): void;
  /** Runs every queued task now: before a metrics scrape, and at shutdown. */
  flush(): void;
}

/** How long a task may wait, in ms: batches stay small and metrics fresh. */
const DELAY_MS = 1;

/** `onError` hears of a task that threw; the other tasks still run. */
export function createBookkeeping(onError: (error: unknown) => void): Bookkeeping {
  let queue: (() => void)[] = [];
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    clearImmediate(immediate);
    immediate = undefined;
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      for (const task of batch) {
        try {
          task();
        } catch (error) {
          onError(error);
        }
      }
    }
  };
  return {
    later(task) {
      queue.push(task);
      timer ??= setTimeout(flush, DELAY_MS).unref();
    },
    waiting() {
      if (queue.length > 0) immediate ??= setImmediate(flush);
    },
    flush,
  };
}
