import { v1 } from '@/server/console/api/instance';

export const dynamic = 'force-dynamic';
export const POST = v1.subjectBindings.POST;
