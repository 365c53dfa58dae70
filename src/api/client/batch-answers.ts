/** The answers of a batch's feeder operations (docs/batches.md), from `unknown` JSON. */
import { ApiError } from '../errors.js';
import type { JobDocument } from '../job/document.js';
import { isRecord } from '../../util/is-record.js';
import type { BatchRequeued } from './job-api.js';

/** `requeue`'s answer: the batch, how many failed tasks went back, and those the API left to enqueue. */
export function parseRequeued(answer: unknown, path: string, parseJob: (body: unknown) => JobDocument): BatchRequeued {
  const record = isRecord(answer) ? answer : {};
  const { requeued, enqueued } = record;
  if (typeof requeued !== 'number' || typeof enqueued !== 'boolean' || !Array.isArray(record.ready)) {
    throw new ApiError('internal', `${path} answered without "requeued", "ready" and "enqueued"`);
  }
  const toEnqueue = enqueued
    ? []
    : record.ready.map((item: unknown) => {
        const task = isRecord(item) ? item : {};
        if (typeof task.id !== 'string' || typeof task.priority !== 'number')
          throw new ApiError('internal', `${path} answered a task without id and priority`);
        return { id: task.id, priority: task.priority };
      });
  return { batch: parseJob(answer), count: requeued, toEnqueue };
}

/** `tasks`' answer: a list batch's specs as `[{index, spec}]`. */
export function parseBatchTasks(body: unknown, path: string): { index: number; spec: unknown }[] {
  const tasks = isRecord(body) ? body.tasks : undefined;
  if (!Array.isArray(tasks)) throw new ApiError('internal', `${path} answered without a list of tasks`);
  return tasks.map((item: unknown) => {
    const index = isRecord(item) ? item.index : undefined;
    if (typeof index !== 'number' || !Number.isSafeInteger(index))
      throw new ApiError('internal', `${path} answered a task without an index`);
    return { index, spec: isRecord(item) ? item.spec : undefined };
  });
}
