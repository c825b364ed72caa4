import { Checkbox, Field, FieldError, Select, TextArea } from './forms';
import { IpRulesFields, type IpRulesValue } from './edge-fields';

type PlanDefaults = {
  name?: string;
  slug?: string;
  description?: string;
  public?: boolean;
  rateLimit?: number | null;
  rateWindowSeconds?: number;
  rateAlgorithm?: string;
  monthlyQuota?: number | null;
  quotaMode?: string;
  flatFeeMinor?: number;
  includedRequests?: number;
  overageUnitPriceMinor?: number;
  overageBlockSize?: number;
  trialDays?: number;
  apiIds?: string[];
  tiers?: unknown;
  ipRules?: unknown;
};

function tiersText(tiers: unknown): string {
  if (!Array.isArray(tiers)) return '';
  return tiers
    .map(
      (t: { upTo: number | null; unitPriceMinor: number }) => `${t.upTo === null ? '*' : t.upTo} @ ${(t.unitPriceMinor / 100).toFixed(2)}`,
    )
    .join('\n');
}

const money = (minor?: number) => (minor ? (minor / 100).toFixed(2) : '');

export function PlanFields({ d = {}, apis, currency }: { d?: PlanDefaults; apis: Array<{ id: string; name: string }>; currency: string }) {
  return (
    <>
      <div className="grid gap-4 md:grid-cols-2">
        <Field name="name" label="Name" required defaultValue={d.name} maxLength={80} placeholder="Pro" />
        <Field name="slug" label="Slug" required defaultValue={d.slug} maxLength={48} placeholder="pro" />
      </div>
      <TextArea name="description" label="Description" rows={2} defaultValue={d.description} />
      <fieldset className="rounded-md border border-slate-200 p-4">
        <legend className="px-1 text-sm font-medium text-slate-800">Rate limit</legend>
        <div className="grid gap-4 md:grid-cols-3">
          <Field name="rateLimit" label="Requests" type="number" defaultValue={d.rateLimit} hint="Empty = no rate limit" />
          <Field name="rateWindowSeconds" label="Per (seconds)" type="number" defaultValue={d.rateWindowSeconds ?? 1} />
          <Select
            name="rateAlgorithm"
            label="Algorithm"
            defaultValue={d.rateAlgorithm ?? 'SLIDING_WINDOW'}
            options={[
              { value: 'SLIDING_WINDOW', label: 'Sliding window' },
              { value: 'GCRA', label: 'Token bucket (GCRA)' },
              { value: 'FIXED_WINDOW', label: 'Fixed window' },
            ]}
          />
        </div>
      </fieldset>
      <fieldset className="rounded-md border border-slate-200 p-4">
        <legend className="px-1 text-sm font-medium text-slate-800">Monthly quota</legend>
        <div className="grid gap-4 md:grid-cols-2">
          <Field name="monthlyQuota" label="Requests per month" type="number" defaultValue={d.monthlyQuota} hint="Empty = unlimited" />
          <Select
            name="quotaMode"
            label="When the quota is used up"
            defaultValue={d.quotaMode ?? 'HARD_CAP'}
            options={[
              { value: 'HARD_CAP', label: 'Stop (429 until next period)' },
              { value: 'OVERAGE', label: 'Keep serving and bill overage' },
            ]}
          />
        </div>
      </fieldset>
      <fieldset className="rounded-md border border-slate-200 p-4">
        <legend className="px-1 text-sm font-medium text-slate-800">Price ({currency.toUpperCase()})</legend>
        <div className="grid gap-4 md:grid-cols-4">
          <Field name="flatFee" label="Monthly fee" defaultValue={money(d.flatFeeMinor)} placeholder="0.00" errorKey="flatFeeMinor" />
          <Field name="includedRequests" label="Included requests" type="number" defaultValue={d.includedRequests ?? 0} />
          <Field
            name="overagePrice"
            label="Overage price"
            defaultValue={money(d.overageUnitPriceMinor)}
            placeholder="0.00"
            errorKey="overageUnitPriceMinor"
          />
          <Field name="overageBlockSize" label="…per N requests" type="number" defaultValue={d.overageBlockSize ?? 1} />
        </div>
        <div className="mt-4 grid gap-4 md:grid-cols-4">
          <Field name="trialDays" label="Trial days" type="number" defaultValue={d.trialDays ?? 0} />
          <div className="md:col-span-3">
            <TextArea
              name="tiers"
              label="Graduated tiers (optional)"
              rows={3}
              defaultValue={tiersText(d.tiers)}
              hint="One tier per line, “up to N requests @ unit price”, the last one open-ended: e.g. 10000 @ 0.02 then * @ 0.01 (whole cents). Replaces the overage price."
            />
          </div>
        </div>
      </fieldset>
      <fieldset>
        <legend className="text-sm font-medium text-slate-800">APIs this plan grants</legend>
        {apis.length === 0 ? (
          <p className="mt-1 text-sm text-slate-600">No APIs yet: register one first, then grant it here.</p>
        ) : (
          <div className="mt-2 grid gap-2 md:grid-cols-2">
            {apis.map((a) => (
              <Checkbox
                key={a.id}
                name="apiIds"
                value={a.id}
                label={a.name}
                defaultChecked={d.apiIds ? d.apiIds.includes(a.id) : apis.length === 1}
              />
            ))}
          </div>
        )}
        <FieldError name="apiIds" />
      </fieldset>
      <fieldset className="rounded-md border border-slate-200 p-4">
        <legend className="px-1 text-sm font-medium text-slate-800">Client addresses of this plan&apos;s keys</legend>
        <IpRulesFields d={d.ipRules as IpRulesValue} />
      </fieldset>
      <Checkbox name="public" label="Public: show this plan on the portal's pricing page" defaultChecked={d.public ?? true} />
    </>
  );
}
