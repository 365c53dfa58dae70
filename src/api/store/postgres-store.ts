/**
 * The job store in PostgreSQL, for several API replicas on one database. The schema mirrors SQLite's:
 * dates are ISO text and text columns use the "C" collation, so that filters and orderings compare
 * bytes exactly as SQLite does, whatever locale the database was created with.
 */
import { DatabaseError, Pool, type PoolClient, type QueryConfig } from 'pg';

import type { FilterNode } from '../cimi/ast.js';
import { compileFilter, compileOrderBy, toNumberedPlaceholders, type CompileOptions } from '../cimi/sql.js';
import { conflict, notFound } from '../errors.js';
import type { JobDocument, JobState } from '../job/document.js';
import { BATCH_ACTION } from '../batch/batch-field.js';
import { toError } from '../../util/errors.js';
import { ALL_COLUMNS, INDEXED_COLUMNS, JOBS_TABLE, UPDATED_COLUMNS, rowValues, updatedValues, type ColumnValue } from './columns.js';
import type { BatchSpec, CreateResult, JobMutation, JobSearch, JobStore, SearchResult } from './job-store.js';
import {
  BATCH_SPECS_TABLE,
  applyMutation,
  compileOptions,
  countOf,
  countStatement,
  countedResult,
  documentOfRow,
  field,
  orderOf,
  pageOf,
  stateCountsOf,
  tallyTarget,
  talliedParent,
} from './store-common.js';
import { MIGRATIONS } from './postgres-schema.js';

export interface PostgresStoreOptions {
  /** Connections this replica holds at most; default 10. */
  readonly poolSize?: number;
}

const DEFAULT_POOL_SIZE = 10;
/** How long a request waits for a free pooled connection before failing instead of hanging. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Arbitrary but fixed: every replica must take the same advisory lock around schema changes. */
const SCHEMA_LOCK_KEY = 7_300_917_642;

type Row = Record<string, unknown>;
type Queryable = Pick<PoolClient, 'query'>;

const placeholders = (from: number, count: number): string => Array.from({ length: count }, (_, index) => `$${from + index}`).join(', ');

// Named statements are prepared once per pooled connection, then only bound and executed.
const INSERT = {
  name: 'job-store-insert',
  text: `INSERT INTO ${JOBS_TABLE} (${ALL_COLUMNS.join(', ')}) VALUES (${placeholders(1, ALL_COLUMNS.length)})
         ON CONFLICT (idempotency_key) DO NOTHING`,
};
/**
 * A bulk create in one statement whatever its size: one array parameter per column, unnested into
 * rows in list order. ON CONFLICT then skips a row whose key an older job or an earlier row holds,
 * exactly as inserting the rows one by one would.
 */
const INSERT_MANY = {
  name: 'job-store-insert-many',
  text: `INSERT INTO ${JOBS_TABLE} (${ALL_COLUMNS.join(', ')})
         SELECT * FROM unnest(${[
           ...INDEXED_COLUMNS.map(({ type }, index) => `$${index + 1}::${type === 'number' ? 'integer' : 'text'}[]`),
           `$${INDEXED_COLUMNS.length + 1}::jsonb[]`,
         ].join(', ')})
         ON CONFLICT (idempotency_key) DO NOTHING`,
};
const SELECT_BY_KEYS = {
  name: 'job-store-select-by-keys',
  text: `SELECT doc FROM ${JOBS_TABLE} WHERE idempotency_key = ANY($1::text[])`,
};
const SELECT_BY_ID = { name: 'job-store-select-by-id', text: `SELECT doc FROM ${JOBS_TABLE} WHERE id = $1` };
const SELECT_FOR_UPDATE = { name: 'job-store-select-for-update', text: `${SELECT_BY_ID.text} FOR UPDATE` };
const SELECT_BY_KEY = { name: 'job-store-select-by-key', text: `SELECT doc FROM ${JOBS_TABLE} WHERE idempotency_key = $1` };
const UPDATE = {
  name: 'job-store-update',
  text: `UPDATE ${JOBS_TABLE} SET ${UPDATED_COLUMNS.map((column, index) => `${column} = $${index + 1}`).join(', ')}
         WHERE id = $${UPDATED_COLUMNS.length + 1}`,
};
/** A batch's stored specs go with it, in the same statement (cleanup_jobs deletes final batches so). */
function deleteWithSpecs(where: string): string {
  return `WITH gone AS (DELETE FROM ${JOBS_TABLE}${where} RETURNING id, action),
    specs AS (DELETE FROM ${BATCH_SPECS_TABLE} WHERE batch IN (SELECT id FROM gone WHERE action = '${BATCH_ACTION}'))
    SELECT count(*) AS n FROM gone`;
}
const DELETE_BY_ID = { name: 'job-store-delete-by-id', text: deleteWithSpecs(' WHERE id = $1') };

export async function openPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<JobStore> {
  const poolSize = options.poolSize ?? DEFAULT_POOL_SIZE;
  if (!Number.isSafeInteger(poolSize) || poolSize < 1) throw new Error(`poolSize must be a positive integer, got ${poolSize}`);
  const pool = new Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  // An idle pooled connection that breaks (server restart, network) is reported here and dropped
  // from the pool; without a listener the 'error' event would crash the process. The next query
  // opens a fresh connection, or fails with its own error.
  pool.on('error', () => undefined);
  const store = new PostgresJobStore(pool);
  try {
    await store.migrate();
  } catch (error) {
    await pool.end();
    throw error;
  }
  return store;
}

class PostgresJobStore implements JobStore {
  readonly kind = 'postgres';
  readonly #pool: Pool;
  #closing: Promise<void> | undefined;

  constructor(pool: Pool) {
    this.#pool = pool;
  }

  /** Replicas starting together queue on the advisory lock; the first creates, the others find it done. */
  migrate(): Promise<void> {
    return this.#transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK_KEY]);
      await client.query('CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL PRIMARY KEY, applied text NOT NULL)');
      const current = countOf(field(await one(client, 'SELECT coalesce(max(version), 0) AS v FROM schema_version'), 'v'));
      if (current > MIGRATIONS.length) {
        throw new Error(
          `the database has job store schema version ${current}, newer than this build knows (${MIGRATIONS.length}); upgrade the engine`,
        );
      }
      for (let version = current + 1; version <= MIGRATIONS.length; version += 1) {
        for (const statement of MIGRATIONS[version - 1] ?? []) await client.query(statement);
        await client.query('INSERT INTO schema_version (version, applied) VALUES ($1, $2)', [version, new Date().toISOString()]);
      }
    });
  }

  /** Without a transaction: one round trip instead of three, and either statement stands alone. */
  create(job: JobDocument): Promise<CreateResult> {
    return createOne(this.#pool, job);
  }

  async createMany(jobs: readonly JobDocument[]): Promise<CreateResult[]> {
    if (jobs.length === 0) return [];
    if (jobs.length === 1) return this.#transaction((client) => createOneByOne(client, jobs));
    try {
      return await this.#transaction((client) => createAtOnce(client, jobs));
    } catch (error) {
      // The statement does not say which row collided, and the transaction is void: one by one, in
      // a new transaction, the colliding job raises the conflict naming it, as it would have alone.
      if (error instanceof DatabaseError && error.code === '23505') {
        return this.#transaction((client) => createOneByOne(client, jobs));
      }
      throw error;
    }
  }

  async get(id: string): Promise<JobDocument | undefined> {
    const [row] = await rows(this.#pool, { ...SELECT_BY_ID, values: [id] });
    return row === undefined ? undefined : documentOfRow(row);
  }

  update(id: string, mutate: JobMutation, expectedRevision?: number): Promise<JobDocument> {
    return this.#transaction(async (client) => {
      // FOR UPDATE: concurrent writers of this job wait here, then read the winner's revision.
      const [row] = await rows(client, { ...SELECT_FOR_UPDATE, values: [id] });
      if (row === undefined) throw notFound(`${id} not found`);
      const current = documentOfRow(row);
      const next = applyMutation(current, mutate, expectedRevision);
      await uniqueGuarded(client.query({ ...UPDATE, values: [...updatedValues(next), id] }), next);
      await tally(client, current, next);
      return next;
    });
  }

  updateFirst(search: JobSearch, limit: number, mutate: JobMutation): Promise<JobDocument[]> {
    if (limit <= 0) return Promise.resolve([]);
    const options = compileOptions('postgres');
    const where = whereOf(search.filter, options);
    const order = compileOrderBy(orderOf(search), options);
    return this.#transaction(async (client) => {
      // SKIP LOCKED: rows a concurrent writer holds are left for the next call instead of waited for.
      const found = await rows(client, {
        text: numbered(`SELECT doc FROM ${JOBS_TABLE}${where.sql} ${order} LIMIT ? FOR UPDATE SKIP LOCKED`),
        values: [...where.params, limit],
      });
      const updated: JobDocument[] = [];
      for (const row of found) {
        const current = documentOfRow(row);
        const next = applyMutation(current, mutate, undefined);
        await uniqueGuarded(client.query({ ...UPDATE, values: [...updatedValues(next), next.id] }), next);
        await tally(client, current, next);
        updated.push(next);
      }
      return updated;
    });
  }

  async search(search: JobSearch): Promise<SearchResult> {
    const { limit, offset } = pageOf(search);
    const options = compileOptions('postgres');
    const where = whereOf(search.filter, options);
    const order = compileOrderBy(orderOf(search), options);
    // One snapshot for the count and the page.
    return await this.#transaction(async (client) => {
      const counted = countedResult(
        countOf(field(await one(client, numbered(countStatement(JOBS_TABLE, where.sql, search.countLimit)), where.params), 'n')),
        search.countLimit,
      );
      if (limit === 0 || (offset >= counted.count && counted.countCapped !== true)) return { ...counted, jobs: [] };
      const page = await rows(client, {
        text: numbered(`SELECT doc FROM ${JOBS_TABLE}${where.sql} ${order} LIMIT ? OFFSET ?`),
        values: [...where.params, limit, offset],
      });
      return { ...counted, jobs: page.map(documentOfRow) };
    }, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  }

  async deleteMatching(filter: FilterNode | undefined): Promise<number> {
    const where = whereOf(filter, compileOptions('postgres'));
    const [row] = await rows(this.#pool, { text: numbered(deleteWithSpecs(where.sql)), values: where.params });
    return countOf(field(row, 'n'));
  }

  async delete(id: string): Promise<boolean> {
    const [row] = await rows(this.#pool, { ...DELETE_BY_ID, values: [id] });
    return countOf(field(row, 'n')) > 0;
  }

  async putBatchSpecs(batch: string, from: number, specs: readonly string[]): Promise<void> {
    if (specs.length === 0) return;
    await this.#pool.query(
      `INSERT INTO ${BATCH_SPECS_TABLE} (batch, idx, spec) SELECT $1, $2::bigint + ordinality - 1, spec FROM unnest($3::text[]) WITH ORDINALITY AS s(spec, ordinality)
       ON CONFLICT (batch, idx) DO UPDATE SET spec = excluded.spec`,
      [batch, from, [...specs]],
    );
  }

  async batchSpecs(batch: string, from: number, limit: number): Promise<BatchSpec[]> {
    const found = await rows(this.#pool, {
      text: `SELECT idx, spec FROM ${BATCH_SPECS_TABLE} WHERE batch = $1 AND idx >= $2 ORDER BY idx LIMIT $3`,
      values: [batch, from, limit],
    });
    return found.map((row) => ({ index: countOf(field(row, 'idx')), spec: String(field(row, 'spec')) }));
  }

  async deleteBatchSpecs(batch: string): Promise<number> {
    const result = await this.#pool.query(`DELETE FROM ${BATCH_SPECS_TABLE} WHERE batch = $1`, [batch]);
    return result.rowCount ?? 0;
  }

  async countByState(filter?: FilterNode): Promise<Record<JobState, number>> {
    const where = whereOf(filter, compileOptions('postgres'));
    const sql = numbered(`SELECT state, count(*) AS n FROM ${JOBS_TABLE}${where.sql} GROUP BY state`);
    return stateCountsOf(await rows(this.#pool, { text: sql, values: where.params }));
  }

  close(): Promise<void> {
    this.#closing ??= this.#pool.end();
    return this.#closing;
  }

  async #transaction<T>(work: (client: PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    const client = await this.#pool.connect();
    // A connection whose ROLLBACK fails is in an unknown state: it is destroyed, not reused.
    let broken: Error | undefined;
    try {
      await client.query(begin);
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        broken = toError(rollbackError);
      }
      throw error;
    } finally {
      client.release(broken);
    }
  }
}

/**
 * A batch task that ended (or was retried) moves its batch's counts in its own transaction. The
 * parent is locked after the task, always in that order, so concurrent tasks queue on the parent's row.
 */
async function tally(client: Queryable, current: JobDocument, next: JobDocument): Promise<void> {
  const parentId = tallyTarget(current, next);
  if (parentId === undefined) return;
  const [row] = await rows(client, { ...SELECT_FOR_UPDATE, values: [parentId] });
  const counted = talliedParent(row === undefined ? undefined : documentOfRow(row), current, next);
  if (counted !== undefined) await client.query({ ...UPDATE, values: [...updatedValues(counted), counted.id] });
}

async function createOneByOne(client: Queryable, jobs: readonly JobDocument[]): Promise<CreateResult[]> {
  const results: CreateResult[] = [];
  for (const job of jobs) results.push(await createOne(client, job));
  return results;
}

async function createAtOnce(client: Queryable, jobs: readonly JobDocument[]): Promise<CreateResult[]> {
  const columns: ColumnValue[][] = ALL_COLUMNS.map(() => []);
  for (const job of jobs) {
    const values = rowValues(job);
    for (let index = 0; index < values.length; index += 1) columns[index]?.push(values[index] ?? null);
  }
  const inserted = await client.query({ ...INSERT_MANY, values: columns });
  if ((inserted.rowCount ?? 0) === jobs.length) return jobs.map((job) => ({ job, created: true }));
  // Only a taken idempotency key skips a row, so jobs without a key were all inserted. As in
  // createOne, READ COMMITTED lets this statement see the concurrent insert ON CONFLICT waited for.
  const keys = jobs.flatMap((job) => (job['idempotency-key'] === undefined ? [] : [job['idempotency-key']]));
  const holders = new Map<string, JobDocument>();
  for (const row of await rows(client, { ...SELECT_BY_KEYS, values: [keys] })) {
    const holder = documentOfRow(row);
    const key = holder['idempotency-key'];
    if (key !== undefined) holders.set(key, holder);
  }
  return jobs.map((job) => {
    const key = job['idempotency-key'];
    if (key === undefined) return { job, created: true };
    const holder = holders.get(key);
    if (holder === undefined) throw new Error(`${job.id} was neither inserted nor found by its idempotency key`);
    return holder.id === job.id ? { job, created: true } : { job: holder, created: false };
  });
}

async function createOne(client: Queryable, job: JobDocument): Promise<CreateResult> {
  const inserted = await uniqueGuarded(client.query({ ...INSERT, values: rowValues(job) }), job);
  if ((inserted.rowCount ?? 0) > 0) return { job, created: true };
  // ON CONFLICT waited for any concurrent insert of this key to commit, and READ COMMITTED gives
  // this next statement a snapshot that includes it.
  const key = job['idempotency-key'];
  const [existing] = key === undefined ? [] : await rows(client, { ...SELECT_BY_KEY, values: [key] });
  if (existing === undefined) throw new Error(`${job.id} was neither inserted nor found by its idempotency key`);
  return { job: documentOfRow(existing), created: false };
}

function whereOf(filter: FilterNode | undefined, options: CompileOptions): { sql: string; params: unknown[] } {
  if (filter === undefined) return { sql: '', params: [] };
  const fragment = compileFilter(filter, options);
  return { sql: ` WHERE ${fragment.sql}`, params: fragment.params };
}

/** Our statements are written with `?` like SQLite's, so the compiled fragments slot in unchanged. */
function numbered(sql: string): string {
  return toNumberedPlaceholders(sql);
}

async function rows(queryable: Queryable, query: QueryConfig<unknown[]>): Promise<Row[]> {
  const result = await queryable.query<Row>(query);
  return result.rows;
}

async function one(queryable: Queryable, text: string, values: unknown[] = []): Promise<Row> {
  const [row] = await rows(queryable, { text, values });
  if (row === undefined) throw new Error(`expected a row from: ${text}`);
  return row;
}

/** A duplicate id (or an update onto another job's idempotency key) is the caller's conflict, not a crash. */
async function uniqueGuarded<T>(write: Promise<T>, job: JobDocument): Promise<T> {
  try {
    return await write;
  } catch (error) {
    if (error instanceof DatabaseError && error.code === '23505') {
      throw error.constraint === 'jobs_idempotency_key'
        ? conflict(`another job already has the idempotency key of ${job.id}`, { id: job.id })
        : conflict(`${job.id} already exists`, { id: job.id });
    }
    throw error;
  }
}
