import { numOr, str } from '../shared/action-state';

// Browser form → service input for introspection settings and deprecation dates (ADR 0028).
// Kept out of the 'use server' module so tests can feed hostile FormData straight in.

const text = (fd: FormData, n: string) => {
  const v = str(fd, n)?.trim();
  return v ? v : null;
};

/**
 * Introspection settings from the API form: null when the API doesn't use introspection and
 * nothing is filled in. A blank secret keeps the stored one (the form never shows it).
 */
export function introspectionConfigFrom(fd: FormData, authMode: string | undefined) {
  const endpoint = text(fd, 'introspectionEndpoint');
  const clientId = text(fd, 'introspectionClientId');
  if (authMode !== 'INTROSPECTION' && !endpoint && !clientId) return undefined;
  const secret = text(fd, 'introspectionClientSecret');
  return {
    endpoint: endpoint ?? '',
    clientId: clientId ?? '',
    ...(secret ? { clientSecret: secret } : {}),
    cacheMaxTtlSeconds: numOr(fd, 'introspectionCacheMaxTtlSeconds', 60),
    requiredScopes: (str(fd, 'introspectionRequiredScopes') ?? '').split(/\s+/).filter(Boolean),
    consumerClaim: text(fd, 'introspectionConsumerClaim'),
  };
}

/** `Deprecation`/`Sunset` dates and the link; empty fields clear them. */
export function lifecycleFrom(fd: FormData) {
  return {
    deprecatedAt: text(fd, 'deprecatedAt'),
    sunsetAt: text(fd, 'sunsetAt'),
    deprecationLink: text(fd, 'deprecationLink'),
  };
}

/** The JWT consumer claim field (kept separate so the JWT parser stays as it was). */
export function jwtConsumerClaimFrom(fd: FormData): string | null {
  return text(fd, 'jwtConsumerClaim');
}
