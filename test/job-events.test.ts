/**
 * Job lifecycle events: derived by the API from the writes it serves, published for what it cannot
 * see (enqueued), logged one line each, and served live as server-sent events; end to end with a
 * real executor, the whole life of a job arrives in order.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JobApiClient } from '../src/api/client/index.js';
import type { JobEvent, JobEventType } from '../src/api/job/events.js';
import { waitFor } from '../src/harness/wait-for.js';
import { JobEnqueuer } from '../src/enqueue/job-enqueuer.js';
import { JobSubmitter } from '../src/enqueue/job-submitter.js';
import type { Logger } from '../src/util/logger.js';
import { silentLogger } from '../src/util/logger.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';
import { QueueRoutes } from '../src/recipes/queue-routes.js';

/** Every line the API logged: the event lines are what is checked. */
const apiLines: { message: string; fields: Record<string, unknown> }[] = [];
const recording: Logger = {
  ...silentLogger,
  info: (message, fields) => apiLines.push({ message, fields: fields ?? {} }),
};
const bed = useExecutorTestbed({ api: { logger: recording } });

/** Collects a stream's events until `until` says it has enough (or the deadline passes). */
function collect(
  client: JobApiClient,
  filter: { job?: string; action?: string },
): { events: JobEvent[]; opened: Promise<void>; stop: () => void } {
  const controller = new AbortController();
  const events: JobEvent[] = [];
  let markOpen = (): void => undefined;
  const opened = new Promise<void>((resolve) => {
    markOpen = resolve;
  });
  void (async () => {
    const stream = client.events({ ...filter, signal: controller.signal });
    // The first `next()` opens the connection: the server has subscribed once the stream answers.
    const first = stream.next();
    await waitFor(() => bed().api.requestsTo('GET', '/api/job/events').length > 0, { timeoutMs: 5000 });
    markOpen();
    const head = await first;
    if (head.done !== true) events.push(head.value);
    for await (const event of stream) events.push(event);
  })().catch(() => undefined);
  return {
    events,
    opened,
    stop: () => {
      controller.abort();
    },
  };
}

const typesOf = (events: readonly JobEvent[]): JobEventType[] => events.map((event) => event.type);

describe('job lifecycle events', () => {
  it('streams a job created through the API, claimed, progressing and finished, in order with timings', async () => {
    const { client } = bed();
    const { id } = await client.create({ action: 'events_test', priority: 7 });
    const stream = collect(client, { job: id });
    await stream.opened;
    const claimed = await client.claim(id, 'tester@0000000000000001');
    assert.ok(claimed.claimed);
    await client.edit(id, { progress: 40 });
    await client.edit(id, { state: 'SUCCESS', 'return-code': 0, 'status-message': 'done' });
    await waitFor(() => stream.events.length >= 4, { timeoutMs: 5000, message: 'four events' });
    stream.stop();
    assert.deepEqual(typesOf(stream.events), ['taken', 'started', 'progress', 'finished']);
    const [taken, , progress, finished] = stream.events;
    assert.equal(taken?.executor, 'tester@0000000000000001');
    assert.equal(taken.attempt, 1);
    assert.equal(progress?.progress, 40);
    assert.equal(finished?.state, 'SUCCESS');
    assert.equal(finished['return-code'], 0);
    assert.equal(typeof finished.duration, 'number');
    assert.ok(stream.events.every((event, index) => index === 0 || event.seq > (stream.events[index - 1]?.seq ?? 0)));
    // One structured log line per transition, the creation included.
    const logged = apiLines.filter((line) => line.fields.job === id).map((line) => line.fields.event);
    assert.deepEqual(logged, ['job.created', 'job.taken', 'job.started', 'job.progress', 'job.finished']);
  });

  it('tells timed out, cancelled and released (a retry included) apart, and filters by action', async () => {
    const { client } = bed();
    const stream = collect(client, { action: 'events_kinds' });
    await stream.opened;
    const timedOut = (await client.create({ action: 'events_kinds' })).id;
    await client.claim(timedOut, 'tester@0000000000000001');
    await client.edit(timedOut, { state: 'FAILED', 'return-code': 124, 'status-message': 'timed out after 1 s' });
    const cancelled = (await client.create({ action: 'events_kinds' })).id;
    await client.cancel(cancelled);
    const released = (await client.create({ action: 'events_kinds' })).id;
    await client.claim(released, 'tester@0000000000000001');
    await client.edit(released, { state: 'QUEUED', 'status-message': 'handed back' });
    const retried = await client.retry(timedOut);
    assert.equal(retried.state, 'QUEUED');
    assert.equal(retried['return-code'], undefined);
    await assert.rejects(client.retry(released), /only a final job .* can be retried/);
    await client.create({ action: 'other_action' });
    await waitFor(() => stream.events.length >= 11, { timeoutMs: 5000, message: 'eleven events' });
    stream.stop();
    assert.deepEqual(
      stream.events.map((event) => `${event.job === timedOut ? 'T' : event.job === cancelled ? 'C' : 'R'}:${event.type}`),
      [
        'T:created',
        'T:taken',
        'T:started',
        'T:timed-out',
        'C:created',
        'C:cancelled',
        'R:created',
        'R:taken',
        'R:started',
        'R:released',
        'T:released',
      ],
    );
    assert.equal(stream.events.find((event) => event.type === 'timed-out')?.['return-code'], 124);
  });

  it('replays what a client missed when it reconnects with Last-Event-ID, and refuses bad filters', async () => {
    const { api, client } = bed();
    const { id } = await client.create({ action: 'events_replay' });
    const first = apiLines.find((line) => line.fields.job === id && line.fields.event === 'job.created')?.fields.seq;
    assert.equal(typeof first, 'number');
    await client.cancel(id);
    const response = await fetch(`${api.baseUrl}/api/job/events?job=${id}`, {
      headers: { authorization: `Bearer ${api.adminKey.key}:${api.adminKey.secret}`, 'last-event-id': String(Number(first) - 1) },
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = response.body?.getReader();
    assert.ok(reader !== undefined);
    let text = '';
    while (!text.includes('event: cancelled')) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += Buffer.from(chunk.value).toString('utf8');
    }
    await reader.cancel();
    assert.match(text, new RegExp(`id: ${String(first)}\\nevent: created\\ndata: \\{[^\\n]*"job":"${id}"`));
    assert.match(text, /event: cancelled/);
    const bad = await fetch(`${api.baseUrl}/api/job/events?job=nope`, {
      headers: { authorization: `Bearer ${api.adminKey.key}:${api.adminKey.secret}` },
    });
    assert.equal(bad.status, 400);
    assert.match(String(((await bad.json()) as { message?: unknown }).message), /"job" must be a job id/);
    const anonymous = await fetch(`${api.baseUrl}/api/job/events`);
    assert.equal(anonymous.status, 401);
    await anonymous.arrayBuffer();
  });

  it('accepts published enqueued events only, and an executor run shows the whole life in order', async () => {
    const { client, queue } = bed();
    await assert.rejects(
      client.publishEvents([
        { type: 'finished', at: new Date().toISOString(), job: 'job/01234567-89ab-7def-8123-456789abcdef', action: 'x', state: 'SUCCESS' },
      ]),
      /"finished" is derived by the API/,
    );
    bed().spawnExecutor();
    const stream = collect(client, { action: 'noop' });
    await stream.opened;
    const enqueuer = new JobEnqueuer({
      queue: new QueueRoutes(bed().zkClient, queue.paths.root),
      logger: silentLogger,
      publish: (events) => client.publishEvents(events),
    });
    const submitter = new JobSubmitter(client, enqueuer, silentLogger);
    const [submitted] = await submitter.submit([{ action: 'noop', priority: 3 }]);
    assert.ok(submitted?.enqueued);
    await waitFor(() => stream.events.some((event) => event.type === 'finished'), { timeoutMs: 15_000, message: 'the job to finish' });
    stream.stop();
    const ofJob = stream.events.filter((event) => event.job === submitted.id);
    assert.deepEqual(typesOf(ofJob), ['created', 'enqueued', 'taken', 'started', 'finished']);
    assert.equal(ofJob[1]?.priority, 3);
    assert.match(ofJob[2]?.executor ?? '', /@[0-9a-f]{16}$/);
  });
});
