/**
 * The daemons' logger: winston, JSON-ish lines on stderr for journald by default, optionally also a
 * size-rotated file (SlipStream kept 5 files of 10 MB).
 */
import winston from 'winston';
import { errorJsonReplacer } from './errors.js';
import type { Logger, LogLevel } from './logger.js';

import { LOG_LEVELS } from './logger.js';

export { LOG_LEVELS, type LogLevel } from './logger.js';

export interface LoggerOptions {
  readonly level: LogLevel;
  /** Also write to this file, rotated at 10 MB, 5 kept. */
  readonly file?: string | undefined;
  /** Fields on every line, e.g. the daemon's name. */
  readonly defaultMeta?: Record<string, unknown>;
}

export function createWinstonLogger(options: LoggerOptions): Logger & { close(): void } {
  const line = winston.format.printf((info) => {
    const { level, message, timestamp, ...meta } = info;
    const extra = Object.keys(meta).length === 0 ? '' : ` ${JSON.stringify(meta, errorJsonReplacer)}`;
    return `${String(timestamp)} ${level} ${String(message)}${extra}`;
  });
  // winston types its transports as interfaces over TransportStream rather than subclasses.
  /* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment */
  const transports: winston.transport[] = [new winston.transports.Console({ stderrLevels: [...LOG_LEVELS] })];
  if (options.file !== undefined) {
    transports.push(new winston.transports.File({ filename: options.file, maxsize: 10 * 1024 * 1024, maxFiles: 5, tailable: true }));
  }
  /* eslint-enable @typescript-eslint/no-unsafe-class-instance-assignment */
  const logger = winston.createLogger({
    level: options.level,
    levels: { error: 0, warn: 1, info: 2, debug: 3 },
    format: winston.format.combine(winston.format.timestamp(), line),
    defaultMeta: options.defaultMeta,
    transports,
  });
  // winston builds a record and pushes it through its stream before it filters by level: a record
  // below the level costs almost as much as one written. The level is fixed, so decide once.
  const enabled = (level: LogLevel): boolean => LOG_LEVELS.indexOf(level) <= LOG_LEVELS.indexOf(options.level);
  const ignore = (): void => undefined;
  return {
    error: (message, meta) => logger.error(message, meta),
    warn: enabled('warn') ? (message, meta) => logger.warn(message, meta) : ignore,
    info: enabled('info') ? (message, meta) => logger.info(message, meta) : ignore,
    debug: enabled('debug') ? (message, meta) => logger.debug(message, meta) : ignore,
    close: () => {
      logger.close();
    },
  };
}
