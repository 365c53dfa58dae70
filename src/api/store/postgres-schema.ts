/** The PostgreSQL job store's schema, as the migrations that build it (postgres-store.ts runs them). */
import { JOBS_TABLE } from './columns.js';
import { BATCH_SPECS_TABLE } from './store-common.js';

/** Schema version N is reached by running MIGRATIONS[N - 1]; entries are only ever appended. */
export const MIGRATIONS: readonly (readonly string[])[] = [
  [
    `CREATE TABLE ${JOBS_TABLE} (
      id text COLLATE "C" NOT NULL PRIMARY KEY,
      state text COLLATE "C" NOT NULL,
      action text COLLATE "C" NOT NULL,
      priority integer NOT NULL,
      created text COLLATE "C" NOT NULL,
      updated text COLLATE "C" NOT NULL,
      started text COLLATE "C",
      expiry text COLLATE "C",
      target_href text COLLATE "C",
      parent_job text COLLATE "C",
      execution_mode text COLLATE "C",
      return_code integer,
      progress integer NOT NULL,
      executor text COLLATE "C",
      idempotency_key text COLLATE "C",
      revision integer NOT NULL,
      doc jsonb NOT NULL
    )`,
    `CREATE INDEX jobs_state ON ${JOBS_TABLE} (state)`,
    `CREATE INDEX jobs_action ON ${JOBS_TABLE} (action)`,
    `CREATE INDEX jobs_created ON ${JOBS_TABLE} (created)`,
    `CREATE INDEX jobs_priority ON ${JOBS_TABLE} (priority)`,
    `CREATE INDEX jobs_parent_job ON ${JOBS_TABLE} (parent_job)`,
    // NULLs are distinct in a UNIQUE index: jobs without a key never collide.
    `CREATE UNIQUE INDEX jobs_idempotency_key ON ${JOBS_TABLE} (idempotency_key)`,
  ],
  [
    // Existing jobs have no `not-before`: NULL is their value, nothing to fill in.
    `ALTER TABLE ${JOBS_TABLE} ADD COLUMN not_before text COLLATE "C"`,
    // The scheduler's query (QUEUED jobs with not_before <= now, by not_before) as one index range;
    // partial, so that the jobs that never waited cost it nothing.
    `CREATE INDEX jobs_state_not_before ON ${JOBS_TABLE} (state, not_before) WHERE not_before IS NOT NULL`,
  ],
  [
    `ALTER TABLE ${JOBS_TABLE} ADD COLUMN waiting text COLLATE "C"`,
    `ALTER TABLE ${JOBS_TABLE} ADD COLUMN queue text COLLATE "C"`,
    // Jobs already waiting for their not-before are the only ones waiting so far; every job's queue is
    // in its document, or it is the default queue's.
    `UPDATE ${JOBS_TABLE} SET waiting = CASE WHEN state = 'QUEUED' AND not_before IS NOT NULL THEN 'time' END, queue = coalesce(doc->>'queue', 'default')`,
    // The queue feeder's read: one queue's parked jobs, best priority first, then oldest, a page at a time. Partial:
    // the jobs that never waited (nearly all, when the queue keeps up) cost it nothing.
    `CREATE INDEX jobs_waiting_order ON ${JOBS_TABLE} (waiting, queue, priority, created, id) WHERE waiting IS NOT NULL`,
    // The reconciler's read: QUEUED jobs that should have an entry (waiting IS NULL) by id, skipping the
    // parked and delayed ones however many there are.
    `CREATE INDEX jobs_state_waiting_id ON ${JOBS_TABLE} (state, waiting, id)`,
    // Its first column serves every filter and count by state as the old index did; keeping both would
    // make each change of state maintain two indexes (measured: about 10 us more per job run).
    `DROP INDEX IF EXISTS jobs_state`,
  ],
  [
    // A batch's tasks by state (its cancel, its retry of the failed ones) as one index range.
    `CREATE INDEX jobs_parent_state ON ${JOBS_TABLE} (parent_job, state) WHERE parent_job IS NOT NULL`,
    // A list batch's task specs, read by the feeder a keyset page at a time.
    `CREATE TABLE ${BATCH_SPECS_TABLE} (batch text COLLATE "C" NOT NULL, idx bigint NOT NULL, spec text NOT NULL, PRIMARY KEY (batch, idx))`,
  ],
  [
    // The dashboard's pages (docs/operations.md): a filter on an action or a target, newest first, read
    // as one index range that stops after the page, whatever the number of matches; the dashboard asks
    // for its sort then \`created\` in the same direction, which these (column, created) pairs serve
    // forwards or backwards. (action) and (priority) alone are replaced by their pairs, which serve the
    // same filters. Only columns a job's writes never change: a (state, created), (progress, created)
    // or (updated) index would be rewritten by every claim and result, and cost the job API 50 us per
    // job (+40 %) on SQLite. A final state's page reads its own partial index instead, which a job
    // enters once, with its result, and a claim never touches.
    ...['SUCCESS', 'FAILED', 'CANCELED'].map(
      (state) => `CREATE INDEX jobs_${state.toLowerCase()}_created ON ${JOBS_TABLE} (created) WHERE state = '${state}'`,
    ),
    `CREATE INDEX jobs_action_created ON ${JOBS_TABLE} (action, created)`,
    `CREATE INDEX jobs_target_created ON ${JOBS_TABLE} (target_href, created)`,
    `CREATE INDEX jobs_priority_created ON ${JOBS_TABLE} (priority, created)`,
    `DROP INDEX IF EXISTS jobs_action`,
    `DROP INDEX IF EXISTS jobs_priority`,
  ],
];
