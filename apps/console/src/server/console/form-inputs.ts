import { bool, list, num, numOr, str } from '../shared/action-state';
import { ServiceError } from '../shared/context';
import { edgeFieldFor, routeEdgeInputFrom } from './edge-form-inputs';

// Browser forms → service input for routes and JWT settings. Kept out of the 'use server'
// module so tests can feed hostile FormData straight in; the services still validate everything.

const MAX_LINES = 50;

/** "Name: value" lines → { Name: value }; a line without a colon names the form field. */
export function parseHeaderLines(text: string | undefined, field: string): Record<string, string> | undefined {
  const lines = (text ?? '')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  if (lines.length === 0) return undefined;
  if (lines.length > MAX_LINES)
    throw new ServiceError('unprocessable', 'too many header lines', { [field]: `must have at most ${MAX_LINES} lines` });
  const out: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i <= 0)
      throw new ServiceError('unprocessable', `"${line.slice(0, 40)}" is not Name: value`, { [field]: 'needs one Name: value per line' });
    const name = line.slice(0, i).trim();
    if (Object.hasOwn(out, name) || name === '__proto__')
      throw new ServiceError('unprocessable', `header ${name.slice(0, 40)} appears twice`, { [field]: 'names a header twice' });
    out[name] = line.slice(i + 1).trim();
  }
  return out;
}

/** Header names one per line or comma-separated. */
export function parseHeaderList(text: string | undefined, field: string): string[] | undefined {
  const names = (text ?? '')
    .split(/[\r\n,]+/)
    .map((l) => l.trim())
    .filter(Boolean);
  if (names.length === 0) return undefined;
  if (names.length > MAX_LINES)
    throw new ServiceError('unprocessable', 'too many header names', { [field]: `must have at most ${MAX_LINES} names` });
  return names;
}

const TRANSFORM_FIELDS = {
  'transform.requestHeaders.set': 'requestSet',
  'transform.requestHeaders.remove': 'requestRemove',
  'transform.responseHeaders.set': 'responseSet',
  'transform.responseHeaders.remove': 'responseRemove',
} as const;

export function transformFrom(fd: FormData) {
  const side = (set: string, remove: string) => {
    const s = parseHeaderLines(str(fd, set), set);
    const r = parseHeaderList(str(fd, remove), remove);
    return s || r ? { ...(s ? { set: s } : {}), ...(r ? { remove: r } : {}) } : undefined;
  };
  const requestHeaders = side('requestSet', 'requestRemove');
  const responseHeaders = side('responseSet', 'responseRemove');
  return requestHeaders || responseHeaders
    ? { ...(requestHeaders ? { requestHeaders } : {}), ...(responseHeaders ? { responseHeaders } : {}) }
    : null;
}

export function routeInputFrom(fd: FormData) {
  const rl = num(fd, 'rateLimit');
  return {
    name: str(fd, 'name') ?? '',
    path: str(fd, 'path'),
    methods: list(fd, 'methods'),
    cacheTtlSeconds: numOr(fd, 'cacheTtlSeconds', 0),
    requestTimeoutMs: num(fd, 'requestTimeoutMs') ?? null,
    rateLimit:
      rl === null || rl === undefined ? null : { limit: rl, windowSeconds: numOr(fd, 'rateWindowSeconds', 1), algorithm: 'sliding_window' },
    transform: transformFrom(fd),
    // Scopes and the route-wide limit (ADR 0025), when the form carries them.
    ...(fd.has('requiredScopes') ? routeEdgeInputFrom(fd) : {}),
  };
}

/** Service field paths (transform.requestHeaders.set.X-Foo) → the form field that holds them. */
export function formFieldsFor(err: unknown): unknown {
  if (!(err instanceof ServiceError) || !err.fields) return err;
  const fields: Record<string, string> = {};
  for (const [k, v] of Object.entries(err.fields)) {
    const hit = Object.entries(TRANSFORM_FIELDS).find(([prefix]) => k === prefix || k.startsWith(`${prefix}.`));
    const jwtPart = k.startsWith('jwtConfig.') ? k.split('.')[1]! : null;
    const target = hit ? hit[1] : jwtPart ? `jwt${jwtPart[0]!.toUpperCase()}${jwtPart.slice(1)}` : (edgeFieldFor(k) ?? k);
    fields[target] ??= v;
  }
  return new ServiceError(err.code, err.message, fields);
}

/**
 * JWT settings from the API form. Empty fields mean "not set"; an API that doesn't use JWT
 * and has nothing filled in stores no settings. The signing key isn't on the form, so an
 * existing one is kept.
 */
export function jwtConfigFrom(fd: FormData, authMode: string | undefined, existingKey: string | null = null) {
  const text = (n: string) => {
    const v = str(fd, n)?.trim();
    return v ? v : null;
  };
  const issuer = text('jwtIssuer');
  const audience = text('jwtAudience');
  const jwksUrl = text('jwtJwksUrl');
  const algorithms = list(fd, 'jwtAlgorithms');
  const forwardClaims = (str(fd, 'jwtForwardClaims') ?? '').split(/[\s,]+/).filter(Boolean);
  const any = issuer || audience || jwksUrl || forwardClaims.length > 0;
  if (authMode !== 'JWT' && !any && !existingKey) return null;
  // Checked = tokens without `exp` are accepted; the lifetime cap defaults when left empty.
  const requireExp = !bool(fd, 'jwtAllowNoExp');
  const maxLifetimeSeconds = numOr(fd, 'jwtMaxLifetimeSeconds', 86_400);
  return {
    issuer,
    audience,
    jwksUrl,
    key: existingKey,
    algorithms: algorithms.length ? algorithms : ['RS256'],
    forwardClaims,
    requireExp,
    maxLifetimeSeconds,
  };
}
