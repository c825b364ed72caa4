import { v1 } from '@/server/console/api/instance';

export const dynamic = 'force-dynamic';
export const GET = v1.tokens.GET;
export const POST = v1.tokens.POST;
