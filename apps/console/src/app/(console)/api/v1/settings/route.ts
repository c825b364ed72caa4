import { v1 } from '@/server/console/api/instance';

export const dynamic = 'force-dynamic';
export const GET = v1.settings.GET;
export const PATCH = v1.settings.PATCH;
