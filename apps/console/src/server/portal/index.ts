// Portal services: transport-agnostic like ../services; pages and tests call these.
export * from './context';
export * from './session';
export * from './email';
export * from './accounts';
export * from './developer';
export * from './catalog';
export * from './reference';
export * from './subscriptions';
export * from './keys';
export * from './usage';
export * from './try-it';
