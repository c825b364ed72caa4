import { bool, num, numOr, str } from '../shared/action-state';

// Browser forms → service input for the edge policies (ADR 0025). Empty means "off"; the
// services validate everything (CIDR syntax, "*" with credentials) and name the field.

/** One entry per line or comma/space separated; a list the service will refuse past its limit is still passed on whole. */
export function entries(fd: FormData, name: string): string[] {
  return (str(fd, name) ?? '')
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Allow and deny textareas (`{prefix}ipAllow`, `{prefix}ipDeny`) → rules, or null when both are empty. */
export function ipRulesFrom(fd: FormData, prefix = '') {
  const allow = entries(fd, `${prefix}ipAllow`);
  const deny = entries(fd, `${prefix}ipDeny`);
  return allow.length || deny.length ? { allow, deny } : null;
}

const limitFrom = (fd: FormData, limit: string, window: string) => {
  const n = num(fd, limit);
  return n === null || n === undefined
    ? null
    : { limit: n, windowSeconds: numOr(fd, window, 1), algorithm: str(fd, `${limit}Algorithm`) ?? 'sliding_window' };
};

/** The API's edge-policy form: CORS, address rules, per-address limit, circuit breaker. */
export function edgePolicyInputFrom(fd: FormData) {
  const origins = entries(fd, 'corsOrigins');
  const cors = bool(fd, 'corsEnabled')
    ? {
        origins,
        methods: entries(fd, 'corsMethods').map((m) => m.toUpperCase()),
        headers: entries(fd, 'corsHeaders'),
        exposedHeaders: entries(fd, 'corsExposedHeaders'),
        credentials: bool(fd, 'corsCredentials'),
        maxAgeSeconds: numOr(fd, 'corsMaxAgeSeconds', 600),
      }
    : null;
  const circuitBreaker = bool(fd, 'breakerEnabled')
    ? {
        // The form asks for a percentage; the policy holds a ratio.
        failureRatio: (() => {
          const p = numOr(fd, 'breakerFailurePercent', 50);
          return typeof p === 'number' ? p / 100 : p;
        })(),
        minRequests: numOr(fd, 'breakerMinRequests', 20),
        windowSeconds: numOr(fd, 'breakerWindowSeconds', 30),
        openSeconds: numOr(fd, 'breakerOpenSeconds', 10),
        halfOpenProbes: numOr(fd, 'breakerHalfOpenProbes', 1),
      }
    : null;
  return { cors, ipRules: ipRulesFrom(fd), perIpRateLimit: limitFrom(fd, 'perIpLimit', 'perIpWindowSeconds'), circuitBreaker };
}

/** The route form's edge fields: required scopes and the route-wide limit. */
export function routeEdgeInputFrom(fd: FormData) {
  return { requiredScopes: entries(fd, 'requiredScopes'), sharedRateLimit: limitFrom(fd, 'sharedLimit', 'sharedWindowSeconds') };
}

/** Service field paths → the form field that shows the error (`cors.origins.0` → corsOrigins). */
export function edgeFieldFor(path: string): string | null {
  const [head, sub] = path.split('.');
  if (head === 'cors')
    return sub === 'credentials' ? 'corsCredentials' : `cors${(sub ?? 'origins')[0]!.toUpperCase()}${(sub ?? 'origins').slice(1)}`;
  if (head === 'ipRules') return sub === 'allow' ? 'ipAllow' : 'ipDeny';
  if (head === 'perIpRateLimit') return sub === 'windowSeconds' ? 'perIpWindowSeconds' : 'perIpLimit';
  if (head === 'sharedRateLimit') return sub === 'windowSeconds' ? 'sharedWindowSeconds' : 'sharedLimit';
  if (head === 'requiredScopes' || head === 'scopes') return head;
  if (head === 'circuitBreaker')
    return sub === 'failureRatio' ? 'breakerFailurePercent' : `breaker${(sub ?? '')[0]?.toUpperCase() ?? ''}${(sub ?? '').slice(1)}`;
  return null;
}
