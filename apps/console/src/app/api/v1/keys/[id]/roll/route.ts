import { v1 } from '@/server/api/instance';

export const dynamic = 'force-dynamic';
export const POST = v1.keyRoll.POST;
