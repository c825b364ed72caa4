import { v1 } from '@/server/console/api/instance';

export const dynamic = 'force-dynamic';
export const GET = v1.key.GET;
export const PATCH = v1.key.PATCH;
export const DELETE = v1.key.DELETE;
