import { v1 } from '@/server/console/api/instance';

export const dynamic = 'force-dynamic';
export const GET = v1.notFound;
export const POST = v1.notFound;
export const PUT = v1.notFound;
export const PATCH = v1.notFound;
export const DELETE = v1.notFound;
