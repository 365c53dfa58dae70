/**
 * What the routes need from authentication, as a structural type: the auth module's Authenticator
 * satisfies it, and the server does not depend on how credentials are stored.
 */
import type { FastifyRequest } from 'fastify';

export type Permission = 'read' | 'read-all' | 'create' | 'cancel-own' | 'claim' | 'edit' | 'delete-final' | 'delete' | 'publish' | 'admin';

export interface Principal {
  readonly credentialId: string;
  readonly role: string;
  /** The only actions the key may create jobs of; absent: any. */
  readonly actions?: readonly string[];
}

export interface AccessControl {
  /** Throws ApiError 'unauthorized' when the request carries no valid credentials. */
  authenticate(headers: { cookie?: string | undefined; authorization?: string | undefined }): Promise<Principal>;
  /** Throws ApiError 'forbidden' when the principal's role lacks the permission. */
  authorize(principal: Principal, permission: Permission): void;
  /** Whether the principal's role holds the permission. */
  allows(principal: Principal, permission: Permission): boolean;
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

/**
 * Authenticates the request and checks that its role holds one of `permissions` (the first is named
 * in the 403); returns who is asking. The route then narrows by what the weaker permission allows.
 */
export async function requireAnyPermission(
  access: AccessControl,
  request: FastifyRequest,
  permissions: readonly [Permission, ...Permission[]],
): Promise<Principal> {
  const principal = await access.authenticate({ cookie: request.headers.cookie, authorization: request.headers.authorization });
  if (!permissions.some((permission) => access.allows(principal, permission))) access.authorize(principal, permissions[0]);
  return principal;
}
