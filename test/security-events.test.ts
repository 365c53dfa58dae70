/**
 * Issue 14, finding 3, for the event stream: attacked over HTTP against the real job API (SQLite). A
 * viewer or producer key following `GET /api/job/events` must get only the events of jobs it may read
 * (the job's acl, or its own creation), live and in the replay a reconnect asks for; admin keys get all.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { JobApiClient } from '../src/api/client/index.js';
import type { JobEvent } from '../src/api/job/events.js';
import { waitFor } from '../src/harness/wait-for.js';
import { startTestApi, type ApiKey, type TestApi } from './fixtures/api-server.js';

const ACTION = 'acl_events';
let api: TestApi;
before(async () => {
  api = await startTestApi();
});
after(async () => {
  await api.close();
});

async function call(method: string, path: string, key: ApiKey, body?: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${api.baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${key.key}:${key.secret}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const parsed = (await response.json()) as Record<string, unknown>;
  assert.ok(response.status < 300, `${method} ${path}: ${String(response.status)} ${JSON.stringify(parsed)}`);
  return parsed;
}

async function create(key: ApiKey, acl?: Record<string, unknown>): Promise<string> {
  const created = await call('POST', '/api/job', key, { action: ACTION, ...(acl === undefined ? {} : { acl }) });
  return String(created['resource-id']);
}

/** A job's life as its events show it: created, enqueued (published, as an enqueuer does), cancelled. */
async function live(id: string): Promise<void> {
  await call('POST', '/api/job/events', api.adminKey, {
    events: [{ type: 'enqueued', at: new Date().toISOString(), job: id, action: ACTION, state: 'QUEUED' }],
  });
  await call('POST', `/api/${id}/cancel`, api.adminKey);
}

interface Follower {
  readonly events: JobEvent[];
  close(): Promise<void>;
}

/** A live stream of `key`'s, open (subscribed on the server) when this returns. */
async function follow(key: ApiKey): Promise<Follower> {
  const client = await JobApiClient.create({ baseUrl: api.baseUrl, credentials: key, compatibility: 'engine' });
  const controller = new AbortController();
  const events: JobEvent[] = [];
  let opened = false;
  const reading = (async () => {
    for await (const event of client.events({ action: ACTION, signal: controller.signal, onOpen: () => (opened = true) }))
      events.push(event);
  })();
  await waitFor(() => opened, { timeoutMs: 10_000, message: 'the event stream to open' });
  return {
    events,
    async close() {
      controller.abort();
      await reading.catch(() => undefined);
      await client.close();
    },
  };
}

/** The replay a reconnecting client gets (`?after=0`): every kept event it may see, read until `last` ends. */
async function replay(key: ApiKey, last: string): Promise<JobEvent[]> {
  const controller = new AbortController();
  const response = await fetch(`${api.baseUrl}/api/job/events?after=0&action=${ACTION}`, {
    headers: { authorization: `Bearer ${key.key}:${key.secret}` },
    signal: controller.signal,
  });
  assert.equal(response.status, 200);
  assert.ok(response.body !== null);
  const events: JobEvent[] = [];
  const decoder = new TextDecoder();
  let text = '';
  const deadline = Date.now() + 10_000;
  try {
    for await (const chunk of response.body) {
      text += decoder.decode(chunk as Uint8Array, { stream: true });
      const blocks = text.split('\n\n');
      text = blocks.pop() ?? '';
      for (const block of blocks) {
        const data = block.split('\n').find((line) => line.startsWith('data: '));
        if (data !== undefined) events.push(JSON.parse(data.slice('data: '.length)) as JobEvent);
      }
      if (events.some((event) => event.job === last && event.type === 'cancelled')) return events;
      assert.ok(Date.now() < deadline, 'the replay never reached the last job');
    }
    throw new Error('the replay ended before the last job');
  } finally {
    controller.abort();
  }
}

const jobsOf = (events: readonly JobEvent[]): Set<string> => new Set(events.map((event) => event.job));

describe('finding 3: event streams honour job ACLs', () => {
  test("a viewer or producer stream carries only the events of jobs the key may read; an admin's carries all", async () => {
    const viewer = await api.createKey('viewer');
    const producer = await api.createKey('producer');
    const streams = { viewer: await follow(viewer), producer: await follow(producer), admin: await follow(api.adminKey) };
    try {
      const alices = await create(api.adminKey, { owners: ['user/alice'] });
      const alicesToo = await create(api.adminKey, { owners: ['user/alice'], 'view-data': ['user/bob'] });
      const shared = await create(api.adminKey, { owners: ['user/alice'], 'view-data': [viewer.key] });
      const open = await create(api.adminKey);
      const producers = await create(producer, { owners: ['user/alice'] });
      for (const id of [alices, alicesToo, shared, open, producers]) await live(id);
      // Last: once its end is on every stream, everything before it is too (one hub, in order).
      const last = await create(api.adminKey);
      await live(last);
      for (const [name, stream] of Object.entries(streams)) {
        await waitFor(() => stream.events.some((event) => event.job === last && event.type === 'cancelled'), {
          timeoutMs: 10_000,
          message: `the last job's end on the ${name}'s stream`,
        });
      }
      const alicesOnly = new Set([alices, alicesToo]);
      const leaked = (events: readonly JobEvent[]): JobEvent[] => events.filter((event) => alicesOnly.has(event.job));
      assert.deepEqual(leaked(streams.viewer.events), [], "the viewer's stream carried events of jobs only alice may see");
      assert.deepEqual(jobsOf(streams.viewer.events), new Set([shared, open, last]));
      assert.deepEqual(
        streams.viewer.events.filter((event) => event.job === shared).map((event) => event.type),
        ['created', 'enqueued', 'cancelled'],
        'a job the viewer may read: its whole life, the published enqueued event included',
      );
      assert.deepEqual(leaked(streams.producer.events), [], "the producer's stream carried events of jobs only alice may see");
      assert.deepEqual(jobsOf(streams.producer.events), new Set([open, producers, last]), 'a producer sees what it created');
      assert.deepEqual(jobsOf(streams.admin.events), new Set([alices, alicesToo, shared, open, producers, last]));

      const replayed = await replay(viewer, last);
      assert.deepEqual(leaked(replayed), [], 'the replay carried events of jobs only alice may see');
      assert.deepEqual(jobsOf(replayed), new Set([shared, open, last]));
      assert.ok(
        replayed.every((event) => !('audience' in event)),
        'who may see a job (its acl) is not served',
      );
      assert.equal(jobsOf(await replay(api.adminKey, last)).size, 6, "an admin's replay carries every job");
    } finally {
      for (const stream of Object.values(streams)) await stream.close();
    }
  });
});
