import { v1 } from '@/server/console/api/instance';

export const dynamic = 'force-dynamic';
export const GET = v1.api.GET;
export const PATCH = v1.api.PATCH;
export const DELETE = v1.api.DELETE;
