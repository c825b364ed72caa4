import { tenantSession } from '@/server/console/auth';
import { listConsumers } from '@/server/console/consumers';
import { can } from '@/server/shared/context';
import Link from 'next/link';
import { ActionForm, Field } from '@/components/forms';
import { Badge, Card, EmptyState, formatDate, PageHeader, Pager, Table, Td } from '@/components/ui';
import { createConsumerAction, setConsumerStatusAction } from '../_actions/consumers';

const tone = { ACTIVE: 'green', PENDING: 'amber', SUSPENDED: 'red' } as const;

export default async function ConsumersPage({
  params,
  searchParams,
}: {
  params: Promise<{ tenant: string }>;
  searchParams: Promise<Record<string, string | undefined>>;
}) {
  const { tenant: slug } = await params;
  const sp = await searchParams;
  const { ctx, role } = await tenantSession(slug);
  const page = await listConsumers(ctx, { cursor: sp.cursor, q: sp.q || undefined }).catch(() => listConsumers(ctx, {}));
  const canEdit = can(role, 'manageConsumers');
  const base = `/t/${slug}/consumers`;
  return (
    <>
      <PageHeader title="Consumers" description="Developers who signed up in your portal, their subscriptions and keys." />
      {canEdit ? (
        <details className="mb-6">
          <summary className="cursor-pointer text-sm font-medium text-brand-700">Add a consumer yourself</summary>
          <Card className="mt-3" description="For a partner or one of your own services: add them here, then issue keys from their page.">
            <ActionForm action={createConsumerAction.bind(null, slug)} submitLabel="Add consumer" idPrefix="consumer-">
              <div className="grid gap-4 md:grid-cols-2">
                <Field name="name" label="Name" required maxLength={100} placeholder="Billing service" />
                <Field name="email" label="E-mail" type="email" required maxLength={254} placeholder="billing@example.com" />
              </div>
            </ActionForm>
          </Card>
        </details>
      ) : null}
      <form className="mb-4 flex max-w-sm gap-2" role="search">
        <label htmlFor="q" className="sr-only">
          Search consumers
        </label>
        <input
          id="q"
          name="q"
          defaultValue={sp.q}
          placeholder="Search by e-mail or name"
          className="block w-full rounded-md border border-slate-300 px-3 py-2 text-sm"
        />
      </form>
      {page.data.length === 0 ? (
        <EmptyState
          title={sp.q ? 'No consumers match' : 'No consumers yet'}
          body={
            sp.q
              ? 'Try another search.'
              : 'Developers appear here when they sign up in your developer portal. Make an API and a plan public to open it.'
          }
        />
      ) : (
        <Table head={['Consumer', 'Subscriptions', 'Keys', 'Status', 'Joined', '']} caption="Consumers">
          {page.data.map((c) => (
            <tr key={c.id}>
              <Td>
                <Link href={`${base}/${c.id}`} className="font-medium text-brand-700 hover:underline">
                  {c.name}
                </Link>
                <div className="text-xs text-slate-500">{c.email}</div>
              </Td>
              <Td>
                {c.subscriptions.length === 0
                  ? '—'
                  : c.subscriptions.map((s) => (
                      <div key={s.id} className="text-xs">
                        {s.plan.name} <span className="text-slate-500">({s.status.toLowerCase()})</span>
                      </div>
                    ))}
              </Td>
              <Td>{c._count.apiKeys}</Td>
              <Td>
                <Badge tone={tone[c.status]}>{c.status.toLowerCase()}</Badge>
              </Td>
              <Td>{formatDate(c.createdAt)}</Td>
              <Td>
                {canEdit ? (
                  c.status === 'SUSPENDED' ? (
                    <ActionForm
                      inline
                      action={setConsumerStatusAction.bind(null, slug, c.id, 'ACTIVE')}
                      submitLabel="Reactivate"
                      variant="ghost"
                    />
                  ) : (
                    <div className="flex gap-1">
                      {c.status === 'PENDING' ? (
                        <ActionForm
                          inline
                          action={setConsumerStatusAction.bind(null, slug, c.id, 'ACTIVE')}
                          submitLabel="Approve"
                          variant="ghost"
                        />
                      ) : null}
                      <ActionForm
                        inline
                        action={setConsumerStatusAction.bind(null, slug, c.id, 'SUSPENDED')}
                        submitLabel="Suspend"
                        variant="ghost"
                        confirm={`Suspend ${c.email}? Their keys stop working.`}
                      />
                    </div>
                  )
                ) : null}
              </Td>
            </tr>
          ))}
        </Table>
      )}
      <Pager nextHref={page.nextCursor ? `${base}?cursor=${page.nextCursor}` : null} />
    </>
  );
}
