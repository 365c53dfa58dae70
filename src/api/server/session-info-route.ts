/**
 * `GET /api/session`: who the request's credentials are and what their role may do, so a client (the
 * dashboard) shows only what the key may do. It decides nothing: every route checks its permission
 * itself, so a hidden button forged back into a request still gets 403.
 */
import type { FastifyInstance } from 'fastify';
import { PERMISSIONS } from '../auth/credentials.js';
import type { AccessControl } from './access.js';

export function registerSessionInfoRoute(app: FastifyInstance, access: AccessControl): void {
  app.get('/api/session', async (request) => {
    const principal = await access.authenticate({ cookie: request.headers.cookie, authorization: request.headers.authorization });
    return {
      'resource-type': 'session',
      key: principal.credentialId,
      role: principal.role,
      permissions: PERMISSIONS.filter((permission) => access.allows(principal, permission)),
      ...(principal.actions === undefined ? {} : { actions: principal.actions }),
    };
  });
}
