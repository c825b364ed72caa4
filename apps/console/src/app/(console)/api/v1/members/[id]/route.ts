import { v1 } from '@/server/console/api/instance';

export const dynamic = 'force-dynamic';
export const PATCH = v1.member.PATCH;
export const DELETE = v1.member.DELETE;
