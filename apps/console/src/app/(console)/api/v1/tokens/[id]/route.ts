import { v1 } from '@/server/console/api/instance';

export const dynamic = 'force-dynamic';
export const DELETE = v1.token.DELETE;
