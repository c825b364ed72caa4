import Stripe from 'stripe';

export type StripeSettings = {
  /** Without a key Stripe is off: usage is still metered and rated, nothing is sent. */
  secretKey?: string | undefined;
  host?: string | undefined;
  port?: number | undefined;
  protocol?: 'http' | 'https' | undefined;
  timeoutMs?: number | undefined;
};

export type StripeClient = Stripe;

/** The real SDK, pointed at Stripe or at a stand-in; null when no key is configured. */
export function createStripeClient(settings: StripeSettings): Stripe | null {
  if (!settings.secretKey) return null;
  return new Stripe(settings.secretKey, {
    ...(settings.host ? { host: settings.host } : {}),
    ...(settings.port ? { port: settings.port } : {}),
    ...(settings.protocol ? { protocol: settings.protocol } : {}),
    timeout: settings.timeoutMs ?? 20_000,
    // Retries are ours (withStripeRetry): one policy, visible in logs and metrics.
    maxNetworkRetries: 0,
    telemetry: false,
  });
}

/** Webhook verification needs no API key; this instance never calls the API. */
export function createWebhookVerifier(): Stripe {
  return new Stripe('sk_webhook_verification_only', { maxNetworkRetries: 0, telemetry: false });
}
