export * from './period';
export * from './rating';
export * from './ledger';
export { createStripeClient, createWebhookVerifier, type StripeSettings, type StripeClient } from './stripe/client';
export { withStripeRetry, isRetryableStripeError, type RetryOptions } from './stripe/retry';
export {
  reportMeterUsage,
  meterEventName,
  isDuplicateMeterEvent,
  type MeterReportResult,
  type MeterReportOptions,
} from './stripe/meter-report';
export {
  syncPlanToStripe,
  ensureStripeCustomer,
  createCheckoutSession,
  StripeNotConfiguredError,
  BillingInputError,
  type CheckoutInput,
  type CheckoutSession,
  type PlanStripeIds,
} from './stripe/catalog';
export { createStripeWebhookHandler, mapStripeStatus, type StripeWebhookOptions, type WebhookResult } from './stripe/webhooks';
export { previewSubscriptionInvoice } from './preview';
export { cancelStripeSubscription, changeSubscriptionPlan } from './stripe/subscriptions';
