/**
 * Job lifecycle events (HyperFlow's `job.<id>.started/finished` in spirit): one per transition of a job,
 * logged by the job API as one structured line and served live as a stream (`GET /api/job/events`,
 * server-sent events). The API derives most of them from the writes it serves; `enqueued` happens in
 * ZooKeeper, so whoever enqueues publishes it (`POST /api/job/events`); `stage-in` and `stage-out`
 * happen inside a running action (the bundled `command` copying its inputs and outputs), so its
 * executor publishes them, with the bytes, files and seconds of the stage.
 *
 *   created -> enqueued -> taken -> started -> progress* -> finished | timed-out | cancelled
 *                                 (stage-in, stage-out: within started .. finished, from the action)
 *                                            |                  (then dead-lettered, if the engine gave it up)
 *                                            \-> released | retry-scheduled (back to QUEUED) -> taken ...
 */
import { isRecord } from '../../util/is-record.js';
import { JOB_STATES, type JobState } from './document.js';

export const JOB_EVENT_TYPES = [
  'created',
  'enqueued',
  'taken',
  'started',
  'progress',
  'finished',
  'timed-out',
  'cancelled',
  'released',
  'retry-scheduled',
  'dead-lettered',
  'stage-in',
  'stage-out',
  'paused',
  'resumed',
] as const;
export type JobEventType = (typeof JOB_EVENT_TYPES)[number];

/** The three ways a job ends; each carries the duration and return code. */
export const FINAL_EVENT_TYPES: ReadonlySet<JobEventType> = new Set<JobEventType>(['finished', 'timed-out', 'cancelled']);

export interface JobEvent {
  /** Increasing per API process: a client that reconnects asks for what came after the last one it saw. */
  readonly seq: number;
  readonly type: JobEventType;
  /** When it happened (ISO-8601, milliseconds). */
  readonly at: string;
  /** `job/<uuid>` */
  readonly job: string;
  readonly action: string;
  /** The job's state after the event. */
  readonly state: JobState;
  readonly priority?: number;
  readonly progress?: number;
  readonly 'status-message'?: string;
  readonly 'return-code'?: number;
  /** Seconds from start (or creation) to the end, on finished, timed-out and cancelled; the stage's seconds on stage-in and stage-out. */
  readonly duration?: number;
  /** The owner (`<executor>@<session>`) on taken, started, progress and the end. */
  readonly executor?: string;
  readonly attempt?: number;
  /** On dead-lettered: why the engine gave the job up. */
  readonly reason?: string;
  /** On retry-scheduled: when the next attempt may start. */
  readonly 'not-before'?: string;
  /** On stage-in and stage-out: the bytes copied and the number of files. */
  readonly bytes?: number;
  readonly files?: number;
}

/** What a publisher sends for an event the API cannot see (`enqueued`, `stage-in`, `stage-out`); the API adds `seq`. */
export type PublishedJobEvent = Omit<JobEvent, 'seq'>;

export function isJobEventType(value: unknown): value is JobEventType {
  return typeof value === 'string' && (JOB_EVENT_TYPES as readonly string[]).includes(value);
}

/** An event from unknown JSON (a stream's data line, a publisher's body); undefined when it is not one. */
export function parseJobEvent(value: unknown, options: { readonly seqRequired: boolean } = { seqRequired: true }): JobEvent | undefined {
  if (!isRecord(value)) return undefined;
  const { seq, type, at, job, action, state } = value;
  if (options.seqRequired && (typeof seq !== 'number' || !Number.isSafeInteger(seq))) return undefined;
  if (!isJobEventType(type) || typeof at !== 'string' || Number.isNaN(Date.parse(at))) return undefined;
  if (typeof job !== 'string' || !job.startsWith('job/') || typeof action !== 'string') return undefined;
  if (typeof state !== 'string' || !(JOB_STATES as readonly string[]).includes(state)) return undefined;
  const optionalNumber = (name: string): Record<string, number> => {
    const field = value[name];
    return typeof field === 'number' && Number.isFinite(field) ? { [name]: field } : {};
  };
  const optionalText = (name: string): Record<string, string> => {
    const field = value[name];
    return typeof field === 'string' ? { [name]: field } : {};
  };
  return {
    seq: typeof seq === 'number' ? seq : 0,
    type,
    at,
    job,
    action,
    state: state as JobState,
    ...optionalNumber('priority'),
    ...optionalNumber('progress'),
    ...optionalText('status-message'),
    ...optionalNumber('return-code'),
    ...optionalNumber('duration'),
    ...optionalText('executor'),
    ...optionalNumber('attempt'),
    ...optionalText('reason'),
    ...optionalText('not-before'),
    ...optionalNumber('bytes'),
    ...optionalNumber('files'),
  };
}
