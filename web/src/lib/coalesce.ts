/**
 * Coalesce calls of an async task: at most one run at a time and at most one queued behind
 * it, however many calls arrive. Every caller's promise settles after a run that started
 * after its call, so it always sees state at least as new as the moment it asked.
 */
export function coalesce(task: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | null = null;
  let queued: Promise<void> | null = null;

  const start = (): Promise<void> => {
    const run = task().finally(() => {
      running = null;
    });
    running = run;
    return run;
  };

  return () => {
    if (running === null) {
      return start();
    }
    if (queued === null) {
      queued = running
        .catch(() => undefined)
        .then(() => {
          queued = null;
          return start();
        });
    }
    return queued;
  };
}
