import { v1 } from '@/server/console/api/instance';

export const dynamic = 'force-dynamic';
export const GET = v1.apiRoutes.GET;
export const POST = v1.apiRoutes.POST;
