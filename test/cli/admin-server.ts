// The console's admin API (the real route handlers, as Next runs them) behind a real HTTP
// socket, so the CLI is tested over the network exactly as it talks to a deployed console.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Db } from '@tollgate/db';
import { createV1Handlers } from '../../apps/console/src/server/console/api/v1';
import { publicResolver } from '../console/fixtures';

type Handler = (req: Request, route: { params: Promise<Record<string, string>> }) => Promise<Response>;
type Methods = Partial<Record<'GET' | 'POST' | 'PATCH' | 'DELETE', Handler>>;

/** The file-system routes of apps/console/src/app/(console)/api/v1, as patterns. */
function routes(v1: ReturnType<typeof createV1Handlers>): Array<[RegExp, Methods]> {
  const h = (m: object) => m as Methods;
  return [
    [/^\/settings$/, h(v1.settings)],
    [/^\/apis$/, h(v1.apis)],
    [/^\/apis\/(?<id>[^/]+)$/, h(v1.api)],
    [/^\/apis\/(?<id>[^/]+)\/routes$/, h(v1.apiRoutes)],
    [/^\/routes\/(?<id>[^/]+)$/, h(v1.route)],
    [/^\/plans$/, h(v1.plans)],
    [/^\/plans\/(?<id>[^/]+)$/, h(v1.plan)],
  ];
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export type AdminServer = { url: string; server: Server; requests: string[]; close: () => Promise<void> };

export async function startAdminServer(db: Db): Promise<AdminServer> {
  const v1 = createV1Handlers(
    () => ({ db, log: { error: () => undefined, warn: () => undefined }, consoleUrl: 'https://console.example.com' }),
    {
      resolve: publicResolver,
    },
  );
  const table = routes(v1);
  const requests: string[] = [];
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://console.test');
    requests.push(`${req.method} ${url.pathname}`);
    const body = await readBody(req);
    const sub = url.pathname.replace(/^\/api\/v1/, '');
    let handler: Handler = v1.notFound as Handler;
    let params: Record<string, string> = {};
    if (url.pathname.startsWith('/api/v1')) {
      for (const [re, methods] of table) {
        const m = re.exec(sub);
        if (!m) continue;
        params = { ...m.groups };
        handler = methods[req.method as keyof Methods] ?? (v1.notFound as Handler);
        break;
      }
    } else {
      // What a wrong --url finds: some other web page.
      res.writeHead(404, { 'content-type': 'text/html' }).end('<h1>Not found</h1>');
      return;
    }
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
    const request = new Request(url, { method: req.method, headers, body: body.length ? body : undefined });
    const response = await handler(request, { params: Promise.resolve(params) });
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
