/**
 * Readers for the options the daemons share (ZooKeeper, the job API and its credentials, logging),
 * as yargs hands them over from flags, environment variables or a config file: each value is checked
 * once, with a message that names the flag, so every daemon refuses bad input in the same words.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ApiCredentials, Compatibility } from '../api/client/options.js';
import { parseConnectionString } from '../zk/connection-string.js';
import { toError } from '../util/errors.js';
import { LOG_LEVELS, type LogLevel } from '../util/logger.js';

export class OptionsError extends Error {
  override readonly name = 'OptionsError';
  readonly code = 'bad-option';
}

/** Whatever yargs parsed; every value is still unknown until read here. */
export type OptionArgs = Readonly<Record<string, unknown>>;

export const DEFAULT_API_URL = 'http://127.0.0.1:8200';
export { DEFAULT_QUEUE_PATH } from '../recipes/queue-layout.js';

export interface ApiOptions {
  /** The first of `baseUrls`, for messages. */
  readonly baseUrl: string;
  /** Every `--api-url` (repeated or comma-separated): replicas of one job API, which clients fail over between. */
  readonly baseUrls: readonly string[];
  readonly credentials: ApiCredentials | undefined;
  readonly compatibility: Compatibility;
  readonly timeoutMs: number;
  /** `--api-ca-file`'s certificates (PEM), trusted for an https:// --api-url. */
  readonly ca?: string;
}

export const fail = (message: string): never => {
  throw new OptionsError(message);
};

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/**
 * How a number flag is declared to yargs: without its `type: 'number'`, which turns `--threads abc`
 * into NaN before any reader sees it, so the error could not say what was given. yargs still turns
 * numeric text into a number; the readers check the rest and echo a bad value as it was given.
 */
export function numberFlag(describe: string): { readonly requiresArg: true; readonly describe: string } {
  return { requiresArg: true, describe };
}

export function readNumber(args: OptionArgs, key: string, fallback: number, min: number, max: number, integer = false): number {
  const raw = args[key];
  if (raw === undefined) return fallback;
  const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    return fail(`--${key} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${show(raw)}`);
  }
  return value;
}

/** A duration given in seconds, as milliseconds. */
export function readSeconds(args: OptionArgs, key: string, fallbackSeconds: number, min: number, max: number): number {
  return Math.round(readNumber(args, key, fallbackSeconds, min, max) * 1000);
}

export function readString(args: OptionArgs, key: string): string | undefined {
  const raw = args[key];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || raw.trim() === '') return fail(`--${key} must be a non-empty string, got ${show(raw)}`);
  return raw.trim();
}

/** A repeatable string option (yargs gives one value or an array), each value non-empty. */
export function readStrings(args: OptionArgs, key: string, what = 'a non-empty string'): string[] | undefined {
  const raw = args[key];
  if (raw === undefined) return undefined;
  const values = Array.isArray(raw) ? (raw as unknown[]) : [raw];
  return values.map((value) => {
    if (typeof value !== 'string' || value.trim() === '') return fail(`--${key} must be ${what}, got ${show(value)}`);
    return value.trim();
  });
}

export function readDirectories(args: OptionArgs, key: string): string[] | undefined {
  return readStrings(args, key, 'a directory path')?.map((dir) => path.resolve(dir));
}

export function readZkHosts(args: OptionArgs): string {
  const zkHosts = readString(args, 'zk-hosts') ?? fail('--zk-hosts is required, e.g. --zk-hosts 127.0.0.1:2181');
  try {
    parseConnectionString(zkHosts);
  } catch (error) {
    fail(`--zk-hosts ${JSON.stringify(zkHosts)} is not a ZooKeeper connection string: ${toError(error).message}`);
  }
  return zkHosts;
}

/** An absolute ZooKeeper path without a trailing slash (the root itself only where `allowRoot`). */
export function readZkPath(args: OptionArgs, key: string, fallback: string, allowRoot = false): string {
  const value = readString(args, key) ?? fallback;
  if (!/^\/[^/](.*[^/])?$/.test(value) && !(allowRoot && value === '/'))
    fail(`--${key} must be an absolute ZooKeeper path, got ${JSON.stringify(value)}`);
  return value;
}

export function readLogLevel(args: OptionArgs): LogLevel {
  const logLevel = readString(args, 'log-level') ?? 'info';
  const known = LOG_LEVELS.find((level) => level === logLevel);
  return known ?? fail(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
}

/** Where a daemon serves /metrics, /healthz and /readyz; no server at all when not asked for. */
export interface MetricsOptions {
  readonly host: string;
  /** 0 lets the system choose (the daemon logs the port it got). */
  readonly port: number;
}

export const DEFAULT_METRICS_HOST = '127.0.0.1';

/** `--metrics-port` (off unless given) and `--metrics-host` (loopback unless told otherwise). */
export function readMetricsOptions(args: OptionArgs): MetricsOptions | undefined {
  const host = readString(args, 'metrics-host');
  if (args['metrics-port'] === undefined) {
    if (host !== undefined) fail('--metrics-host needs --metrics-port');
    return undefined;
  }
  return Object.freeze({ host: host ?? DEFAULT_METRICS_HOST, port: readNumber(args, 'metrics-port', 0, 0, 65_535, true) });
}

/** `{"key":...,"secret":...}` or the two on separate lines, as `job-api create-key` prints them. */
export function parseCredentialsFile(text: string, file: string): ApiCredentials {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (error) {
      return fail(`API key file ${file} is not valid JSON: ${toError(error).message}`);
    }
    const { key, secret } = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
    if (typeof key !== 'string' || key === '' || typeof secret !== 'string' || secret === '') {
      return fail(`API key file ${file} must hold {"key": "...", "secret": "..."}`);
    }
    return { key, secret };
  }
  const fields = new Map<string, string>();
  for (const line of trimmed.split('\n')) {
    const match = /^\s*(key|secret)\s*[:=]\s*(\S+)\s*$/.exec(line);
    if (match?.[1] !== undefined && match[2] !== undefined) fields.set(match[1], match[2]);
  }
  const key = fields.get('key');
  const secret = fields.get('secret');
  if (key === undefined || secret === undefined) return fail(`API key file ${file} must hold "key: ..." and "secret: ..." lines, or JSON`);
  return { key, secret };
}

async function readCredentials(args: OptionArgs): Promise<ApiCredentials | undefined> {
  const file = readString(args, 'api-key-file');
  const key = readString(args, 'api-key');
  const secret = readString(args, 'api-secret');
  if (file !== undefined) {
    if (key !== undefined || secret !== undefined)
      fail('give the API key either with --api-key-file or with --api-key and --api-secret, not both');
    const text = await readFile(file, 'utf8').catch((error: unknown) =>
      fail(`API key file ${file} cannot be read: ${toError(error).message}`),
    );
    return parseCredentialsFile(text, file);
  }
  if ((key === undefined) !== (secret === undefined)) fail('--api-key and --api-secret go together (or use --api-key-file)');
  return key === undefined || secret === undefined ? undefined : { key, secret };
}

/** `--api-url`, repeatable, each value a URL or a comma-separated list of them (the job API's replicas). */
function readApiUrls(args: OptionArgs): string[] {
  const given = readStrings(args, 'api-url', 'a URL or a comma-separated list of URLs');
  if (given === undefined) return [DEFAULT_API_URL];
  const urls = given.flatMap((value) => value.split(',')).map((url) => url.trim());
  if (urls.some((url) => url === '')) fail(`--api-url has an empty URL in a list: ${JSON.stringify(given.join(','))}`);
  return [...new Set(urls)];
}

/** `--api-url`, the credentials, `--api-compatibility` and `--api-timeout`. */
export async function readApiOptions(args: OptionArgs, defaultTimeoutSeconds: number): Promise<ApiOptions> {
  const compatibility = readString(args, 'api-compatibility') ?? 'auto';
  if (compatibility !== 'auto' && compatibility !== 'engine' && compatibility !== 'nuvla') {
    fail(`--api-compatibility must be auto, engine or nuvla, got ${JSON.stringify(compatibility)}`);
  }
  const caFile = readString(args, 'api-ca-file');
  const ca =
    caFile === undefined
      ? undefined
      : await readFile(caFile, 'utf8').catch((error: unknown) => fail(`API CA file ${caFile} cannot be read: ${toError(error).message}`));
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) fail(`API CA file ${caFile ?? ''} holds no PEM certificate`);
  const baseUrls = readApiUrls(args);
  return Object.freeze({
    baseUrl: baseUrls[0] ?? DEFAULT_API_URL,
    baseUrls,
    credentials: await readCredentials(args),
    compatibility: compatibility as Compatibility,
    timeoutMs: readSeconds(args, 'api-timeout', defaultTimeoutSeconds, 0.1, 3600),
    ...(ca === undefined ? {} : { ca }),
  });
}
