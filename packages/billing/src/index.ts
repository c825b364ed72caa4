export * from './period';
export * from './rating';
