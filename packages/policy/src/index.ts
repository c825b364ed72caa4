export * from './snapshot';
export * from './key-record';
export * from './events';
export * from './keyspace';
export * from './errors';
export * from './headers';
export * from './change-stream';
export * from './request-id';
