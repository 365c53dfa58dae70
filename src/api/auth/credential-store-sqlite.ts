/**
 * API keys in the SQLite file of the job store, through a connection of their own: the job store
 * and this store open the same file and share nothing else.
 */
import Database from 'better-sqlite3';
import { toError } from '../../util/errors.js';
import type { CredentialStore, CredentialStoreOptions } from './credential-store.js';
import {
  LEGACY_SIGNING_SECRET_SETTING,
  actionsColumn,
  countColumn,
  credentialStoreOver,
  infoOfRow,
  roleColumn,
  textColumn,
  type CredentialBackend,
} from './credential-store-core.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS credentials (
  key TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  description TEXT,
  created TEXT NOT NULL,
  actions TEXT
);
CREATE TABLE IF NOT EXISTS settings (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS revoked_sessions (
  id TEXT PRIMARY KEY,
  expires INTEGER NOT NULL
);
DELETE FROM settings WHERE name = '${LEGACY_SIGNING_SECRET_SETTING}';
`;

// The job store writes to the same file; waiting out its transactions beats failing with SQLITE_BUSY.
const BUSY_TIMEOUT_MS = 5_000;

export function openSqliteCredentialStore(path: string, options: CredentialStoreOptions = {}): Promise<CredentialStore> {
  return promised(() => {
    const db = new Database(path);
    try {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      // WAL lets API requests read keys while the job store writes; it is a property of the file,
      // and the job store asks for it too.
      db.pragma('journal_mode = WAL');
      db.exec(SCHEMA);
      dropRoleCheck(db);
      addActionsColumn(db);
      return credentialStoreOver('sqlite', sqliteBackend(db), options);
    } catch (error) {
      db.close();
      throw error;
    }
  })();
}

/**
 * Tables made before the finer roles (producer, operator, ...) carry CHECK (role IN ('admin', 'executor', 'viewer')),
 * which refuses the new roles; SQLite cannot drop a constraint, so the table is rebuilt without it.
 * Roles are checked in code on every insert and read (credential-store-core.ts).
 */
function dropRoleCheck(db: Database.Database): void {
  const row: unknown = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'credentials'").get();
  const sql: unknown = typeof row === 'object' && row !== null ? Reflect.get(row, 'sql') : undefined;
  if (typeof sql !== 'string' || !sql.includes('CHECK (role IN')) return;
  db.transaction(() => {
    db.exec(`
      CREATE TABLE credentials_new (key TEXT PRIMARY KEY, role TEXT NOT NULL, secret_hash TEXT NOT NULL, description TEXT, created TEXT NOT NULL);
      INSERT INTO credentials_new SELECT key, role, secret_hash, description, created FROM credentials;
      DROP TABLE credentials;
      ALTER TABLE credentials_new RENAME TO credentials;
    `);
  }).immediate();
}

/** Tables made before action allowlists lack the column: NULL, any action, for the keys they hold. */
function addActionsColumn(db: Database.Database): void {
  const columns = db.prepare('PRAGMA table_info(credentials)').all();
  if (!columns.some((column: unknown) => typeof column === 'object' && column !== null && Reflect.get(column, 'name') === 'actions')) {
    db.exec('ALTER TABLE credentials ADD COLUMN actions TEXT');
  }
}

function sqliteBackend(db: Database.Database): CredentialBackend {
  const insert = db.prepare('INSERT INTO credentials (key, role, secret_hash, description, created, actions) VALUES (?, ?, ?, ?, ?, ?)');
  const find = db.prepare('SELECT role, secret_hash, actions FROM credentials WHERE key = ?');
  const list = db.prepare('SELECT key, role, description, created, actions FROM credentials ORDER BY created, key');
  const remove = db.prepare('DELETE FROM credentials WHERE key = ?');
  const countAll = db.prepare('SELECT count(*) AS n FROM credentials');
  const countRole = db.prepare('SELECT count(*) AS n FROM credentials WHERE role = ?');
  const sweepSessions = db.prepare('DELETE FROM revoked_sessions WHERE expires <= ?');
  const revokeSession = db.prepare('INSERT INTO revoked_sessions (id, expires) VALUES (?, ?) ON CONFLICT (id) DO NOTHING');
  const findSession = db.prepare('SELECT 1 AS found FROM revoked_sessions WHERE id = ?');

  return {
    insert: promised((row) => {
      insert.run(row.key, row.role, row.secretHash, row.description ?? null, row.created, row.actions ?? null);
    }),
    find: promised((key) => {
      const row: unknown = find.get(key);
      return row === undefined
        ? undefined
        : { role: roleColumn(row), secretHash: textColumn(row, 'secret_hash'), actions: actionsColumn(row) };
    }),
    list: promised(() => list.all().map((row: unknown) => infoOfRow(row, textColumn(row, 'created')))),
    delete: promised((key) => remove.run(key).changes > 0),
    count: promised((role) => countColumn(role === undefined ? countAll.get() : countRole.get(role), 'n')),
    revokeSession: promised((id, expiresMs, nowMs) => {
      sweepSessions.run(nowMs);
      revokeSession.run(id, expiresMs);
    }),
    isSessionRevoked: promised((id) => findSession.get(id) !== undefined),
    close: promised(() => {
      db.close();
    }),
  };
}

/** better-sqlite3 is synchronous; the contract is promises, with exceptions as rejections. */
function promised<A extends unknown[], R>(run: (...args: A) => R): (...args: A) => Promise<R> {
  return (...args) => {
    try {
      return Promise.resolve(run(...args));
    } catch (error) {
      return Promise.reject(toError(error));
    }
  };
}
