/**
 * The dashboard under /ui/ on the API's own port: its built files (ui-assets.ts), with headers that
 * keep it to itself (a content security policy allowing only its own scripts, styles and API, no
 * framing, no referrer). The dashboard is a client of the REST API like any other: it logs in with
 * an API key through POST /api/session and every action it offers is checked again by the API.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { UiAsset, UiAssets } from './ui-assets.js';

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function registerUiRoutes(app: FastifyInstance, assets: UiAssets): void {
  app.get('/ui', (_request, reply) => reply.redirect('/ui/', 301));
  app.get('/ui/', (request, reply) => serve(request, reply, assets, 'index.html'));
  app.get('/ui/:file', (request, reply) => {
    const file: unknown = typeof request.params === 'object' && request.params !== null ? Reflect.get(request.params, 'file') : undefined;
    return serve(request, reply, assets, typeof file === 'string' && ASSET_NAME.test(file) ? file : '');
  });
}

function serve(request: FastifyRequest, reply: FastifyReply, assets: UiAssets, name: string): FastifyReply {
  reply.headers(SECURITY_HEADERS);
  if (!assets.built) {
    return reply
      .code(503)
      .type('text/plain; charset=utf-8')
      .send(`The dashboard is not built: ${assets.dir} has no index.html. Run npm run build, then restart job-api.\n`);
  }
  const asset: UiAsset | undefined = assets.files.get(name);
  if (asset === undefined) return reply.code(404).type('text/plain; charset=utf-8').send(`no such dashboard file: ${name}\n`);
  // Revalidated every time (a 304 costs one round trip): a new build is seen at once, no stale bundle.
  reply.header('cache-control', 'no-cache').header('etag', asset.etag).header('vary', 'accept-encoding');
  if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
  const acceptEncoding = request.headers['accept-encoding'];
  const gzip = typeof acceptEncoding === 'string' && /\bgzip\b/.test(acceptEncoding);
  reply.type(asset.contentType);
  return gzip ? reply.header('content-encoding', 'gzip').send(asset.gzipped) : reply.send(asset.body);
}
