import { v1 } from '@/server/console/api/instance';

export const dynamic = 'force-dynamic';
export const GET = v1.plan.GET;
export const PATCH = v1.plan.PATCH;
export const DELETE = v1.plan.DELETE;
