'use server';

// Server actions for workspace settings.
import { revalidatePath } from 'next/cache';
import { actionSession } from '@/server/console/auth';
import { bool, runAction, str, type FormState } from '@/server/shared/action-state';
import { updateTenant } from '@/server/console/tenant';
import { consoleHostname, portalHostMap } from '@/server/shared/portal-host-map';

// Every action: same-origin check and membership first (actionSession), then the service,
// which applies the role guard. Nothing here decides who may do what.

export async function updateTenantAction(slug: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    await updateTenant(
      ctx,
      {
        name: str(fd, 'name'),
        allowPrivateTargets: bool(fd, 'allowPrivateTargets'),
        requireDeveloperApproval: bool(fd, 'requireDeveloperApproval'),
        portalHost: str(fd, 'portalHost') ?? '',
      },
      { reservedHosts: [consoleHostname()] },
    );
    // This process serves the new host at once; other console instances within the map's TTL.
    portalHostMap().invalidate();
    revalidatePath(`/t/${slug}`, 'layout');
    return { message: 'Settings saved.' };
  });
}
