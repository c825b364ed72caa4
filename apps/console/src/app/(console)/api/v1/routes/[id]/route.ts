import { v1 } from '@/server/console/api/instance';

export const dynamic = 'force-dynamic';
export const GET = v1.route.GET;
export const PATCH = v1.route.PATCH;
export const DELETE = v1.route.DELETE;
