import { tenantSession } from '@/server/console/auth';
import { can } from '@/server/shared/context';
import { listMembers } from '@/server/console/members';
import { listAccessTokens } from '@/server/console/tokens';
import { getTenant } from '@/server/console/tenant';
import { ActionForm, Checkbox, Field, Select } from '@/components/forms';
import { Badge, Card, formatDate, PageHeader, Table, Td } from '@/components/ui';
import { changeRoleAction, inviteMemberAction, removeMemberAction, revokeInvitationAction } from '../_actions/members';
import { createTokenAction, revokeTokenAction } from '../_actions/tokens';
import { updateTenantAction } from '../_actions/settings';

const ROLE_OPTIONS = [
  { value: 'VIEWER', label: 'Viewer: read only' },
  { value: 'DEVELOPER', label: 'Developer: APIs, routes and keys' },
  { value: 'ADMIN', label: 'Admin: plus plans, consumers, members, tokens' },
  { value: 'OWNER', label: 'Owner: everything, including workspace settings' },
];

export default async function SettingsPage({ params }: { params: Promise<{ tenant: string }> }) {
  const { tenant: slug } = await params;
  const { ctx, role, user } = await tenantSession(slug);
  const [tenant, members] = await Promise.all([getTenant(ctx), listMembers(ctx)]);
  const canTokens = can(role, 'manageTokens');
  const canMembers = can(role, 'manageMembers');
  const tokens = canTokens ? await listAccessTokens(ctx) : [];
  const roleOptions = role === 'OWNER' ? ROLE_OPTIONS : ROLE_OPTIONS.filter((r) => r.value !== 'OWNER');
  return (
    <>
      <PageHeader
        title="Settings"
        description="Workspace, team and admin API access."
        actions={
          <a href={`/portal/${tenant.slug}`} className="text-sm font-medium text-brand-700 underline">
            View portal
          </a>
        }
      />
      <div className="space-y-6">
        <Card title="Workspace">
          {can(role, 'manageTenant') ? (
            <ActionForm action={updateTenantAction.bind(null, slug)} submitLabel="Save settings">
              <Field name="name" label="Workspace name" defaultValue={tenant.name} required />
              <Checkbox
                name="allowPrivateTargets"
                label="Allow upstream targets on private networks"
                defaultChecked={tenant.allowPrivateTargets}
                hint="Only for self-hosted installs: lets APIs forward to 10.x, 192.168.x, localhost and similar addresses. Cloud metadata addresses stay blocked."
              />
              <Checkbox
                name="requireDeveloperApproval"
                label="Approve portal developers before they get keys"
                defaultChecked={tenant.requireDeveloperApproval}
                hint="Your portal is open to everyone: anyone can read the public APIs and pricing. Off: developers who sign up get keys at once. On: they wait until you approve them under Consumers."
              />
              <Field
                name="portalHost"
                label="Developer portal host"
                defaultValue={tenant.portalHost ?? ''}
                placeholder="developers.example.com"
                hint={`Serve your portal at the root of your own host: point its DNS at this console, then enter it here. Empty = only /portal/${tenant.slug}.`}
              />
            </ActionForm>
          ) : (
            <p className="text-sm text-slate-600">Only owners can change workspace settings.</p>
          )}
        </Card>
        <Card title="Members" description="Who can use this console, and what they may do.">
          <Table head={['Member', 'Role', 'Last login', '']} caption="Members">
            {members.members.map((m) => (
              <tr key={m.id}>
                <Td>
                  <span className="font-medium">{m.user.name}</span>
                  {m.user.id === user.id ? <span className="ml-2 text-xs text-slate-500">(you)</span> : null}
                  <div className="text-xs text-slate-500">{m.user.email}</div>
                </Td>
                <Td>
                  <Badge tone={m.role === 'OWNER' ? 'blue' : 'gray'}>{m.role.toLowerCase()}</Badge>
                </Td>
                <Td className="text-xs">{formatDate(m.user.lastLoginAt)}</Td>
                <Td>
                  {canMembers && (m.role !== 'OWNER' || role === 'OWNER') ? (
                    <div className="flex flex-wrap items-end gap-2">
                      <ActionForm
                        inline
                        action={changeRoleAction.bind(null, slug, m.id)}
                        submitLabel="Change"
                        variant="secondary"
                        idPrefix={`${m.id}-`}
                      >
                        <Select name="role" label="Role" options={roleOptions} defaultValue={m.role} />
                      </ActionForm>
                      {m.user.id !== user.id ? (
                        <ActionForm
                          inline
                          action={removeMemberAction.bind(null, slug, m.id)}
                          submitLabel="Remove"
                          variant="ghost"
                          confirm={`Remove ${m.user.email}?`}
                        />
                      ) : null}
                    </div>
                  ) : null}
                </Td>
              </tr>
            ))}
          </Table>
          {members.invitations.length ? (
            <div className="mt-4">
              <h3 className="text-sm font-semibold">Pending invitations</h3>
              <ul className="mt-2 space-y-1 text-sm">
                {members.invitations.map((i) => (
                  <li key={i.id} className="flex items-center gap-3">
                    {i.email} <Badge>{i.role.toLowerCase()}</Badge>{' '}
                    <span className="text-xs text-slate-500">expires {formatDate(i.expiresAt)}</span>
                    {canMembers ? (
                      <ActionForm inline action={revokeInvitationAction.bind(null, slug, i.id)} submitLabel="Revoke" variant="ghost" />
                    ) : null}
                  </li>
                ))}
              </ul>
            </div>
          ) : null}
          {canMembers ? (
            <div className="mt-6 border-t border-slate-200 pt-4">
              <h3 className="mb-3 text-sm font-semibold">Invite someone</h3>
              <ActionForm action={inviteMemberAction.bind(null, slug)} submitLabel="Send invitation" idPrefix="invite-">
                <div className="grid gap-4 md:grid-cols-2">
                  <Field name="email" label="E-mail" type="email" required />
                  <Select name="role" label="Role" options={roleOptions} defaultValue="DEVELOPER" />
                </div>
              </ActionForm>
            </div>
          ) : null}
        </Card>
        {canTokens ? (
          <Card
            title="Admin API tokens"
            description={
              <>
                Tokens for the REST API at <code className="font-mono">/api/v1</code> (reference:{' '}
                <a className="text-brand-700 underline" href="/api/v1/openapi.json">
                  openapi.json
                </a>
                ). Stored hashed; shown once.
              </>
            }
          >
            {tokens.length ? (
              <Table head={['Name', 'Role', 'Prefix', 'Last used', 'Expires', '']} caption="Access tokens">
                {tokens.map((t) => (
                  <tr key={t.id}>
                    <Td>{t.name}</Td>
                    <Td>{t.role.toLowerCase()}</Td>
                    <Td className="font-mono text-xs">{t.prefix}…</Td>
                    <Td className="text-xs">{formatDate(t.lastUsedAt)}</Td>
                    <Td className="text-xs">{formatDate(t.expiresAt)}</Td>
                    <Td>
                      {t.revokedAt ? (
                        <Badge tone="red">revoked</Badge>
                      ) : (
                        <ActionForm
                          inline
                          action={revokeTokenAction.bind(null, slug, t.id)}
                          submitLabel="Revoke"
                          variant="ghost"
                          confirm={`Revoke token ${t.name}?`}
                        />
                      )}
                    </Td>
                  </tr>
                ))}
              </Table>
            ) : (
              <p className="text-sm text-slate-600">No tokens yet. Create one to automate Tollgate from CI or scripts.</p>
            )}
            <div className="mt-6 border-t border-slate-200 pt-4">
              <ActionForm action={createTokenAction.bind(null, slug)} submitLabel="Create token" idPrefix="token-">
                <div className="grid gap-4 md:grid-cols-3">
                  <Field name="name" label="Name" required placeholder="CI deploys" />
                  <Select name="role" label="Role" options={ROLE_OPTIONS.filter((r) => r.value !== 'OWNER')} defaultValue="DEVELOPER" />
                  <Field name="expiresInDays" label="Expires in (days)" type="number" defaultValue={90} hint="Empty = never" />
                </div>
              </ActionForm>
            </div>
          </Card>
        ) : null}
      </div>
    </>
  );
}
