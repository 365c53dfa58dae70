/** Kept free of winston: worker threads check log levels without loading it. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

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

/** A logger that adds `fields` to every record (a job's id and action, a slot number). */
export function withFields(logger: Logger, fields: Record<string, unknown>): Logger {
  const merge = (meta: Record<string, unknown> | undefined): Record<string, unknown> =>
    meta === undefined ? fields : { ...fields, ...meta };
  return {
    error: (message, meta) => {
      logger.error(message, merge(meta));
    },
    warn: (message, meta) => {
      logger.warn(message, merge(meta));
    },
    info: (message, meta) => {
      logger.info(message, merge(meta));
    },
    debug: (message, meta) => {
      logger.debug(message, merge(meta));
    },
  };
}
