import { CliError, EXIT } from './errors';

export type ClientOptions = {
  /** The console's address, e.g. https://console.example.com (with or without /api/v1). */
  url: string;
  token: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
};

/** The console answered with its error envelope: the change was refused (4xx) or failed (5xx). */
export class ApiError extends Error {
  constructor(
    public readonly status: number,
    public readonly code: string,
    message: string,
    public readonly fields: Record<string, string> | undefined,
    public readonly requestId: string | undefined,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

type Envelope = { error?: { code?: unknown; message?: unknown; fields?: unknown; requestId?: unknown } };

export type AdminClient = {
  readonly baseUrl: string;
  request<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T>;
  /** Every item of a cursor-paginated list. */
  listAll<T>(path: string, query?: Record<string, string>): Promise<T[]>;
};

export function apiBase(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new CliError(
      `--url ${JSON.stringify(url)} is not a URL; give the console's address, e.g. https://console.example.com`,
      EXIT.usage,
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new CliError(`--url must be http(s), got ${u.protocol}`, EXIT.usage);
  const path = u.pathname.replace(/\/+$/, '').replace(/\/api\/v1$/, '');
  return `${u.origin}${path}/api/v1`;
}

export function createAdminClient(opts: ClientOptions): AdminClient {
  const baseUrl = apiBase(opts.url);
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 30_000;

  async function request<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await doFetch(`${baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${opts.token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        redirect: 'error',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new CliError(`cannot reach the console at ${new URL(baseUrl).origin}: ${describeFetchError(err)}`, EXIT.unavailable);
    }
    const text = await res.text().catch(() => '');
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = undefined;
    }
    const isJson = /\bjson\b/i.test(res.headers.get('content-type') ?? '') && parsed !== undefined;
    if (res.ok && isJson) return parsed as T;
    const envelope = isJson ? (parsed as Envelope).error : undefined;
    if (!envelope || typeof envelope.message !== 'string') {
      throw new CliError(
        `${new URL(baseUrl).origin} did not answer like the Tollgate admin API (${method} ${path}: HTTP ${res.status}${
          res.headers.get('content-type') ? `, ${res.headers.get('content-type')!.split(';')[0]}` : ''
        }); is --url the console's address?`,
        EXIT.unavailable,
      );
    }
    const requestId = typeof envelope.requestId === 'string' ? envelope.requestId : undefined;
    if (res.status === 401) {
      throw new CliError(
        `the console refused the token: ${envelope.message} (set TOLLGATE_TOKEN to an admin API token, tgat_…)`,
        EXIT.noPermission,
      );
    }
    const fields = envelope.fields && typeof envelope.fields === 'object' ? (envelope.fields as Record<string, string>) : undefined;
    throw new ApiError(res.status, String(envelope.code ?? 'error'), envelope.message, fields, requestId);
  }

  async function listAll<T>(path: string, query: Record<string, string> = {}): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 1000; pages++) {
      const qs = new URLSearchParams({ ...query, limit: '100', ...(cursor ? { cursor } : {}) });
      const page: { data: T[]; nextCursor: string | null } = await request('GET', `${path}?${qs}`);
      out.push(...page.data);
      cursor = page.nextCursor;
      if (!cursor) return out;
    }
    throw new CliError(`${path} returned more than 1000 pages`, EXIT.failed);
  }

  return { baseUrl, request, listAll };
}

function describeFetchError(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return 'no answer in time';
  const code = e.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (code) return code;
  return (e.cause?.message ?? e.message ?? 'request failed').split('\n')[0]!;
}
