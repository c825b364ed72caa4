// The publishing path: PostgreSQL → outbox → Redis → `tg:events`.
//  1. Inside the transaction that changes something the gateway sees, call an enqueue* writer
//     (policy: APIs/routes/targets/plans/domains; key: one key; subscription/consumer: its keys;
//     tenant deletion). It writes an outbox row and NOTIFYs relays at commit.
//  2. startOutboxRelay (run by apps/worker) claims due rows with FOR UPDATE SKIP LOCKED, compiles
//     the *current* state under a per-entity advisory lock, writes Redis (snapshot by version
//     compare-and-set, key record, or removal), announces it, and marks the rows published.
//  3. republishAll rebuilds Redis from PostgreSQL (CLI: `npm run publish:all`).
export {
  compileTenantPolicy,
  compileTenantPolicies,
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
export {
  writePolicySnapshot,
  writePolicySnapshots,
  queuePolicyChange,
  writeKeyRecord,
  removeTenantPolicy,
  queueKeyRecordWrite,
  EXPIRED_KEY_RECORD_GRACE_MS,
  type SnapshotWrite,
} from './redis-writer';
export { startOutboxRelay, RelayPausedError, type OutboxRelay, type OutboxRelayOptions, type DrainResult } from './relay';
export type { PublishingLogger } from './entities';
export { republishAll, type RepublishOptions, type RepublishResult } from './republish';
export {
  createRestoreWatch,
  markPublished,
  publishedMarker,
  type RestoreWatch,
  type RestoreCheck,
  type RestoreWatchOptions,
} from './restore-watch';
export { restoreQuotaCounters, type QuotaRestoreResult } from './quota-restore';
