/**
 * The logging surface library code depends on: winston's, reduced to what it calls, so daemons pass
 * their winston logger (or a child carrying job fields) and tests pass a silent or capturing one.
 */
export interface Logger {
  error(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  debug(message: string, meta?: Record<string, unknown>): void;
}

const ignore = (): void => undefined;

export const silentLogger: Logger = Object.freeze({ error: ignore, warn: ignore, info: ignore, debug: ignore });
