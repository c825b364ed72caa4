-- AlterTable
ALTER TABLE "Api" ADD COLUMN     "circuitBreaker" JSONB,
ADD COLUMN     "cors" JSONB,
ADD COLUMN     "ipRules" JSONB,
ADD COLUMN     "perIpRateLimit" JSONB;

-- AlterTable
ALTER TABLE "Route" ADD COLUMN     "requiredScopes" TEXT[] DEFAULT ARRAY[]::TEXT[],
ADD COLUMN     "sharedRateLimit" JSONB;

-- AlterTable
ALTER TABLE "Plan" ADD COLUMN     "ipRules" JSONB;

-- AlterTable
ALTER TABLE "ApiKey" ADD COLUMN     "ipRules" JSONB;
