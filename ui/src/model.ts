/**
 * What the dashboard reads from the API, parsed from `unknown`: a field of the wrong type is left out
 * (or the whole value refused) rather than trusted, so a page never renders what it did not check.
 */

export const JOB_STATES = ['QUEUED', 'RUNNING', 'SUCCESS', 'FAILED', 'CANCELED'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const FINAL_STATES: ReadonlySet<JobState> = new Set<JobState>(['SUCCESS', 'FAILED', 'CANCELED']);

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const num = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);
const texts = (value: unknown): string[] | undefined =>
  Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : undefined;

export function isJobState(value: unknown): value is JobState {
  return typeof value === 'string' && (JOB_STATES as readonly string[]).includes(value);
}

export interface Session {
  readonly key: string;
  readonly role: string;
  readonly permissions: ReadonlySet<string>;
}

export function parseSession(value: unknown): Session {
  if (!isRecord(value) || typeof value.key !== 'string' || typeof value.role !== 'string') throw new Error('not a session');
  return { key: value.key, role: value.role, permissions: new Set(texts(value.permissions) ?? []) };
}

/** What a session's role lets the dashboard offer; the API checks each request again. */
export interface Abilities {
  readonly cancel: boolean;
  readonly retry: boolean;
  /** 'any', 'final' (delete-final only) or 'none'. */
  readonly delete: 'any' | 'final' | 'none';
}

export function abilitiesOf(session: Session): Abilities {
  const has = (permission: string): boolean => session.permissions.has(permission);
  return {
    cancel: has('edit') || has('cancel-own'),
    retry: has('edit'),
    delete: has('delete') ? 'any' : has('delete-final') ? 'final' : 'none',
  };
}

export interface Job {
  readonly id: string;
  readonly state: JobState;
  readonly action: string;
  readonly created: string | undefined;
  readonly updated: string | undefined;
  readonly started: string | undefined;
  readonly progress: number;
  readonly target: string | undefined;
  readonly statusMessage: string | undefined;
  readonly returnCode: number | undefined;
  readonly priority: number | undefined;
  readonly queue: string | undefined;
  readonly attempt: number | undefined;
  readonly maxAttempts: number | undefined;
  readonly executor: string | undefined;
  readonly duration: number | undefined;
  readonly parent: string | undefined;
  readonly nested: readonly string[];
  readonly tags: readonly string[];
  readonly createdBy: string | undefined;
  /** A delayed job: not started before this instant. */
  readonly notBefore: string | undefined;
  /** Waiting in the API for room in its queue's window. */
  readonly parked: boolean;
  readonly deadLetter: DeadLetter | undefined;
  readonly attempts: readonly AttemptRecord[];
  /** A batch's status (action `batch`). */
  readonly batch: BatchStatus | undefined;
  /** The document as the API sent it, for the detail page's document view. */
  readonly document: Readonly<Record<string, unknown>>;
}

export interface DeadLetter {
  readonly reason: string;
  readonly at: string | undefined;
  readonly attempt: number | undefined;
}

export interface AttemptRecord {
  readonly attempt: number;
  readonly started: string | undefined;
  readonly ended: string | undefined;
  readonly state: JobState | undefined;
  readonly returnCode: number | undefined;
  readonly statusMessage: string | undefined;
  readonly executor: string | undefined;
}

export interface BatchStatus {
  readonly action: string;
  readonly phase: string;
  readonly paused: boolean;
  readonly sent: number;
  readonly total: number | undefined;
  readonly totalEstimated: boolean;
  readonly succeeded: number;
  readonly failed: number;
  readonly canceled: number;
  readonly counters: Readonly<Record<string, number>>;
}

function parseDeadLetter(value: unknown): DeadLetter | undefined {
  if (!isRecord(value) || typeof value.reason !== 'string') return undefined;
  return { reason: value.reason, at: text(value.at), attempt: num(value.attempt) };
}

function parseAttempts(value: unknown): AttemptRecord[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((item) => {
    if (!isRecord(item) || num(item.attempt) === undefined) return [];
    return [
      {
        attempt: num(item.attempt) ?? 0,
        started: text(item.started),
        ended: text(item.ended),
        state: isJobState(item.state) ? item.state : undefined,
        returnCode: num(item['return-code']),
        statusMessage: text(item['status-message']),
        executor: text(item.executor),
      },
    ];
  });
}

function parseBatch(value: unknown): BatchStatus | undefined {
  if (!isRecord(value) || typeof value.action !== 'string') return undefined;
  const counters: Record<string, number> = {};
  if (isRecord(value.counters)) {
    for (const [name, count] of Object.entries(value.counters)) {
      const n = num(count);
      if (n !== undefined) counters[name] = n;
    }
  }
  return {
    action: value.action,
    phase: text(value.phase) ?? '-',
    paused: value.paused === true,
    sent: num(value.sent) ?? 0,
    total: num(value.total),
    totalEstimated: value['total-estimated'] === true,
    succeeded: num(value.succeeded) ?? 0,
    failed: num(value.failed) ?? 0,
    canceled: num(value.canceled) ?? 0,
    counters,
  };
}

export function parseJob(value: unknown): Job | undefined {
  if (!isRecord(value) || typeof value.id !== 'string' || !isJobState(value.state) || typeof value.action !== 'string') return undefined;
  const target = isRecord(value['target-resource']) ? text(value['target-resource'].href) : undefined;
  const nested = Array.isArray(value['nested-jobs'])
    ? value['nested-jobs'].flatMap((item) =>
        isRecord(item) && typeof item.href === 'string' ? [item.href] : typeof item === 'string' ? [item] : [],
      )
    : [];
  const parent = isRecord(value['parent-job']) ? text(value['parent-job'].href) : text(value['parent-job']);
  return {
    id: value.id,
    state: value.state,
    action: value.action,
    created: text(value.created),
    updated: text(value.updated),
    started: text(value.started),
    progress: num(value.progress) ?? 0,
    target,
    statusMessage: text(value['status-message']),
    returnCode: num(value['return-code']),
    priority: num(value.priority),
    queue: text(value.queue),
    attempt: num(value.attempt),
    maxAttempts: num(value['max-attempts']),
    executor: text(value.executor),
    duration: num(value.duration),
    parent,
    nested,
    tags: texts(value.tags) ?? [],
    createdBy: text(value['created-by']),
    notBefore: text(value['not-before']),
    parked: value.parked === true,
    deadLetter: parseDeadLetter(value['dead-letter']),
    attempts: parseAttempts(value['attempt-history']),
    batch: parseBatch(value.batch),
    document: value,
  };
}

export interface JobPage {
  readonly count: number;
  /** More than `count` match (the search asked for `count-limit`). */
  readonly countCapped: boolean;
  readonly jobs: readonly Job[];
}

export function parseJobPage(value: unknown): JobPage {
  if (!isRecord(value) || !Array.isArray(value.resources)) throw new Error('the job search answer has no resources');
  return {
    count: num(value.count) ?? 0,
    countCapped: value['count-capped'] === true,
    jobs: value.resources.flatMap((item) => parseJob(item) ?? []),
  };
}

export function parseStateCounts(value: unknown): Record<JobState, number> {
  const counts: Record<JobState, number> = { QUEUED: 0, RUNNING: 0, SUCCESS: 0, FAILED: 0, CANCELED: 0 };
  const buckets =
    isRecord(value) && isRecord(value.aggregations) && isRecord(value.aggregations['terms:state'])
      ? value.aggregations['terms:state'].buckets
      : undefined;
  if (!Array.isArray(buckets)) throw new Error('the search answer has no per-state counts');
  for (const bucket of buckets) {
    if (isRecord(bucket) && isJobState(bucket.key)) counts[bucket.key] = num(bucket.doc_count) ?? 0;
  }
  return counts;
}

export interface JobEvent {
  readonly seq: number;
  readonly type: string;
  readonly at: string;
  readonly job: string;
  readonly action: string;
  readonly state: JobState;
  readonly progress: number | undefined;
  readonly statusMessage: string | undefined;
  readonly executor: string | undefined;
  readonly attempt: number | undefined;
  readonly returnCode: number | undefined;
  readonly duration: number | undefined;
}

export function parseJobEvent(data: string): JobEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (!isRecord(value)) return undefined;
  const { seq, type, at, job, action, state } = value;
  if (typeof seq !== 'number' || typeof type !== 'string' || typeof at !== 'string' || typeof job !== 'string') return undefined;
  if (typeof action !== 'string' || !isJobState(state)) return undefined;
  return {
    seq,
    type,
    at,
    job,
    action,
    state,
    progress: num(value.progress),
    statusMessage: text(value['status-message']),
    executor: text(value.executor),
    attempt: num(value.attempt),
    returnCode: num(value['return-code']),
    duration: num(value.duration),
  };
}

export interface PriorityBand {
  readonly priority: number;
  readonly waiting: number;
  readonly taken: number;
  readonly oldestAgeSeconds: number | undefined;
}

export interface TakenEntry {
  readonly entry: string;
  readonly jobId: string | undefined;
  readonly executor: string | undefined;
  readonly forSeconds: number;
}

export interface RejectedEntry {
  readonly entry: string;
  readonly text: string | undefined;
  readonly bytes: number;
  readonly rejectedAt: string;
}

export interface QueueView {
  readonly name: string;
  readonly path: string;
  readonly entries: number;
  readonly waiting: number;
  readonly taken: number;
  readonly oldestAgeSeconds: number | undefined;
  readonly priorities: readonly PriorityBand[];
  readonly takenEntries: readonly TakenEntry[];
  readonly servedBy: readonly string[];
  readonly unserved: boolean;
  readonly rejected: readonly RejectedEntry[];
}

export interface ExecutorView {
  readonly name: string;
  readonly host: string | undefined;
  readonly pid: number | undefined;
  readonly started: string | undefined;
  readonly slots: number | undefined;
  readonly busy: number;
  readonly actions: readonly string[] | undefined;
  readonly queues: readonly string[];
}

export interface TickView {
  readonly tick: string;
  readonly finished: string | undefined;
  readonly created: number;
  readonly existing: number;
  readonly invalid: number;
}

/** What a distribution's leader last published; `current` false when it no longer leads. */
export interface DistributionStatusView {
  readonly leader: string;
  readonly schedule: string;
  readonly at: string | undefined;
  readonly nextTick: string | undefined;
  readonly lastTick: TickView | undefined;
  readonly current: boolean;
}

export interface LeaderView {
  readonly distribution: string;
  readonly leader: string | undefined;
  readonly standbys: readonly string[];
  readonly status: DistributionStatusView | undefined;
}

function parseDistributionStatus(value: unknown): DistributionStatusView | undefined {
  if (!isRecord(value) || typeof value.leader !== 'string' || typeof value.schedule !== 'string') return undefined;
  const last = value.lastTick;
  return {
    leader: value.leader,
    schedule: value.schedule,
    at: text(value.at),
    nextTick: text(value.nextTick),
    lastTick:
      isRecord(last) && typeof last.tick === 'string'
        ? {
            tick: last.tick,
            finished: text(last.finished),
            created: num(last.created) ?? 0,
            existing: num(last.existing) ?? 0,
            invalid: num(last.invalid) ?? 0,
          }
        : undefined,
    current: value.current === true,
  };
}

export interface EngineSnapshot {
  readonly at: string;
  readonly queuePath: string;
  readonly electionPath: string;
  readonly queues: readonly QueueView[];
  readonly executors: readonly ExecutorView[];
  readonly leaders: readonly LeaderView[];
}

const list = <T>(value: unknown, parse: (item: Record<string, unknown>) => T | undefined): T[] =>
  Array.isArray(value) ? value.flatMap((item) => (isRecord(item) ? (parse(item) ?? []) : [])) : [];

const ageOf = (value: unknown): number | undefined => (isRecord(value) ? num(value.ageSeconds) : undefined);

export function parseEngineSnapshot(value: unknown): EngineSnapshot {
  if (!isRecord(value) || !Array.isArray(value.queues)) throw new Error('not an engine overview');
  return {
    at: text(value.at) ?? '',
    queuePath: text(value.queuePath) ?? '',
    electionPath: text(value.electionPath) ?? '',
    queues: list(value.queues, (queue) =>
      typeof queue.name !== 'string'
        ? undefined
        : {
            name: queue.name,
            path: text(queue.path) ?? '',
            entries: num(queue.entries) ?? 0,
            waiting: num(queue.waiting) ?? 0,
            taken: num(queue.taken) ?? 0,
            oldestAgeSeconds: ageOf(queue.oldestWaiting),
            priorities: list(queue.priorities, (band) =>
              num(band.priority) === undefined
                ? undefined
                : {
                    priority: num(band.priority) ?? 0,
                    waiting: num(band.waiting) ?? 0,
                    taken: num(band.taken) ?? 0,
                    oldestAgeSeconds: ageOf(band.oldestWaiting),
                  },
            ),
            takenEntries: list(queue.takenEntries, (entry) =>
              typeof entry.entry !== 'string'
                ? undefined
                : { entry: entry.entry, jobId: text(entry.jobId), executor: text(entry.executor), forSeconds: num(entry.forSeconds) ?? 0 },
            ),
            servedBy: texts(queue.servedBy) ?? [],
            unserved: queue.unserved === true,
            rejected: list(queue.rejected, (entry) =>
              typeof entry.entry !== 'string'
                ? undefined
                : { entry: entry.entry, text: text(entry.text), bytes: num(entry.bytes) ?? 0, rejectedAt: text(entry.rejectedAt) ?? '' },
            ),
          },
    ),
    executors: list(value.executors, (executor) =>
      typeof executor.name !== 'string'
        ? undefined
        : {
            name: executor.name,
            host: text(executor.host),
            pid: num(executor.pid),
            started: text(executor.started),
            slots: num(executor.slots),
            busy: num(executor.busy) ?? 0,
            actions: texts(executor.actions),
            queues: texts(executor.queues) ?? ['default'],
          },
    ),
    leaders: list(value.leaders, (leader) =>
      typeof leader.distribution !== 'string'
        ? undefined
        : {
            distribution: leader.distribution,
            leader: text(leader.leader),
            standbys: texts(leader.standbys) ?? [],
            status: parseDistributionStatus(leader.status),
          },
    ),
  };
}
