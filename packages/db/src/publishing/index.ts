export {
  compileTenantPolicy,
  compileKeyRecord,
  toKeyRecord,
  KEY_RECORD_INCLUDE,
  PolicyCompileError,
  type DbClient,
  type KeyRow,
} from './compile';
export {
  enqueuePolicyPublish,
  enqueueKeyPublish,
  enqueueSubscriptionKeysPublish,
  enqueueConsumerKeysPublish,
  enqueueTenantDeletion,
  OutboxPayload,
  OUTBOX_NOTIFY_CHANNEL,
  UnknownEntityError,
  type OutboxKind,
} from './outbox';
export { writePolicySnapshot, writeKeyRecord, removeTenantPolicy, type SnapshotWrite } from './redis-writer';
export {
  startOutboxRelay,
  RelayPausedError,
  type OutboxRelay,
  type OutboxRelayOptions,
  type DrainResult,
  type PublishingLogger,
} from './relay';
export { republishAll, type RepublishOptions, type RepublishResult } from './republish';
