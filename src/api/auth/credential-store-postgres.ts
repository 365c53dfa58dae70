/**
 * API keys in the job store's PostgreSQL database, through a pool of their own. Several API replicas
 * may start at once on an empty database: the tables are created in one transaction under an
 * advisory lock, so exactly one of them creates and the others find.
 */
import pg from 'pg';
import type { CredentialStore, CredentialStoreOptions } from './credential-store.js';
import {
  LEGACY_SIGNING_SECRET_SETTING,
  actionsColumn,
  column,
  countColumn,
  credentialStoreOver,
  infoOfRow,
  roleColumn,
  textColumn,
  type CredentialBackend,
} from './credential-store-core.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS credentials (
  key text PRIMARY KEY,
  role text NOT NULL,
  secret_hash text NOT NULL,
  description text,
  created timestamptz NOT NULL,
  actions text
);
CREATE TABLE IF NOT EXISTS settings (
  name text PRIMARY KEY,
  value text NOT NULL
);
CREATE TABLE IF NOT EXISTS revoked_sessions (
  id text PRIMARY KEY,
  expires bigint NOT NULL
);
DELETE FROM settings WHERE name = '${LEGACY_SIGNING_SECRET_SETTING}';
-- Tables made before the finer roles (producer, operator, ...) refuse them; roles are checked in code on insert and read.
ALTER TABLE credentials DROP CONSTRAINT IF EXISTS credentials_role_check;
ALTER TABLE credentials ADD COLUMN IF NOT EXISTS actions text;
`;

// Without the lock, two concurrent CREATE TABLE IF NOT EXISTS can both miss the table and one fails
// on the catalog's unique index. A name of its own keeps this lock apart from the job store's.
const SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(hashtext('zk-job-engine/credentials-schema'))";

/** A request waits this long for a pooled connection, then fails instead of hanging. */
const CONNECT_TIMEOUT_MS = 10_000;

export interface PostgresCredentialStoreOptions extends CredentialStoreOptions {
  /** Connections in the pool (default 4): verification is rare once cached. */
  readonly poolSize?: number;
}

export async function openPostgresCredentialStore(url: string, options: PostgresCredentialStoreOptions = {}): Promise<CredentialStore> {
  const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 4, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  // An idle connection that breaks (server restart) is reported here and would otherwise crash the
  // process; the pool drops it, and the next query opens a new one or fails on its own.
  pool.on('error', () => undefined);
  try {
    await createSchema(pool);
  } catch (error) {
    await pool.end();
    throw error;
  }
  return credentialStoreOver('postgres', postgresBackend(pool), options);
}

async function createSchema(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(SCHEMA_LOCK);
    await client.query(SCHEMA);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

function postgresBackend(pool: pg.Pool): CredentialBackend {
  const rows = async (text: string, values: unknown[] = []): Promise<unknown[]> => {
    const result = await pool.query<Record<string, unknown>>(text, values);
    return result.rows;
  };
  return {
    insert: async (row) => {
      await pool.query('INSERT INTO credentials (key, role, secret_hash, description, created, actions) VALUES ($1, $2, $3, $4, $5, $6)', [
        row.key,
        row.role,
        row.secretHash,
        row.description ?? null,
        row.created,
        row.actions ?? null,
      ]);
    },
    find: async (key) => {
      const [row] = await rows('SELECT role, secret_hash, actions FROM credentials WHERE key = $1', [key]);
      return row === undefined
        ? undefined
        : { role: roleColumn(row), secretHash: textColumn(row, 'secret_hash'), actions: actionsColumn(row) };
    },
    list: async () => {
      const found = await rows('SELECT key, role, description, created, actions FROM credentials ORDER BY created, key');
      return found.map((row) => infoOfRow(row, isoDate(column(row, 'created'))));
    },
    delete: async (key) => {
      const result = await pool.query('DELETE FROM credentials WHERE key = $1', [key]);
      return (result.rowCount ?? 0) > 0;
    },
    count: async (role) => {
      const [row] =
        role === undefined
          ? await rows('SELECT count(*) AS n FROM credentials')
          : await rows('SELECT count(*) AS n FROM credentials WHERE role = $1', [role]);
      return countColumn(row, 'n');
    },
    revokeSession: async (id, expiresMs, nowMs) => {
      await pool.query('DELETE FROM revoked_sessions WHERE expires <= $1', [nowMs]);
      await pool.query('INSERT INTO revoked_sessions (id, expires) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [id, expiresMs]);
    },
    isSessionRevoked: async (id) => (await rows('SELECT 1 AS found FROM revoked_sessions WHERE id = $1', [id])).length > 0,
    close: () => pool.end(),
  };
}

/** pg parses timestamptz into a Date. */
function isoDate(value: unknown): string {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new Error(`credentials column "created" holds ${JSON.stringify(value)}, expected a timestamp`);
  }
  return value.toISOString();
}
