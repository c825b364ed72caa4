-- AlterTable
ALTER TABLE "UpstreamTarget" ADD COLUMN     "sandbox" BOOLEAN NOT NULL DEFAULT false;
