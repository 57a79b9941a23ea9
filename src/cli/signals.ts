/**
 * The long-running commands (member, gateway, demo-server, start) stop the
 * same way: the first SIGINT or SIGTERM closes what was started (servers
 * drain and flush), then the process exits 0, or 1 if closing failed. A
 * second signal while closing exits at once (130), for an operator whose
 * Ctrl-C is not being answered.
 */
export interface StopLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Call once, after the process is up; `stop` is awaited before exiting. */
export function stopOnSignals(stop: () => Promise<void>, logger?: StopLogger): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.exit(130);
    }
    stopping = true;
    logger?.info({ signal }, "stopping");
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        if (logger) logger.error({ err }, "stop failed");
        else console.error("stop failed:", err);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}
