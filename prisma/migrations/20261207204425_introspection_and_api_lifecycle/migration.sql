-- AlterEnum
ALTER TYPE "AuthMode" ADD VALUE 'INTROSPECTION';

-- AlterTable
ALTER TABLE "Api" ADD COLUMN     "deprecatedAt" TIMESTAMP(3),
ADD COLUMN     "deprecationLink" TEXT,
ADD COLUMN     "introspectionConfig" JSONB,
ADD COLUMN     "sunsetAt" TIMESTAMP(3);
