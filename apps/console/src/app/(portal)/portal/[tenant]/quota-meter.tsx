import Link from 'next/link';
import { formatNumber } from '@/components/ui';
import type { QuotaLevel } from '@/server/portal/subscriptions';

const TONE: Record<QuotaLevel, string> = {
  ok: 'bg-emerald-600',
  warning: 'bg-amber-500',
  exhausted: 'bg-red-600',
  unlimited: 'bg-emerald-600',
};

/** This period's use of the plan's quota; a warning at 80% and an alert at 100%. */
export function QuotaMeter({
  used,
  quota,
  level,
  hardCap,
  upgradeHref,
}: {
  used: number;
  quota: number | null;
  level: QuotaLevel;
  hardCap: boolean;
  upgradeHref: string;
}) {
  const pct = quota ? Math.min(100, Math.round((used / quota) * 100)) : 0;
  return (
    <div data-testid="quota-meter" data-level={level}>
      <p className="text-sm text-slate-700">
        <span className="font-semibold text-slate-900">{formatNumber(used)}</span>
        {quota === null
          ? ' billable requests this period (no quota)'
          : ` of ${formatNumber(quota)} billable requests this period (${pct}%)`}
      </p>
      {quota !== null ? (
        <div
          role="meter"
          aria-label="Quota used"
          aria-valuemin={0}
          aria-valuemax={quota}
          aria-valuenow={Math.min(used, quota)}
          className="mt-2 h-3 w-full overflow-hidden rounded-full bg-slate-200"
        >
          <div className={`h-full ${TONE[level]}`} style={{ width: `${pct}%` }} />
        </div>
      ) : null}
      {level === 'warning' ? (
        <p role="status" className="mt-2 text-sm text-amber-900">
          You've used over 80% of this month's quota.{' '}
          <Link href={upgradeHref} className="font-medium underline">
            Upgrade
          </Link>{' '}
          to avoid interruptions.
        </p>
      ) : null}
      {level === 'exhausted' ? (
        <p role="alert" className="mt-2 text-sm text-red-800">
          {hardCap
            ? "You've used all of this month's quota: calls get 429 until the period resets. "
            : "You're past this month's quota; extra calls are billed as overage. "}
          <Link href={upgradeHref} className="font-medium underline">
            Upgrade your plan
          </Link>
        </p>
      ) : null}
    </div>
  );
}
