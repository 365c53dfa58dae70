/** Nuvla's session login: an `api-key` template in, a session cookie out. */
import type { FastifyInstance } from 'fastify';
import type { AccessControl } from './access.js';

/** `loginConfig`: the route's config, which carries its rate limit (credential-limits.ts). */
export function registerSessionRoutes(app: FastifyInstance, access: AccessControl, loginConfig: Record<string, unknown> = {}): void {
  app.post('/api/session', { config: loginConfig }, async (request, reply) => {
    // request.protocol is 'https' over TLS, or when a trusted proxy says so (X-Forwarded-Proto).
    const { principal, cookie } = await access.login(request.body, { secure: request.protocol === 'https' });
    return reply
      .code(201)
      .header('set-cookie', cookie)
      .send({ status: 201, message: `logged in as ${principal.credentialId} (${principal.role})`, 'resource-id': 'session' });
  });

  // The session is revoked server-side, not only dropped by the browser: a copied cookie dies too.
  app.delete('/api/session', async (request, reply) =>
    reply
      .header('set-cookie', await access.logout({ cookie: request.headers.cookie }, { secure: request.protocol === 'https' }))
      .send({ status: 200, message: 'logged out' }),
  );
}
