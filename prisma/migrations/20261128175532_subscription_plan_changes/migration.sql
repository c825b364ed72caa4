-- CreateTable
CREATE TABLE "SubscriptionPlanChange" (
    "id" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "subscriptionId" TEXT NOT NULL,
    "fromPlanId" TEXT NOT NULL,
    "toPlanId" TEXT NOT NULL,
    "changedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "SubscriptionPlanChange_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "SubscriptionPlanChange_subscriptionId_changedAt_idx" ON "SubscriptionPlanChange"("subscriptionId", "changedAt");

-- CreateIndex
CREATE INDEX "SubscriptionPlanChange_fromPlanId_idx" ON "SubscriptionPlanChange"("fromPlanId");

-- CreateIndex
CREATE INDEX "SubscriptionPlanChange_toPlanId_idx" ON "SubscriptionPlanChange"("toPlanId");

-- AddForeignKey
ALTER TABLE "SubscriptionPlanChange" ADD CONSTRAINT "SubscriptionPlanChange_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "SubscriptionPlanChange" ADD CONSTRAINT "SubscriptionPlanChange_subscriptionId_fkey" FOREIGN KEY ("subscriptionId") REFERENCES "Subscription"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "SubscriptionPlanChange" ADD CONSTRAINT "SubscriptionPlanChange_fromPlanId_fkey" FOREIGN KEY ("fromPlanId") REFERENCES "Plan"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "SubscriptionPlanChange" ADD CONSTRAINT "SubscriptionPlanChange_toPlanId_fkey" FOREIGN KEY ("toPlanId") REFERENCES "Plan"("id") ON DELETE CASCADE ON UPDATE CASCADE;
