/**
 * Issue 14, finding 7: the API serves HTTPS (--tls-cert/--tls-key), the client trusts a given CA
 * (--api-ca-file, `ca`) and refuses an unknown certificate, and the session cookie is `Secure` over
 * HTTPS or behind a trusted proxy that says the client used HTTPS (X-Forwarded-Proto), never
 * otherwise. A self-signed certificate for 127.0.0.1 is made by openssl in the test.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';

import { JobApiClient } from '../src/api/client/job-api-client.js';
import { JobApiServer } from '../src/api/server/job-api-server.js';
import { compileJobApiServerOptions } from '../src/api/server/options.js';
import { readApiOptions } from '../src/cli/option-readers.js';
import { silentLogger } from '../src/util/logger.js';

const run = promisify(execFile);

let dir: string;
let certFile: string;
let keyFile: string;
let certPem: string;
const servers: JobApiServer[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'api-tls-'));
  certFile = join(dir, 'cert.pem');
  keyFile = join(dir, 'key.pem');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  certPem = await readFile(certFile, 'utf8');
});

after(async () => {
  for (const server of servers) await server.stop();
  await rm(dir, { recursive: true, force: true });
});

async function serve(
  name: string,
  args: Record<string, unknown>,
): Promise<{ server: JobApiServer; admin: { key: string; secret: string } }> {
  const options = await compileJobApiServerOptions({ database: join(dir, `${name}.sqlite`), host: '127.0.0.1', port: 0, ...args });
  const server = await JobApiServer.start(options, silentLogger);
  servers.push(server);
  const admin = await server.stores.credentials.create('admin', 'tls');
  return { server, admin: { key: admin.key, secret: admin.secret } };
}

const loginBody = (admin: { key: string; secret: string }): string =>
  JSON.stringify({ template: { href: 'session-template/api-key', key: admin.key, secret: admin.secret } });

/** A login over HTTPS trusting `ca`; the Set-Cookie header it got. */
function httpsLogin(baseUrl: string, admin: { key: string; secret: string }, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      `${baseUrl}/api/session`,
      { method: 'POST', ca, headers: { 'content-type': 'application/json' } },
      (response) => {
        response.resume();
        response.on('end', () => {
          assert.equal(response.statusCode, 201);
          resolve(response.headers['set-cookie']?.[0] ?? '');
        });
      },
    );
    request.on('error', reject);
    request.end(loginBody(admin));
  });
}

async function httpLogin(baseUrl: string, admin: { key: string; secret: string }, headers: Record<string, string> = {}): Promise<string> {
  const response = await fetch(`${baseUrl}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: loginBody(admin),
  });
  assert.equal(response.status, 201);
  return response.headers.get('set-cookie') ?? '';
}

const isSecure = (cookie: string): boolean => cookie.split(';').some((attribute) => attribute.trim().toLowerCase() === 'secure');

describe('TLS on the job API', () => {
  test('--tls-cert/--tls-key serve HTTPS; a client given the CA works, one without it is refused', async () => {
    const { server, admin } = await serve('tls', { 'tls-cert': certFile, 'tls-key': keyFile });
    assert.match(server.address, /^https:\/\//);

    const trusting = await JobApiClient.create({ baseUrl: server.address, credentials: admin, ca: certPem, retry: { retries: 0 } });
    try {
      assert.equal(await trusting.count(), 0);
    } finally {
      await trusting.close();
    }

    const untrusting = await JobApiClient.create({ baseUrl: server.address, credentials: admin, retry: { retries: 0 } });
    try {
      await assert.rejects(untrusting.count(), /certificate/i);
    } finally {
      await untrusting.close();
    }

    assert.ok(isSecure(await httpsLogin(server.address, admin, certPem)), 'a cookie served over HTTPS is Secure');
  });

  test('--api-ca-file is read into the client options', async () => {
    const options = await readApiOptions({ 'api-url': 'https://127.0.0.1:1', 'api-ca-file': certFile }, 10);
    assert.equal(options.ca, certPem);
    const notPem = join(dir, 'not-a-cert');
    await writeFile(notPem, 'hello');
    await assert.rejects(readApiOptions({ 'api-ca-file': notPem }, 10), /no PEM certificate/);
  });

  test('plain HTTP: no Secure cookie; behind a trusted proxy saying https: Secure; an untrusted X-Forwarded-Proto is ignored', async () => {
    const plain = await serve('plain', {});
    assert.ok(!isSecure(await httpLogin(plain.server.address, plain.admin)), 'plain HTTP must not set Secure');
    assert.ok(
      !isSecure(await httpLogin(plain.server.address, plain.admin, { 'x-forwarded-proto': 'https' })),
      'X-Forwarded-Proto from anyone must not be believed',
    );
    const proxied = await serve('proxied', { 'trust-proxy': '127.0.0.1' });
    assert.ok(
      isSecure(await httpLogin(proxied.server.address, proxied.admin, { 'x-forwarded-proto': 'https' })),
      'behind a trusted proxy over https',
    );
    assert.ok(!isSecure(await httpLogin(proxied.server.address, proxied.admin, { 'x-forwarded-proto': 'http' })));
  });
});
