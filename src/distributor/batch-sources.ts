/**
 * Where the batch feeder takes each batch's next task specs from, behind one call: `next(batch, n)`
 * from where the batch's record says it stopped. A list batch's specs are read from the job API by
 * index (a keyset page); a generator batch's come from its `defineBatch` module, resumed from the
 * batch's marker and kept open between groups while the record follows it (a generator is re-created
 * from the recorded marker whenever they part: a new leader, a refused advance).
 */
import type { JobApi } from '../api/client/job-api.js';
import type { BatchField, TaskSpec } from '../api/batch/batch-field.js';
import { batchGeneratorDefinitionProblems, type BatchGeneratorDefinition, type BatchTaskItem } from '../sdk/batch.js';
import { loadDropIns, type DropInKind } from '../util/drop-in-modules.js';
import { describeValue } from '../sdk/describe-value.js';
import { isRecord } from '../util/is-record.js';
import type { Logger } from '../util/logger.js';

export interface NextTasks {
  readonly specs: readonly TaskSpec[];
  /** The marker after the last of them (a list's: the next index). */
  readonly marker?: string;
  /** The source has nothing after them. */
  readonly exhausted: boolean;
  /** The generator's estimate, when the batch has no total yet. */
  readonly total?: number;
}

const GENERATOR_KIND: DropInKind<BatchGeneratorDefinition> = {
  noun: 'batch generator',
  exportName: 'batch',
  example: 'export default defineBatch({...})',
  problemsOf: batchGeneratorDefinitionProblems,
  nameOf: (definition) => definition.name,
};

interface OpenGenerator {
  readonly iterator: AsyncIterator<BatchTaskItem>;
  /** Where the iterator stands: the marker of the last item it gave. */
  marker: string | undefined;
}

/** The batch names a generator this feeder did not load. */
export class SourceNotLoaded extends Error {}

export class BatchSources {
  readonly #api: JobApi;
  readonly #dirs: readonly string[];
  readonly #log: Logger;
  #generators: Promise<ReadonlyMap<string, BatchGeneratorDefinition>> | undefined;
  readonly #open = new Map<string, OpenGenerator>();

  constructor(api: JobApi, dirs: readonly string[], log: Logger) {
    this.#api = api;
    this.#dirs = dirs;
    this.#log = log;
  }

  async next(id: string, batch: BatchField, limit: number): Promise<NextTasks> {
    return batch.source === 'list' ? this.#nextOfList(id, batch, limit) : this.#nextOfGenerator(id, batch, limit);
  }

  /** The batch's record now says `marker`: the open generator stands there. */
  advanced(id: string, marker: string | undefined): void {
    const open = this.#open.get(id);
    if (open !== undefined && marker !== undefined) open.marker = marker;
  }

  forget(id: string): void {
    const open = this.#open.get(id);
    this.#open.delete(id);
    void open?.iterator.return?.().catch(() => undefined);
  }

  keepOnly(ids: ReadonlySet<string>): void {
    for (const id of [...this.#open.keys()]) if (!ids.has(id)) this.forget(id);
  }

  async close(): Promise<void> {
    for (const id of [...this.#open.keys()]) this.forget(id);
    await Promise.resolve();
  }

  async #nextOfList(id: string, batch: BatchField, limit: number): Promise<NextTasks> {
    const found = await this.#api.batchTasks(id, batch.sent, limit);
    const specs: TaskSpec[] = [];
    // Only the run of indexes that follows `sent`: a spec still being uploaded is fed next pass.
    for (const { index, spec } of found) {
      if (index !== batch.sent + specs.length) break;
      specs.push(spec as TaskSpec);
    }
    const sent = batch.sent + specs.length;
    const exhausted = batch.sealed && batch.total !== undefined && sent >= batch.total;
    return { specs, marker: String(sent), exhausted };
  }

  async #nextOfGenerator(id: string, batch: BatchField, limit: number): Promise<NextTasks> {
    const definition = (await this.#definitions()).get(batch.generator ?? '');
    if (definition === undefined) {
      throw new SourceNotLoaded(
        `the feeder has no batch generator ${JSON.stringify(batch.generator)} (its folders: ${this.#dirs.join(', ') || 'none'})`,
      );
    }
    const args = batch.args ?? {};
    let open = this.#open.get(id);
    if (open === undefined || open.marker !== batch.marker) {
      if (open !== undefined) this.forget(id);
      const iterable = definition.tasks(args, batch.marker);
      const iterator = Symbol.asyncIterator in iterable ? iterable[Symbol.asyncIterator]() : toAsync(iterable[Symbol.iterator]());
      open = { iterator, marker: batch.marker };
      this.#open.set(id, open);
    }
    const specs: TaskSpec[] = [];
    let marker: string | undefined;
    let exhausted = false;
    while (specs.length < limit) {
      const step = await open.iterator.next();
      if (step.done === true) {
        exhausted = true;
        break;
      }
      const item: unknown = step.value;
      if (!isRecord(item) || typeof item.marker !== 'string' || !isRecord(item.spec)) {
        throw new Error(`batch generator ${definition.name} yielded ${describeValue(item)}; expected {spec, marker}`);
      }
      specs.push(item.spec);
      marker = item.marker;
    }
    const total = batch.total === undefined && definition.estimate !== undefined ? await definition.estimate(args) : undefined;
    return {
      specs,
      ...(marker === undefined ? {} : { marker }),
      exhausted,
      ...(total === undefined || !Number.isSafeInteger(total) || total < 0 ? {} : { total }),
    };
  }

  #definitions(): Promise<ReadonlyMap<string, BatchGeneratorDefinition>> {
    this.#generators ??= loadDropIns(this.#dirs, GENERATOR_KIND, this.#log).then(
      ({ definitions }) => new Map([...definitions].map(([name, loaded]) => [name, loaded.definition])),
    );
    return this.#generators;
  }
}

function toAsync<T>(iterator: Iterator<T>): AsyncIterator<T> {
  return {
    next: () => Promise.resolve(iterator.next()),
    return: () => Promise.resolve(iterator.return?.() ?? { done: true as const, value: undefined }),
  };
}
