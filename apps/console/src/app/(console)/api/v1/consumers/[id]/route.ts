import { v1 } from '@/server/console/api/instance';

export const dynamic = 'force-dynamic';
export const GET = v1.consumer.GET;
export const PATCH = v1.consumer.PATCH;
export const DELETE = v1.consumer.DELETE;
