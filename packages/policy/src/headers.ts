/**
 * Headers with meaning to one connection only (RFC 9110 §7.6.1, plus the legacy and HTTP/2
 * ones): never forwarded in either direction.
 */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authenticate',
  'http2-settings',
]);

/** Request headers the gateway derives from what it saw itself; a client's copy is dropped. */
export const GATEWAY_DERIVED_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  'host',
  'expect',
  'proxy-authorization',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-real-ip',
]);

/**
 * Request headers some servers and frameworks treat as the URL to serve (IIS URL Rewrite,
 * Symfony/Zend, nginx auth subrequests): a client's copy would let it pick a resource other
 * than the one the gateway routed and authorised. Never forwarded.
 */
export const URL_OVERRIDE_REQUEST_HEADERS: ReadonlySet<string> = new Set(['x-original-url', 'x-rewrite-url', 'x-original-uri']);

/** The namespace of the identity headers only the gateway may set. */
export const IDENTITY_HEADER_PREFIX = 'x-tollgate-';

/**
 * Whether a header belongs to the gateway (framing, hop-by-hop, derived, identity, request id),
 * so that a tenant's configured transform may not set or remove it. Expects any case.
 */
export function isGatewayOwnedHeader(name: string): boolean {
  const n = name.toLowerCase();
  return (
    HOP_BY_HOP_HEADERS.has(n) ||
    GATEWAY_DERIVED_REQUEST_HEADERS.has(n) ||
    n === 'content-length' ||
    n === 'x-request-id' ||
    n.startsWith(IDENTITY_HEADER_PREFIX)
  );
}
