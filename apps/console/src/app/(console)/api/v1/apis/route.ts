import { v1 } from '@/server/console/api/instance';

export const dynamic = 'force-dynamic';
export const GET = v1.apis.GET;
export const POST = v1.apis.POST;
