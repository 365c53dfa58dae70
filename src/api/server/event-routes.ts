/**
 * The job event stream: `GET /api/job/events` serves lifecycle events live as server-sent events
 * (`id:` the event's seq, `event:` its type, `data:` the event as JSON), filtered by `job` and `action`;
 * a client that reconnects with `Last-Event-ID` (or `?after=`) first gets what it missed, as far as the
 * hub's history reaches. `POST /api/job/events` lets whoever enqueues a job publish `enqueued`, which
 * happens in ZooKeeper where the API cannot see it, and the executor running a job publish its action's
 * `stage-in` and `stage-out` (a key with `claim`, for a RUNNING job, naming the job's owner unless the
 * key may `edit` any job: an executor key speaks only for the jobs executors run).
 *
 * A key bound by job acls (viewer, producer: job-acl.ts) gets only the events of jobs it may see, live
 * and replayed; the hub checks each event's audience against the key's identities. A published event
 * gets its job's audience from the store when it is published (one query per few hundred events).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError, badRequest, notFound } from '../errors.js';
import type { JobDocument } from '../job/document.js';
import { parseJobEvent, type JobEvent, type JobEventType, type PublishedJobEvent } from '../job/events.js';
import { ACTION_NAME } from '../job/parse.js';
import { isRecord } from '../../util/is-record.js';
import type { JobStore } from '../store/job-store.js';
import { requirePermission, type AccessControl, type Principal } from './access.js';
import type { EventFilter, JobEventHub } from './event-hub.js';
import { aclBound, audienceOf, identitiesOf, type EventAudience } from './job-acl.js';
import { parseFilter } from '../cimi/parser.js';

export interface EventRoutesOptions {
  readonly access: AccessControl;
  readonly hub: JobEventHub;
  /** Where a published event's job is read, for who may see it. */
  readonly store: JobStore;
  /** Most events one publish may carry. */
  readonly maxEvents: number;
  /** Between keep-alive comments on an idle stream, so proxies and clients see it is alive. */
  readonly heartbeatMs?: number;
}

/** Only what the API cannot derive from the writes it serves. */
const PUBLISHABLE: ReadonlySet<JobEventType> = new Set<JobEventType>(['enqueued', 'stage-in', 'stage-out']);
/** Published from inside a running job, by its executor. */
const STAGE_EVENTS: ReadonlySet<JobEventType> = new Set<JobEventType>(['stage-in', 'stage-out']);
const JOB_ID = /^(?:job\/)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
const DEFAULT_HEARTBEAT_MS = 15_000;
/** A client this far behind is cut off; it reconnects with Last-Event-ID and gets the history. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

function queryText(request: FastifyRequest, name: string): string | undefined {
  const value: unknown = isRecord(request.query) ? request.query[name] : undefined;
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.trim() === '') throw badRequest(`"${name}" must be a single non-empty value`);
  return value.trim();
}

function filterOf(request: FastifyRequest, access: AccessControl, principal: Principal): EventFilter {
  const identities = aclBound(access, principal) ? { identities: identitiesOf(principal) } : {};
  const job = queryText(request, 'job');
  const action = queryText(request, 'action');
  const uuid = job === undefined ? undefined : JOB_ID.exec(job)?.[1];
  if (job !== undefined && uuid === undefined) throw badRequest(`"job" must be a job id, job/<uuid>, got ${JSON.stringify(job)}`);
  if (action !== undefined && !ACTION_NAME.test(action)) throw badRequest(`"action" must be an action name, got ${JSON.stringify(action)}`);
  return { ...(uuid === undefined ? {} : { job: `job/${uuid}` }), ...(action === undefined ? {} : { action }), ...identities };
}

function afterOf(request: FastifyRequest): number | undefined {
  const header = request.headers['last-event-id'];
  const text = (typeof header === 'string' ? header : undefined) ?? queryText(request, 'after');
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text.trim())) throw badRequest(`Last-Event-ID (or "after") must be an event number, got ${JSON.stringify(text)}`);
  return Number(text);
}

function parsePublished(body: unknown, maxEvents: number): PublishedJobEvent[] {
  if (!isRecord(body) || !Array.isArray(body.events)) throw badRequest('publishing needs a body like {"events": [...]}');
  const list: unknown[] = body.events;
  if (list.length > maxEvents) throw badRequest(`at most ${String(maxEvents)} events per request, got ${String(list.length)}`);
  return list.map((item, index) => {
    const event = parseJobEvent(item, { seqRequired: false });
    if (event === undefined) throw badRequest(`event ${String(index)} is not a job event (type, at, job, action, state)`, { index });
    if (!PUBLISHABLE.has(event.type)) {
      throw badRequest(
        `event ${String(index)}: "${event.type}" is derived by the API from the job's changes; only ${[...PUBLISHABLE].join(', ')} may be published`,
        { index },
      );
    }
    const { seq: _seq, ...published } = event;
    return published;
  });
}

export function registerEventRoutes(app: FastifyInstance, options: EventRoutesOptions): void {
  const { access, hub } = options;
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  // Open streams would otherwise keep a closing server waiting for them forever.
  app.addHook('preClose', (done) => {
    hub.close();
    done();
  });

  app.get('/api/job/events', async (request, reply) => {
    const principal = await requirePermission(access, request, 'read');
    const filter = filterOf(request, access, principal);
    const after = afterOf(request);
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    raw.write(`retry: 2000\n: stream open at event ${String(hub.lastSeq)}\n\n`);
    let open = true;
    const end = (): void => {
      if (!open) return;
      open = false;
      clearInterval(heartbeat);
      unsubscribe();
      raw.end();
    };
    const send = (event: JobEvent): void => {
      if (!open) return;
      raw.write(`id: ${String(event.seq)}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
      if (raw.writableLength > MAX_BUFFERED_BYTES) end();
    };
    const heartbeat = setInterval(() => raw.write(': keep-alive\n\n'), heartbeatMs);
    heartbeat.unref();
    const unsubscribe = hub.subscribe(filter, send, { ...(after === undefined ? {} : { afterSeq: after }), onClose: end });
    request.raw.once('close', end);
    raw.once('close', end);
  });

  app.post('/api/job/events', async (request) => {
    const principal = await requirePermission(access, request, 'publish');
    const events = parsePublished(request.body, options.maxEvents);
    const jobs = await jobsOf(options.store, events);
    checkStageEvents(access, principal, events, jobs);
    hub.publish(events.map((event) => ({ event, audience: audienceOfJob(jobs.get(event.job)) })));
    return { status: 200, message: `${String(events.length)} events published`, count: events.length };
  });
}

/** Job ids per lookup of published events' jobs: one query each, well inside the filter limits. */
const LOOKUP_CHUNK = 200;
const FULL_JOB_ID = /^job\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The published events' jobs as stored now, read a few hundred per query; absent: not found (or not named by a job id). */
async function jobsOf(store: JobStore, events: readonly PublishedJobEvent[]): Promise<Map<string, JobDocument>> {
  const ids = [...new Set(events.map((event) => event.job))].filter((id) => FULL_JOB_ID.test(id));
  const found = new Map<string, JobDocument>();
  for (let start = 0; start < ids.length; start += LOOKUP_CHUNK) {
    const chunk = ids.slice(start, start + LOOKUP_CHUNK);
    const filter = parseFilter(chunk.map((id) => `id='${id}'`).join(' or '));
    const { jobs } = await store.search({ filter, last: chunk.length });
    for (const job of jobs) found.set(job.id, job);
  }
  return found;
}

/** An event of a job not found is seen by read-all keys only. */
function audienceOfJob(job: JobDocument | undefined): EventAudience {
  return job === undefined ? [] : audienceOf(job);
}

/**
 * A stage event speaks for a running action: only a key that may claim jobs publishes one, only for a
 * RUNNING job, and (unless the key may edit any job) only naming the executor that owns the job now.
 */
function checkStageEvents(
  access: AccessControl,
  principal: Principal,
  events: readonly PublishedJobEvent[],
  jobs: ReadonlyMap<string, JobDocument>,
): void {
  events.forEach((event, index) => {
    if (!STAGE_EVENTS.has(event.type)) return;
    if (!access.allows(principal, 'claim')) {
      throw new ApiError('forbidden', `role ${principal.role} may not publish "${event.type}": only the executor running a job does`, {
        details: { role: principal.role, index },
      });
    }
    const job = jobs.get(event.job);
    if (job === undefined) throw notFound(`event ${String(index)}: ${event.job} not found`);
    if (job.state !== 'RUNNING') {
      throw new ApiError('conflict', `event ${String(index)}: "${event.type}" of ${job.id}, which is ${job.state}, not RUNNING`, {
        details: { index },
      });
    }
    if (!access.allows(principal, 'edit') && (job.executor ?? undefined) !== event.executor) {
      throw new ApiError(
        'forbidden',
        `role ${principal.role} may publish "${event.type}" of ${job.id} only as its owner ${JSON.stringify(job.executor ?? null)}, not ${JSON.stringify(event.executor ?? null)}`,
        { details: { role: principal.role, index } },
      );
    }
  });
}
