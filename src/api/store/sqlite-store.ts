/**
 * The job store in one SQLite file: the default, so one command runs the API with nothing else
 * installed. better-sqlite3 is synchronous; every method runs to completion inside one call, so
 * within a process nothing interleaves, and across processes SQLite's locks (IMMEDIATE transactions
 * for every write, a busy timeout to wait for them) keep read-modify-write atomic.
 */
import Database from 'better-sqlite3';

import type { FilterNode } from '../cimi/ast.js';
import { compileFilter, compileOrderBy } from '../cimi/sql.js';
import { conflict, notFound } from '../errors.js';
import type { JobDocument, JobState } from '../job/document.js';
import { ALL_COLUMNS, DOCUMENT_COLUMN, INDEXED_COLUMNS, JOBS_TABLE, appendRowValues, rowValues, type ColumnValue } from './columns.js';
import type { BatchSpec, CreateResult, JobMutation, JobSearch, JobStore, SearchResult } from './job-store.js';
import { BATCH_ACTION } from '../batch/batch-field.js';
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
import { MIGRATIONS } from './sqlite-schema.js';

/** How long a write waits for another process's write lock before SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 10_000;
/** Searches compile to few distinct statements (the API's filters repeat), so a small cache holds them all. */
const STATEMENT_CACHE_SIZE = 200;
/**
 * Rows per INSERT of a bulk create: one call into SQLite and one statement run per chunk instead of
 * per row (about 10% of a bulk create's store time). 100 rows bind 1,700 values, far below SQLite's
 * limit of 32,766.
 */
const BULK_CHUNK_ROWS = 100;
const INSERT_INTO = `INSERT INTO ${JOBS_TABLE} (${ALL_COLUMNS.join(', ')}) VALUES`;
const ROW_PLACEHOLDERS = `(${ALL_COLUMNS.map(() => '?').join(', ')})`;
const ON_KEY_CONFLICT = 'ON CONFLICT (idempotency_key) DO NOTHING';

type SqliteValue = string | number | bigint | Buffer | null;
type Statement = Database.Statement<SqliteValue[]>;

export function openSqliteStore(path: string): Promise<JobStore> {
  return promised(() => openNow(path));
}

function openNow(path: string): JobStore {
  const db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
  try {
    // Readers do not block the writer nor the writer them; NORMAL loses at most the last commits on
    // power loss (never consistency), which an API in front of a queue can afford.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    migrate(db, path);
    return new SqliteJobStore(db);
  } catch (error) {
    db.close();
    throw error;
  }
}

function migrate(db: Database.Database, path: string): void {
  // IMMEDIATE: two processes opening a new file together must not both create the tables.
  db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY, applied TEXT NOT NULL)');
    const current = countOf(field(db.prepare('SELECT coalesce(max(version), 0) AS v FROM schema_version').get(), 'v'));
    if (current > MIGRATIONS.length) {
      throw new Error(
        `${path} has job store schema version ${current}, newer than this build knows (${MIGRATIONS.length}); upgrade the engine`,
      );
    }
    const record = db.prepare('INSERT INTO schema_version (version, applied) VALUES (?, ?)');
    for (let version = current + 1; version <= MIGRATIONS.length; version += 1) {
      for (const statement of MIGRATIONS[version - 1] ?? []) db.exec(statement);
      record.run(version, new Date().toISOString());
    }
  }).immediate();
}

class SqliteJobStore implements JobStore {
  readonly kind = 'sqlite';
  readonly #db: Database.Database;
  readonly #cache = new Map<string, Statement>();
  readonly #insert: Statement;
  /** Multi-row INSERTs by row count: full chunks, and the remainders bulk creates happen to leave. */
  readonly #insertRows = new Map<number, Statement>();
  readonly #selectById: Statement;
  readonly #selectByKey: Statement;
  /** UPDATE texts by the set of columns they write (bit i: INDEXED_COLUMNS[i]). */
  readonly #updateSql = new Map<number, string>();
  readonly #deleteOne: (id: string) => boolean;
  readonly #createMany: (jobs: readonly JobDocument[]) => CreateResult[];
  readonly #updateOne: (id: string, mutate: JobMutation, expectedRevision: number | undefined) => JobDocument;
  readonly #search: (search: JobSearch) => SearchResult;
  readonly #updateFirst: (search: JobSearch, limit: number, mutate: JobMutation) => JobDocument[];
  readonly #putSpecs: (batch: string, from: number, specs: readonly string[]) => void;
  readonly #deleteWhere: (filter: FilterNode | undefined) => number;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#insert = db.prepare(`${INSERT_INTO} ${ROW_PLACEHOLDERS} ${ON_KEY_CONFLICT}`);
    this.#selectById = db.prepare(`SELECT doc FROM ${JOBS_TABLE} WHERE id = ?`);
    this.#selectByKey = db.prepare(`SELECT doc FROM ${JOBS_TABLE} WHERE idempotency_key = ?`);
    const deleteById = db.prepare(`DELETE FROM ${JOBS_TABLE} WHERE id = ?`);
    const deleteSpecs = db.prepare(`DELETE FROM ${BATCH_SPECS_TABLE} WHERE batch = ?`);
    const deleteOne = db.transaction((id: string) => {
      deleteSpecs.run(id);
      return deleteById.run(id).changes > 0;
    });
    this.#deleteOne = (id) => deleteOne.immediate(id);

    const createMany = db.transaction((jobs: readonly JobDocument[]) => {
      if (jobs.length === 1) return jobs.map((job) => this.#createOne(job));
      const results: CreateResult[] = [];
      for (let start = 0; start < jobs.length; start += BULK_CHUNK_ROWS) {
        for (const result of this.#createChunk(jobs.slice(start, start + BULK_CHUNK_ROWS))) results.push(result);
      }
      return results;
    });
    this.#createMany = (jobs) => createMany.immediate(jobs);
    const updateOne = db.transaction((id: string, mutate: JobMutation, expectedRevision: number | undefined) => {
      const current = this.#get(id);
      if (current === undefined) throw notFound(`${id} not found`);
      const next = applyMutation(current, mutate, expectedRevision);
      runUnique(() => this.#updateRow(current, next), next);
      this.#tally(current, next);
      return next;
    });
    this.#updateOne = (id, mutate, expectedRevision) => updateOne.immediate(id, mutate, expectedRevision);
    const updateFirst = db.transaction((search: JobSearch, limit: number, mutate: JobMutation) => {
      const options = compileOptions('sqlite');
      const where = this.#where(search.filter, options);
      const order = compileOrderBy(orderOf(search), options);
      const found = this.#statement(`SELECT doc FROM ${JOBS_TABLE}${where.sql} ${order} LIMIT ?`).all(...where.params, limit);
      return found.map((row) => {
        const current = documentOfRow(row);
        const next = applyMutation(current, mutate, undefined);
        runUnique(() => this.#updateRow(current, next), next);
        this.#tally(current, next);
        return next;
      });
    });
    this.#updateFirst = (search, limit, mutate) => updateFirst.immediate(search, limit, mutate);
    const putSpecs = db.transaction((batch: string, from: number, specs: readonly string[]) => {
      const insert = this.#statement(`INSERT OR REPLACE INTO ${BATCH_SPECS_TABLE} (batch, idx, spec) VALUES (?, ?, ?)`);
      specs.forEach((spec, offset) => {
        insert.run(batch, from + offset, spec);
      });
    });
    this.#putSpecs = (batch, from, specs) => {
      putSpecs.immediate(batch, from, specs);
    };
    // A batch's stored specs go with it, in the same transaction (cleanup_jobs deletes final batches so).
    const deleteWhere = db.transaction((filter: FilterNode | undefined) => {
      const where = this.#where(filter);
      const batches = `SELECT id FROM (SELECT id, action FROM ${JOBS_TABLE}${where.sql}) WHERE action = '${BATCH_ACTION}'`;
      this.#statement(`DELETE FROM ${BATCH_SPECS_TABLE} WHERE batch IN (${batches})`).run(...where.params);
      return this.#statement(`DELETE FROM ${JOBS_TABLE}${where.sql}`).run(...where.params).changes;
    });
    this.#deleteWhere = (filter) => deleteWhere.immediate(filter);
    // A read transaction, so that the count and the page come from one snapshot.
    const search = db.transaction((query: JobSearch) => this.#searchNow(query));
    this.#search = (query) => search.deferred(query);
  }

  create(job: JobDocument): Promise<CreateResult> {
    return promised(() => {
      const [result] = this.#createMany([job]);
      if (result === undefined) throw new Error('createMany returned no result for one job');
      return result;
    });
  }

  createMany(jobs: readonly JobDocument[]): Promise<CreateResult[]> {
    return promised(() => (jobs.length === 0 ? [] : this.#createMany(jobs)));
  }

  get(id: string): Promise<JobDocument | undefined> {
    return promised(() => this.#get(id));
  }

  update(id: string, mutate: JobMutation, expectedRevision?: number): Promise<JobDocument> {
    return promised(() => this.#updateOne(id, mutate, expectedRevision));
  }

  search(search: JobSearch): Promise<SearchResult> {
    return promised(() => this.#search(search));
  }

  updateFirst(search: JobSearch, limit: number, mutate: JobMutation): Promise<JobDocument[]> {
    return promised(() => (limit <= 0 ? [] : this.#updateFirst(search, limit, mutate)));
  }

  deleteMatching(filter: FilterNode | undefined): Promise<number> {
    return promised(() => this.#deleteWhere(filter));
  }

  delete(id: string): Promise<boolean> {
    return promised(() => this.#deleteOne(id));
  }

  putBatchSpecs(batch: string, from: number, specs: readonly string[]): Promise<void> {
    return promised(() => {
      this.#putSpecs(batch, from, specs);
    });
  }

  batchSpecs(batch: string, from: number, limit: number): Promise<BatchSpec[]> {
    return promised(() =>
      this.#statement(`SELECT idx, spec FROM ${BATCH_SPECS_TABLE} WHERE batch = ? AND idx >= ? ORDER BY idx LIMIT ?`)
        .all(batch, from, limit)
        .map((row) => ({ index: countOf(field(row, 'idx')), spec: String(field(row, 'spec')) })),
    );
  }

  deleteBatchSpecs(batch: string): Promise<number> {
    return promised(() => this.#statement(`DELETE FROM ${BATCH_SPECS_TABLE} WHERE batch = ?`).run(batch).changes);
  }

  countByState(filter?: FilterNode): Promise<Record<JobState, number>> {
    return promised(() => {
      const where = this.#where(filter);
      const sql = `SELECT state, count(*) AS n FROM ${JOBS_TABLE}${where.sql} GROUP BY state`;
      return stateCountsOf(this.#statement(sql).all(...where.params));
    });
  }

  close(): Promise<void> {
    return promised(() => {
      this.#cache.clear();
      this.#insertRows.clear();
      if (this.#db.open) this.#db.close();
    });
  }

  /** Inside the task's transaction: its batch's counts move with it. */
  #tally(current: JobDocument, next: JobDocument): void {
    const parentId = tallyTarget(current, next);
    if (parentId === undefined) return;
    const parent = this.#get(parentId);
    const counted = talliedParent(parent, current, next);
    if (parent !== undefined && counted !== undefined) this.#updateRow(parent, counted);
  }

  #createOne(job: JobDocument): CreateResult {
    const inserted = runUnique(() => this.#insert.run(...rowValues(job)), job).changes > 0;
    if (inserted) return { job, created: true };
    const key = job['idempotency-key'];
    const existing = key === undefined ? undefined : this.#selectByKey.get(key);
    if (existing === undefined) throw new Error(`${job.id} was neither inserted nor found by its idempotency key`);
    return { job: documentOfRow(existing), created: false };
  }

  /**
   * The jobs of one multi-row INSERT, with the outcome of inserting them one by one in order: a job
   * whose key is taken (by an older job or an earlier one of this list) returns the job holding it.
   */
  #createChunk(jobs: readonly JobDocument[]): CreateResult[] {
    const values: ColumnValue[] = [];
    for (const job of jobs) appendRowValues(job, values);
    let changes: number;
    try {
      changes = this.#insertRowsStatement(jobs.length).run(...values).changes;
    } catch (error) {
      // SQLite undid just this statement and does not say which row failed: one by one, the first
      // failing job raises the same conflict, naming it, as it would have alone.
      if (error instanceof Database.SqliteError && error.code.startsWith('SQLITE_CONSTRAINT')) {
        return jobs.map((job) => this.#createOne(job));
      }
      throw error;
    }
    if (changes === jobs.length) return jobs.map((job) => ({ job, created: true }));
    // Only a taken idempotency key skips a row, so jobs without a key were all inserted.
    return jobs.map((job) => {
      const key = job['idempotency-key'];
      if (key === undefined) return { job, created: true };
      const existing = this.#selectByKey.get(key);
      if (existing === undefined) throw new Error(`${job.id} was neither inserted nor found by its idempotency key`);
      const stored = documentOfRow(existing);
      return stored.id === job.id ? { job, created: true } : { job: stored, created: false };
    });
  }

  /**
   * Writes only the columns whose values changed, and the document: SQLite rewrites the entries of
   * every index on a column an UPDATE names, changed or not, and a progress report changes no
   * indexed column. Fewer dirty index pages make each commit cheaper.
   */
  #updateRow(current: JobDocument, next: JobDocument): Database.RunResult {
    let changed = 0;
    const values: ColumnValue[] = [];
    INDEXED_COLUMNS.forEach((column, index) => {
      const value = column.valueOf(next);
      if (value !== column.valueOf(current)) {
        changed |= 1 << index;
        values.push(value);
      }
    });
    values.push(JSON.stringify(next), next.id);
    let sql = this.#updateSql.get(changed);
    if (sql === undefined) {
      const columns = INDEXED_COLUMNS.filter((_, index) => (changed & (1 << index)) !== 0).map(({ column }) => column);
      sql = `UPDATE ${JOBS_TABLE} SET ${[...columns, DOCUMENT_COLUMN].map((column) => `${column} = ?`).join(', ')} WHERE id = ?`;
      this.#updateSql.set(changed, sql);
    }
    return this.#statement(sql).run(...values);
  }

  #insertRowsStatement(rows: number): Statement {
    let statement = this.#insertRows.get(rows);
    if (statement === undefined) {
      statement = this.#db.prepare(`${INSERT_INTO} ${Array<string>(rows).fill(ROW_PLACEHOLDERS).join(', ')} ${ON_KEY_CONFLICT}`);
      this.#insertRows.set(rows, statement);
    }
    return statement;
  }

  #get(id: string): JobDocument | undefined {
    const row = this.#selectById.get(id);
    return row === undefined ? undefined : documentOfRow(row);
  }

  #searchNow(search: JobSearch): SearchResult {
    const { limit, offset } = pageOf(search);
    const options = compileOptions('sqlite');
    const where = this.#where(search.filter, options);
    const counted = countedResult(
      countOf(field(this.#statement(countStatement(JOBS_TABLE, where.sql, search.countLimit)).get(...where.params), 'n')),
      search.countLimit,
    );
    if (limit === 0 || (offset >= counted.count && counted.countCapped !== true)) return { ...counted, jobs: [] };
    const order = compileOrderBy(orderOf(search), options);
    const rows = this.#statement(`SELECT doc FROM ${JOBS_TABLE}${where.sql} ${order} LIMIT ? OFFSET ?`).all(...where.params, limit, offset);
    return { ...counted, jobs: rows.map(documentOfRow) };
  }

  #where(filter: FilterNode | undefined, options = compileOptions('sqlite')): { sql: string; params: SqliteValue[] } {
    if (filter === undefined) return { sql: '', params: [] };
    const fragment = compileFilter(filter, options);
    return { sql: ` WHERE ${fragment.sql}`, params: fragment.params.map(toSqliteValue) };
  }

  /** Prepared once per distinct SQL text; the least recently used goes when the cache is full. */
  #statement(sql: string): Statement {
    const cached = this.#cache.get(sql);
    if (cached !== undefined) {
      this.#cache.delete(sql);
      this.#cache.set(sql, cached);
      return cached;
    }
    const statement: Statement = this.#db.prepare(sql);
    this.#cache.set(sql, statement);
    if (this.#cache.size > STATEMENT_CACHE_SIZE) {
      const oldest = this.#cache.keys().next();
      if (oldest.done !== true) this.#cache.delete(oldest.value);
    }
    return statement;
  }
}

/** better-sqlite3 throws synchronously; callers of an async contract expect a rejection instead. */
function promised<T>(work: () => T): Promise<T> {
  return new Promise<T>((resolve) => {
    resolve(work());
  });
}

/** The compiler binds only strings, numbers and NULL for SQLite; anything else is its bug, caught here. */
function toSqliteValue(value: unknown): SqliteValue {
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') return value;
  throw new Error(`the filter compiler produced a parameter SQLite cannot bind: ${JSON.stringify(value)}`);
}

/** A duplicate id (or an update onto another job's idempotency key) is the caller's conflict, not a crash. */
function runUnique(write: () => Database.RunResult, job: JobDocument): Database.RunResult {
  try {
    return write();
  } catch (error) {
    if (error instanceof Database.SqliteError && error.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
      throw conflict(`${job.id} already exists`, { id: job.id });
    }
    if (error instanceof Database.SqliteError && error.code === 'SQLITE_CONSTRAINT_UNIQUE') {
      throw conflict(`another job already has the idempotency key of ${job.id}`, { id: job.id });
    }
    throw error;
  }
}
