/**
 * Names and paths of kazoo's LockingQueue (docs/contracts.md §2), shared with Python processes:
 * `<queue>/entries/entry-PPP-SSSSSSSSSS` holds a job id, `<queue>/taken/<same name>` marks it taken.
 * Lower PPP runs first; names sort by priority then sequence as plain strings, as kazoo sorts them.
 */
import { isZkError } from '../zk/errors.js';

export const DEFAULT_QUEUE_PATH = '/job';
/** kazoo's default priority for put(). */
export const DEFAULT_PRIORITY = 100;
export const MAX_PRIORITY = 999;
/** Only ids live in ZooKeeper: anything longer than this is a payload put there by mistake. */
export const MAX_JOB_ID_BYTES = 512;

const ENTRY_NAME = /^entry-(\d{3})-(-?\d{10})$/;

export interface QueuePaths {
  readonly root: string;
  readonly entries: string;
  readonly taken: string;
  /** Our addition: consumers register here to split the queue between them. */
  readonly consumers: string;
  /** Our addition: entries that are not a job id, moved here with their bytes (rejected-entries.ts). */
  readonly rejected: string;
}

export function queuePaths(root: string = DEFAULT_QUEUE_PATH): QueuePaths {
  if (!root.startsWith('/') || (root.length > 1 && root.endsWith('/'))) {
    throw new Error(`queue path "${root}" must be an absolute ZooKeeper path without a trailing slash`);
  }
  return { root, entries: `${root}/entries`, taken: `${root}/taken`, consumers: `${root}/consumers`, rejected: `${root}/rejected` };
}

/** The queue a job names when it names none: the queue root itself (Nuvla's `/job`). */
export const DEFAULT_QUEUE_NAME = 'default';
/** Our addition: named queues live under `<root>/queues/<name>`, each a kazoo LockingQueue of its own. */
export const NAMED_QUEUES_NODE = 'queues';
const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Whether `name` may name a queue: 1-64 of letters, digits, _ . - starting with a letter or digit. */
export function isQueueName(name: unknown): name is string {
  return typeof name === 'string' && QUEUE_NAME.test(name);
}

/** The rule, said once for every message that refuses a name. */
export const QUEUE_NAME_RULE = '1-64 characters of letters, digits, _ . - starting with a letter or digit';

/** Throws, naming the name, when it cannot name a queue (a `/` or `..` would reach another znode). */
export function validateQueueName(name: unknown): string {
  if (!isQueueName(name)) throw new RangeError(`queue name ${JSON.stringify(name)} is not valid: ${QUEUE_NAME_RULE}`);
  return name;
}

/** `<root>/queues`: listing it finds every named queue. */
export function namedQueuesRoot(root: string): string {
  return `${root === '/' ? '' : root}/${NAMED_QUEUES_NODE}`;
}

/** The paths of queue `name` under the queue root: `default` is the root, any other `<root>/queues/<name>`. */
export function namedQueuePaths(root: string, name: string): QueuePaths {
  validateQueueName(name);
  return queuePaths(name === DEFAULT_QUEUE_NAME ? root : `${namedQueuesRoot(root)}/${name}`);
}

/** Every queue under `root`: `default` first, then the named ones found under `<root>/queues`, sorted. */
export async function listQueueNames(zk: { getChildren(path: string): Promise<string[]> }, root: string): Promise<string[]> {
  let children: string[];
  try {
    children = await zk.getChildren(namedQueuesRoot(root));
  } catch (error) {
    if (!isZkError(error, 'NO_NODE')) throw error;
    children = [];
  }
  return [DEFAULT_QUEUE_NAME, ...children.filter((name) => isQueueName(name) && name !== DEFAULT_QUEUE_NAME).sort()];
}

/** An entry name as kazoo makes them; anything else (a path, `..`) is refused before it reaches a znode path. */
export function isEntryName(name: string): boolean {
  return ENTRY_NAME.test(name);
}

/** The prefix a sequential create completes with the sequence number. */
export function entryPrefix(priority: number): string {
  return `entry-${String(priority).padStart(3, '0')}-`;
}

export function parseEntryName(name: string): { priority: number; sequence: number } | undefined {
  const match = ENTRY_NAME.exec(name);
  if (match === null) return undefined;
  return { priority: Number(match[1]), sequence: Number(match[2]) };
}

/** The priority part of an entry name, compared as text (same width for every entry). */
export function priorityOf(name: string): string {
  return name.slice(6, 9);
}

export function validatePriority(priority: number): void {
  if (!Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY) {
    throw new RangeError(`queue priority must be an integer 0-${String(MAX_PRIORITY)}, got ${String(priority)}`);
  }
}

/** A job id as the job API makes them (Nuvla's form): anything else in an entry can never be run. */
const JOB_ID = /^job\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The job id an entry's bytes carry, or why they carry none. Strict on purpose: an id with a
 * newline, or bytes that are not UTF-8, would otherwise be taken for another id by the job API or be
 * looked up for ever; any producer (a kazoo script) may put such bytes.
 */
export function parseEntryData(data: Buffer): { readonly jobId: string } | { readonly problem: string } {
  const text = data.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(data)) return { problem: 'not a job id: the data is not valid UTF-8' };
  if (text === '') return { problem: 'not a job id: the entry is empty' };
  if (!JOB_ID.test(text)) return { problem: `not a job id: ${JSON.stringify(text.slice(0, 100))} is not job/<uuid>` };
  return { jobId: text };
}

/** An entry's bytes for a person: the text when it is UTF-8 without control characters, else hex. */
export function describeEntryData(data: Buffer): { readonly text: string | null; readonly hex: string } {
  const text = data.toString('utf8');
  // eslint-disable-next-line no-control-regex
  const printable = Buffer.from(text, 'utf8').equals(data) && !/[\u0000-\u001f\u007f]/.test(text);
  return { text: printable ? text : null, hex: data.toString('hex') };
}

export function encodeJobId(jobId: string): Buffer {
  if (typeof jobId !== 'string' || jobId.trim() === '') {
    throw new TypeError('queue entry needs a non-empty job id');
  }
  const data = Buffer.from(jobId, 'utf8');
  if (data.length > MAX_JOB_ID_BYTES) {
    throw new RangeError(
      `job id of ${String(data.length)} bytes is longer than ${String(MAX_JOB_ID_BYTES)}: only ids belong in the queue, not payloads`,
    );
  }
  return data;
}
