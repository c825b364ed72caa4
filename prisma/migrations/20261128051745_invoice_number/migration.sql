-- AlterTable
ALTER TABLE "Invoice" ADD COLUMN     "number" TEXT;
