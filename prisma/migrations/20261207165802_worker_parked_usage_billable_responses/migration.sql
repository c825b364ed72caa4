-- CreateEnum
CREATE TYPE "BillableResponses" AS ENUM ('UPSTREAM_ANSWERED', 'SUCCESS_ONLY');

-- AlterTable
ALTER TABLE "Plan" ADD COLUMN     "billableResponses" "BillableResponses" NOT NULL DEFAULT 'UPSTREAM_ANSWERED';

-- CreateTable
CREATE TABLE "ParkedUsage" (
    "id" TEXT NOT NULL,
    "batchId" TEXT NOT NULL,
    "eventId" TEXT,
    "tenantId" TEXT,
    "reason" TEXT NOT NULL,
    "errorCode" TEXT NOT NULL,
    "error" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "replayedAt" TIMESTAMP(3),

    CONSTRAINT "ParkedUsage_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "ParkedUsage_replayedAt_createdAt_idx" ON "ParkedUsage"("replayedAt", "createdAt");
