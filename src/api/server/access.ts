/**
 * What the routes need from authentication, as a structural type: the auth module's Authenticator
 * satisfies it, and the server does not depend on how credentials are stored.
 */
import type { FastifyRequest } from 'fastify';

export type Permission = 'read' | 'write' | 'delete' | 'admin';

export interface Principal {
  readonly credentialId: string;
  readonly role: string;
}

export interface AccessControl {
  /** Throws ApiError 'unauthorized' when the request carries no valid credentials. */
  authenticate(headers: { cookie?: string | undefined; authorization?: string | undefined }): Promise<Principal>;
  /** Throws ApiError 'forbidden' when the principal's role lacks the permission. */
  authorize(principal: Principal, permission: Permission): void;
  /** `secure`: the request came over HTTPS, so the cookie gets `Secure`. */
  login(body: unknown, context?: { secure?: boolean }): Promise<{ principal: Principal; cookie: string }>;
  /** The Set-Cookie value that ends a session cookie (with the same attributes as login's). */
  logoutCookie(context?: { secure?: boolean }): string;
  /** Revokes the session the headers' cookie carries, if any; returns the Set-Cookie value that clears it. */
  logout(headers: { cookie?: string | undefined }, context?: { secure?: boolean }): Promise<string>;
}

/** Authenticates the request and checks one permission; returns who is asking. */
export async function requirePermission(access: AccessControl, request: FastifyRequest, permission: Permission): Promise<Principal> {
  const principal = await access.authenticate({ cookie: request.headers.cookie, authorization: request.headers.authorization });
  access.authorize(principal, permission);
  return principal;
}
