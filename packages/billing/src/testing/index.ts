export * from './stripe-stand-in';
export { parseStripeForm } from './stripe-form';
export type { MeterEventRecord } from './stripe-state';
