/**
 * The job event stream: `GET /api/job/events` serves lifecycle events live as server-sent events
 * (`id:` the event's seq, `event:` its type, `data:` the event as JSON), filtered by `job` and `action`;
 * a client that reconnects with `Last-Event-ID` (or `?after=`) first gets what it missed, as far as the
 * hub's history reaches. `POST /api/job/events` lets whoever enqueues a job publish `enqueued`, which
 * happens in ZooKeeper where the API cannot see it.
 *
 * A key bound by job acls (viewer, producer: job-acl.ts) gets only the events of jobs it may see, live
 * and replayed; the hub checks each event's audience against the key's identities. A published event
 * gets its job's audience from the store when it is published (one query per few hundred events).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest } from '../errors.js';
import { parseJobEvent, type JobEvent, type JobEventType, type PublishedJobEvent } from '../job/events.js';
import { ACTION_NAME } from '../job/parse.js';
import { isRecord } from '../../util/is-record.js';
import type { JobStore } from '../store/job-store.js';
import { requirePermission, type AccessControl, type Principal } from './access.js';
import type { EventFilter, HubEvent, JobEventHub } from './event-hub.js';
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
const PUBLISHABLE: ReadonlySet<JobEventType> = new Set<JobEventType>(['enqueued']);
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
    await requirePermission(access, request, 'publish');
    const events = parsePublished(request.body, options.maxEvents);
    hub.publish(await withAudiences(options.store, events));
    return { status: 200, message: `${String(events.length)} events published`, count: events.length };
  });
}

/** Job ids per lookup of published events' jobs: one query each, well inside the filter limits. */
const LOOKUP_CHUNK = 200;
const FULL_JOB_ID = /^job\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Each event with its job's audience as stored now, the jobs read a few hundred per query; an event
 * of a job not found (or not named by a job id) is seen by read-all keys only.
 */
async function withAudiences(store: JobStore, events: readonly PublishedJobEvent[]): Promise<HubEvent[]> {
  const ids = [...new Set(events.map((event) => event.job))].filter((id) => FULL_JOB_ID.test(id));
  const audiences = new Map<string, EventAudience>();
  for (let start = 0; start < ids.length; start += LOOKUP_CHUNK) {
    const chunk = ids.slice(start, start + LOOKUP_CHUNK);
    const filter = parseFilter(chunk.map((id) => `id='${id}'`).join(' or '));
    const { jobs } = await store.search({ filter, last: chunk.length });
    for (const job of jobs) audiences.set(job.id, audienceOf(job));
  }
  return events.map((event) => ({ event, audience: audiences.get(event.job) ?? [] }));
}
