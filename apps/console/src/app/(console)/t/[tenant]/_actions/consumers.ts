'use server';

// Server actions for consumers.
import { revalidatePath } from 'next/cache';
import { redirect } from 'next/navigation';
import { actionSession } from '@/server/console/auth';
import { runAction, str, type FormState } from '@/server/shared/action-state';
import { createConsumer, updateConsumer } from '@/server/console/consumers';

// Every action: same-origin check and membership first (actionSession), then the service,
// which applies the role guard. Nothing here decides who may do what.

export async function createConsumerAction(slug: string, prev: FormState, fd: FormData): Promise<FormState> {
  let id = '';
  const res = await runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    id = (await createConsumer(ctx, { email: str(fd, 'email'), name: str(fd, 'name') })).id;
  });
  if (res.ok) redirect(`/t/${slug}/consumers/${id}?created=1`);
  return res;
}

export async function setConsumerStatusAction(
  slug: string,
  consumerId: string,
  status: string,
  prev: FormState,
  fd: FormData,
): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    await updateConsumer(ctx, consumerId, { status });
    revalidatePath(`/t/${slug}/consumers`, 'layout');
    return { message: `Consumer ${status.toLowerCase()}.` };
  });
}
