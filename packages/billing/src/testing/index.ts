export * from './stripe-stand-in';
