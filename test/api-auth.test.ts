import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApiError } from '../src/api/errors.js';
import { AdminKeyExistsError, createAdminKey } from '../src/api/auth/admin-key-cli.js';
import { readApiKey } from '../src/api/auth/api-key-source.js';
import { Authenticator } from '../src/api/auth/authenticator.js';
import {
  openPostgresCredentialStore,
  openSqliteCredentialStore,
  type CredentialStore,
  type CredentialStoreOptions,
} from '../src/api/auth/credential-store.js';
import { DEFAULT_SCRYPT_PARAMS, ROLE_PERMISSIONS, can, generateApiKey, hashSecret, verifySecret } from '../src/api/auth/credentials.js';
import { SESSION_COOKIE, checkSession, issueSession, sessionCookie, sessionTokenOf, verifySession } from '../src/api/auth/sessions.js';
import { startPostgres, type PostgresServer } from '../src/harness/postgres-server.js';

const T0 = new Date('2026-11-25T10:00:00.000Z');
const HOUR = 60 * 60 * 1000;

function isApiError(code: ApiError['code'], ...mentions: string[]): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof ApiError, `expected an ApiError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    for (const text of mentions) assert.ok(error.message.includes(text), `"${error.message}" should mention "${text}"`);
    return true;
  };
}

/** Replaces one character in the middle of `text` with another of the same alphabet. */
function tamper(text: string, at = Math.floor(text.length / 2)): string {
  const replacement = text[at] === 'A' ? 'B' : 'A';
  return `${text.slice(0, at)}${replacement}${text.slice(at + 1)}`;
}

let tempDir: string;
before(async () => {
  tempDir = await mkdtemp(join(tmpdir(), 'api-auth-'));
});
after(async () => {
  await rm(tempDir, { recursive: true, force: true });
});

describe('secret hashing', () => {
  test('the right secret verifies; a wrong one and a tampered hash do not; the format records the parameters', async () => {
    const { key, secret } = generateApiKey();
    assert.match(key, /^credential\/[0-9a-f-]{36}$/);
    assert.match(secret, /^[A-Za-z0-9_-]{43}$/, '32 bytes, base64url');

    const stored = await hashSecret(secret);
    const [scheme, n, r, p, salt, hash] = stored.split('$');
    assert.deepEqual([scheme, n, r, p], ['scrypt', '16384', '8', '1']);
    assert.equal(Buffer.from(salt ?? '', 'base64url').length, 16);
    assert.equal(Buffer.from(hash ?? '', 'base64url').length, 32);
    assert.notEqual(await hashSecret(secret), stored, 'a fresh salt per hash');

    assert.equal(await verifySecret(secret, stored), true);
    assert.equal(await verifySecret(`${secret}x`, stored), false);
    assert.equal(await verifySecret(generateApiKey().secret, stored), false);
    assert.equal(await verifySecret(secret, `scrypt$${n}$${r}$${p}$${salt}$${tamper(hash ?? '')}`), false, 'hash changed');
    assert.equal(await verifySecret(secret, `scrypt$${n}$${r}$${p}$${tamper(salt ?? '')}$${hash}`), false, 'salt changed');
    assert.equal(await verifySecret(secret, `scrypt$8192$${r}$${p}$${salt}$${hash}`), false, 'cost changed');
  });

  test('an unparseable or absurd stored hash is an error, not a wrong secret', async () => {
    const stored = await hashSecret('s');
    await assert.rejects(verifySecret('s', 'plain-text'), /not a stored secret hash/);
    await assert.rejects(verifySecret('s', stored.replace('scrypt$', 'bcrypt$')), /not a stored secret hash.*bcrypt/);
    await assert.rejects(verifySecret('s', stored.replace('$16384$', '$1000$')), /power of two/);
    await assert.rejects(verifySecret('s', stored.replace('$16384$', `$${2 ** 30}$`)), /power of two from 2 to/);
    await assert.rejects(verifySecret('s', stored.replace('$8$', '$0$')), /positive integer/);
  });

  test(`one verify with N=${DEFAULT_SCRYPT_PARAMS.N} takes well under a second`, async () => {
    const stored = await hashSecret('secret');
    const rounds = 20;
    const started = performance.now();
    for (let i = 0; i < rounds; i += 1) assert.ok(await verifySecret('secret', stored));
    const perVerify = (performance.now() - started) / rounds;
    process.stderr.write(`# scrypt verify (N=2^14, r=8, p=1): ${perVerify.toFixed(1)} ms each, sequential\n`);
    assert.ok(perVerify < 500, `${perVerify} ms per verify`);
  });
});

describe('permissions', () => {
  test('viewer reads; producer creates; executor claims; maintenance deletes final jobs; operator all but keys; admin everything', () => {
    assert.deepEqual(ROLE_PERMISSIONS, {
      viewer: ['read'],
      producer: ['read', 'create', 'cancel-own'],
      executor: ['read', 'read-all', 'claim', 'publish'],
      maintenance: ['read', 'read-all', 'claim', 'publish', 'delete-final'],
      distributor: ['read', 'read-all', 'create', 'cancel-own', 'claim', 'publish'],
      operator: ['read', 'read-all', 'create', 'cancel-own', 'claim', 'edit', 'delete-final', 'delete', 'publish'],
      admin: ['read', 'read-all', 'create', 'cancel-own', 'claim', 'edit', 'delete-final', 'delete', 'publish', 'admin'],
    });
    const table = (['viewer', 'executor', 'admin'] as const).map((role) =>
      (['read', 'edit', 'delete', 'admin'] as const).map((permission) => can(role, permission)),
    );
    assert.deepEqual(table, [
      [true, false, false, false],
      [true, false, false, false],
      [true, true, true, true],
    ]);
  });
});

describe('session tokens', () => {
  const secret = Buffer.alloc(32, 7);
  const principal = { credentialId: 'credential/00000000-0000-4000-8000-000000000001', role: 'executor' } as const;

  test('a valid token gives back its principal until it expires', () => {
    const token = issueSession(principal, secret, T0, HOUR);
    assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(verifySession(token, secret, T0), principal);
    assert.deepEqual(verifySession(token, secret, new Date(T0.getTime() + HOUR - 1)), principal);
    assert.equal(verifySession(token, secret, new Date(T0.getTime() + HOUR)), undefined);
    assert.deepEqual(checkSession(token, secret, new Date(T0.getTime() + HOUR)), { valid: false, reason: 'expired' });
    const defaultTtl = issueSession(principal, secret, T0);
    assert.equal(checkSession(defaultTtl, secret, new Date(T0.getTime() + 24 * HOUR - 1)).valid, true);
    assert.equal(checkSession(defaultTtl, secret, new Date(T0.getTime() + 24 * HOUR)).valid, false);
  });

  test('a tampered token, another signing secret or garbage is refused', () => {
    const token = issueSession(principal, secret, T0, HOUR);
    const [payload = '', signature = ''] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...principal, role: 'admin', expires: T0.getTime() + HOUR })).toString('base64url');
    const badSignature = { valid: false, reason: 'bad-signature' };
    assert.deepEqual(checkSession(`${forged}.${signature}`, secret, T0), badSignature);
    assert.deepEqual(checkSession(`${tamper(payload)}.${signature}`, secret, T0), badSignature);
    assert.deepEqual(checkSession(`${payload}.${tamper(signature)}`, secret, T0), badSignature);
    assert.deepEqual(checkSession(`${payload}.${signature}=`, secret, T0), badSignature, 'one signature, one spelling');
    assert.deepEqual(checkSession(token, Buffer.alloc(32, 8), T0), badSignature);
    assert.deepEqual(checkSession('no-dot', secret, T0), { valid: false, reason: 'malformed' });
    assert.deepEqual(checkSession('', secret, T0), { valid: false, reason: 'malformed' });
    assert.throws(() => issueSession(principal, Buffer.alloc(8), T0), /at least 32 bytes/);
  });

  test("the cookie is Nuvla's, HttpOnly, SameSite=Strict, Path=/; the Cookie header is parsed leniently", () => {
    assert.equal(sessionCookie('tok.en', HOUR), 'com.sixsq.nuvla.cookie=tok.en; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict');
    assert.match(sessionCookie('t', HOUR, { secure: true }), /; Secure$/);
    assert.equal(sessionTokenOf(`a=1; ${SESSION_COOKIE}=tok.en; b=2`), 'tok.en');
    assert.equal(sessionTokenOf(`${SESSION_COOKIE}="tok.en"`), 'tok.en');
    assert.equal(sessionTokenOf(`x${SESSION_COOKIE}=tok.en`), undefined);
    assert.equal(sessionTokenOf(`${SESSION_COOKIE}=`), undefined);
    assert.equal(sessionTokenOf(undefined), undefined);
  });
});

interface StoreFactory {
  readonly kind: CredentialStore['kind'];
  setUp(): Promise<void>;
  /** A fresh database; the function opens a store on it (several may be opened on one). */
  newDatabase(): Promise<(options?: CredentialStoreOptions) => Promise<CredentialStore>>;
  tearDown(): Promise<void>;
}

let databases = 0;

const sqliteFactory: StoreFactory = {
  kind: 'sqlite',
  setUp: () => Promise.resolve(),
  newDatabase() {
    databases += 1;
    const path = join(tempDir, `jobs-${databases}.sqlite`);
    return Promise.resolve((options) => openSqliteCredentialStore(path, options));
  },
  tearDown: () => Promise.resolve(),
};

function postgresFactory(): StoreFactory {
  let server: PostgresServer | undefined;
  return {
    kind: 'postgres',
    async setUp() {
      server = await startPostgres();
    },
    async newDatabase() {
      if (server === undefined) throw new Error('setUp() first');
      databases += 1;
      const url = await server.createDatabase(`auth_${process.pid}_${databases}`);
      return (options) => openPostgresCredentialStore(url, options);
    },
    async tearDown() {
      await server?.stop();
    },
  };
}

for (const factory of [sqliteFactory, postgresFactory()]) {
  describe(`credential store: ${factory.kind}`, { timeout: 120_000 }, () => {
    const opened: CredentialStore[] = [];
    let clock = T0.getTime();
    const now = (): number => clock;
    let open: (options?: CredentialStoreOptions) => Promise<CredentialStore>;
    const track = async (opening: Promise<CredentialStore>): Promise<CredentialStore> => {
      const store = await opening;
      opened.push(store);
      return store;
    };

    before(async () => {
      await factory.setUp();
      open = await factory.newDatabase();
    });
    after(async () => {
      await Promise.allSettled(opened.map((store) => store.close()));
      await factory.tearDown();
    });

    test('create, verify, list, count, revoke', async () => {
      const store = await track(open({ now }));
      assert.equal(store.kind, factory.kind);
      assert.equal(await store.count(), 0);

      const admin = await store.create('admin', 'first admin');
      const viewer = await store.create('viewer');
      assert.equal(admin.role, 'admin');
      assert.match(admin.key, /^credential\/[0-9a-f-]{36}$/);

      assert.deepEqual(await store.verify(admin.key, admin.secret), { credentialId: admin.key, role: 'admin' });
      assert.deepEqual(await store.verify(viewer.key, viewer.secret), { credentialId: viewer.key, role: 'viewer' });
      assert.equal(await store.verify(admin.key, viewer.secret), undefined, 'wrong secret');
      assert.equal(await store.verify(generateApiKey().key, admin.secret), undefined, 'unknown key');
      assert.equal(await store.verify('not-a-key', admin.secret), undefined);
      assert.equal((await store.lookup(viewer.key))?.role, 'viewer');

      const created = T0.toISOString();
      const listed = await store.list();
      assert.deepEqual(
        [...listed].sort((a, b) => a.role.localeCompare(b.role)),
        [
          { key: admin.key, role: 'admin', description: 'first admin', created },
          { key: viewer.key, role: 'viewer', created },
        ],
      );
      assert.ok(!JSON.stringify(listed).includes(admin.secret), 'the secret is not listed');
      assert.deepEqual([await store.count(), await store.count('admin'), await store.count('executor')], [2, 1, 0]);

      const results = await Promise.all(Array.from({ length: 10 }, () => store.verify(viewer.key, viewer.secret)));
      assert.ok(
        results.every((result) => result?.role === 'viewer'),
        'concurrent verifies of one key',
      );

      assert.equal(await store.revoke(viewer.key), true);
      assert.equal(await store.revoke(viewer.key), false);
      assert.equal(await store.verify(viewer.key, viewer.secret), undefined, 'revoked by this store: at once');
      assert.equal(await store.lookup(viewer.key), undefined);
      assert.equal(await store.count(), 1);
    });

    test('other stores see the same keys and signing secret, and a revoked key stops working within the key check TTL (5 s)', async () => {
      // A fresh database, opened by replicas at once: they race to create the tables and the secret.
      const openFresh = await factory.newDatabase();
      // The signing secret comes from a file shared by the replicas (session-secret.ts), never the database.
      const shared = randomBytes(32);
      const replicas = await Promise.all(
        Array.from({ length: 8 }, () => track(openFresh({ now, cacheTtlMs: 60_000, signingSecret: shared }))),
      );
      const [a, b, c] = replicas;
      assert.ok(a !== undefined && b !== undefined && c !== undefined);
      const secrets = await Promise.all(replicas.map((replica) => replica.signingSecret()));
      for (const each of secrets) assert.deepEqual(each, shared, 'one signing secret for all replicas');
      const alone = await track(openFresh({ now }));
      assert.notDeepEqual(await alone.signingSecret(), shared, 'without a secret given, one of its own');

      const executor = await a.create('executor');
      const started = performance.now();
      assert.deepEqual(await b.verify(executor.key, executor.secret), { credentialId: executor.key, role: 'executor' });
      const uncachedMs = performance.now() - started;
      const cachedStart = performance.now();
      assert.ok(await b.verify(executor.key, executor.secret));
      const cachedMs = performance.now() - cachedStart;
      process.stderr.write(`# ${factory.kind} store verify: ${uncachedMs.toFixed(1)} ms uncached, ${cachedMs.toFixed(3)} ms cached\n`);
      assert.equal((await b.lookup(executor.key))?.role, 'executor');
      assert.equal(await b.verify(executor.key, 'wrong'), undefined, 'the cache holds one secret, not the key');

      assert.equal(await a.revoke(executor.key), true);
      assert.equal(await a.verify(executor.key, executor.secret), undefined);
      assert.equal(await c.verify(executor.key, executor.secret), undefined, 'never cached there');
      // Another replica trusts "not revoked" for the key check TTL (5 s), not the 60 s verification cache.
      const kept = await a.create('viewer');
      assert.ok(await b.verify(kept.key, kept.secret));
      clock += 4_999;
      assert.ok(await b.verify(executor.key, executor.secret), 'still trusted by another replica within the key check TTL');
      assert.equal((await b.lookup(executor.key))?.role, 'executor');
      clock += 1;
      assert.equal(await b.verify(executor.key, executor.secret), undefined, 'key check TTL over: revoked everywhere');
      assert.equal(await b.lookup(executor.key), undefined);
      assert.equal((await b.verify(kept.key, kept.secret))?.role, 'viewer', 'a key not revoked passes the check');
    });
  });
}

describe('authenticator', () => {
  let store: CredentialStore;
  let clock = T0;
  let auth: Authenticator;
  let admin: { key: string; secret: string };
  let viewer: { key: string; secret: string };

  before(async () => {
    store = await openSqliteCredentialStore(join(tempDir, 'authenticator.sqlite'));
    auth = new Authenticator(store, () => clock);
    admin = await store.create('admin');
    viewer = await store.create('viewer');
  });
  after(async () => {
    await store.close();
  });

  const cookieOf = (setCookie: string): string => setCookie.split(';')[0] ?? '';
  const basic = (pair: string): string => `Basic ${Buffer.from(pair).toString('base64')}`;

  test('Bearer key:secret and Basic base64(key:secret)', async () => {
    const expected = { credentialId: admin.key, role: 'admin' };
    assert.deepEqual(await auth.authenticate({ authorization: `Bearer ${admin.key}:${admin.secret}` }), expected);
    assert.deepEqual(await auth.authenticate({ authorization: `bearer  ${admin.key}:${admin.secret} ` }), expected);
    assert.deepEqual(await auth.authenticate({ authorization: basic(`${admin.key}:${admin.secret}`) }), expected);
  });

  test('no credentials, wrong ones or malformed ones are 401 saying what is wrong, never which half', async () => {
    await assert.rejects(
      auth.authenticate({}),
      isApiError('unauthorized', 'no credentials: log in with POST /api/session or send Authorization'),
    );
    await assert.rejects(auth.authenticate({ cookie: 'other=1', authorization: '' }), isApiError('unauthorized', 'no credentials'));
    const unknownOrWrong = isApiError('unauthorized', 'unknown key or wrong secret');
    await assert.rejects(auth.authenticate({ authorization: `Bearer ${admin.key}:${viewer.secret}` }), unknownOrWrong);
    await assert.rejects(auth.authenticate({ authorization: `Bearer ${generateApiKey().key}:${admin.secret}` }), unknownOrWrong);
    await assert.rejects(auth.authenticate({ authorization: basic(`${viewer.key}:${admin.secret}`) }), unknownOrWrong);
    await assert.rejects(
      auth.authenticate({ authorization: `Bearer ${admin.key}` }),
      isApiError('unauthorized', 'malformed Bearer', 'Bearer <key>:<secret>'),
    );
    await assert.rejects(auth.authenticate({ authorization: 'Basic %%%' }), isApiError('unauthorized', 'malformed Basic', 'not base64'));
    await assert.rejects(auth.authenticate({ authorization: basic('no-colon') }), isApiError('unauthorized', 'malformed Basic'));
    await assert.rejects(
      auth.authenticate({ authorization: 'Digest abc' }),
      isApiError('unauthorized', 'unsupported Authorization scheme "digest"'),
    );
  });

  test('login gives a session cookie that authenticates until it expires', async () => {
    const login = await auth.login({ template: { href: 'session-template/api-key', key: viewer.key, secret: viewer.secret } });
    assert.deepEqual(login.principal, { credentialId: viewer.key, role: 'viewer' });
    assert.match(login.cookie, /^com\.sixsq\.nuvla\.cookie=[A-Za-z0-9_.-]+; Path=\/; Max-Age=86400; HttpOnly; SameSite=Strict$/);
    assert.equal(login.expires.getTime(), T0.getTime() + 24 * HOUR);
    const cookie = `theme=dark; ${cookieOf(login.cookie)}`;
    assert.deepEqual(await auth.authenticate({ cookie }), login.principal);
    await assert.rejects(
      auth.authenticate({ cookie, authorization: `Bearer ${viewer.key}:wrong` }),
      isApiError('unauthorized', 'unknown key or wrong secret'),
      'an Authorization header wins over the cookie',
    );
    await assert.rejects(
      auth.authenticate({ cookie: tamper(cookie, cookie.length - 50) }),
      isApiError('unauthorized', 'invalid session cookie'),
    );
    clock = new Date(T0.getTime() + 24 * HOUR);
    try {
      await assert.rejects(
        auth.authenticate({ cookie }),
        isApiError('unauthorized', 'session expired: log in again with POST /api/session'),
      );
    } finally {
      clock = T0;
    }
    assert.match(auth.logoutCookie(), /^com\.sixsq\.nuvla\.cookie=; Path=\/; Max-Age=0; HttpOnly; SameSite=Strict$/);
  });

  test('revoking a key ends its sessions', async () => {
    const executor = await store.create('executor');
    const login = await auth.login({ template: { href: 'session-template/api-key', key: executor.key, secret: executor.secret } });
    assert.equal((await auth.authenticate({ cookie: cookieOf(login.cookie) })).role, 'executor');
    await store.revoke(executor.key);
    await assert.rejects(auth.authenticate({ cookie: cookieOf(login.cookie) }), isApiError('unauthorized', 'revoked'));
  });

  test('a malformed login body is a 400 naming the problem; a wrong secret is a 401', async () => {
    const template = { href: 'session-template/api-key', key: viewer.key, secret: viewer.secret };
    await assert.rejects(auth.login('key:secret'), isApiError('bad-request', 'must be a JSON object like {"template"'));
    await assert.rejects(auth.login({}), isApiError('bad-request', 'needs a "template" object'));
    await assert.rejects(
      auth.login({ template: { ...template, href: 'session-template/password' } }),
      isApiError('bad-request', '"session-template/password"'),
    );
    await assert.rejects(
      auth.login({ template: { ...template, key: 5 } }),
      isApiError('bad-request', '"template.key" must be a non-empty string, got a number'),
    );
    await assert.rejects(auth.login({ template: { ...template, secret: undefined } }), isApiError('bad-request', '"template.secret"'));
    await assert.rejects(
      auth.login({ template: { ...template, secret: 'wrong' } }),
      isApiError('unauthorized', 'unknown key or wrong secret'),
    );
  });

  test('authorize: 403 naming the role and what it may not do', () => {
    auth.authorize({ credentialId: viewer.key, role: 'viewer' }, 'read');
    auth.authorize({ credentialId: admin.key, role: 'admin' }, 'delete');
    assert.throws(
      () => {
        auth.authorize({ credentialId: viewer.key, role: 'viewer' }, 'edit');
      },
      isApiError('forbidden', 'role viewer may not edit jobs (that needs role operator or admin)'),
    );
    assert.throws(
      () => {
        auth.authorize({ credentialId: viewer.key, role: 'viewer' }, 'delete');
      },
      isApiError('forbidden', 'role viewer may not delete jobs (that needs role operator or admin)'),
    );
    assert.throws(
      () => {
        auth.authorize({ credentialId: viewer.key, role: 'executor' }, 'admin');
      },
      isApiError('forbidden', 'manage API keys'),
    );
  });
});

describe('createAdminKey', () => {
  test('prints the key and secret once, and refuses a second admin unless forced', async () => {
    const store = await openSqliteCredentialStore(join(tempDir, 'admin-cli.sqlite'));
    try {
      await store.create('viewer');
      const lines: string[] = [];
      const created = await createAdminKey(store, (line) => lines.push(line));
      const output = lines.join('\n');
      const secret = /secret: (\S+)/.exec(output)?.[1];
      assert.ok(secret !== undefined, output);
      assert.ok(output.includes(created.key));
      assert.match(output, /only its hash is stored, and it cannot be shown again/);
      assert.deepEqual(await store.verify(created.key, secret), { credentialId: created.key, role: 'admin' });

      await assert.rejects(
        createAdminKey(store, (line) => lines.push(line)),
        (error: unknown) =>
          error instanceof AdminKeyExistsError && error.message.includes(created.key) && error.message.includes('--force'),
      );
      assert.equal(await store.count('admin'), 1);
      await createAdminKey(store, () => undefined, { force: true });
      assert.equal(await store.count('admin'), 2);
    } finally {
      await store.close();
    }
  });
});

describe('readApiKey', () => {
  test('from the environment or from files; half or double configuration is an error', async () => {
    const secretFile = join(tempDir, 'secret');
    await writeFile(secretFile, 'file-secret\n');
    assert.equal(await readApiKey({}), undefined);
    assert.deepEqual(await readApiKey({ JOB_API_KEY: 'k', JOB_API_SECRET: 's' }), { key: 'k', secret: 's' });
    assert.deepEqual(await readApiKey({ JOB_API_KEY: 'k', JOB_API_SECRET_FILE: secretFile }), { key: 'k', secret: 'file-secret' });
    await assert.rejects(readApiKey({ JOB_API_KEY: 'k' }), /JOB_API_KEY is set but no JOB_API_SECRET/);
    await assert.rejects(readApiKey({ JOB_API_KEY: 'k', JOB_API_SECRET: 's', JOB_API_SECRET_FILE: secretFile }), /not both/);
    await assert.rejects(
      readApiKey({ JOB_API_KEY: 'k', JOB_API_SECRET_FILE: join(tempDir, 'missing') }),
      /cannot read JOB_API_SECRET_FILE/,
    );
  });
});
