export * from './event';
export {
  createUsageProducer,
  journalDirName,
  spoolFileName,
  USAGE_JOB_OPTIONS,
  type UsageProducer,
  type UsageProducerOptions,
  type UsageProducerStats,
  type UsageLogger,
} from './producer';
export { QUEUES } from '@tollgate/policy';
