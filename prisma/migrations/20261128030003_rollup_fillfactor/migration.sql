-- Rollup and ledger rows are updated in place by every usage batch. Leaving 30% of each page
-- free lets PostgreSQL make those updates HOT (no index writes, no index bloat).
-- Storage parameters only: the Prisma schema is unchanged.
ALTER TABLE "UsageRollup" SET (fillfactor = 70);
ALTER TABLE "LedgerLine" SET (fillfactor = 70);
