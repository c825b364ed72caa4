import type { IncomingHttpHeaders } from 'node:http';
import { hashApiKey, parseApiKey } from '@tollgate/keys';
import { SERVING_SUBSCRIPTION_STATES, type KeyRecord, type PlanPolicy } from '@tollgate/policy';
import type { CompiledApi, TenantRuntime } from '../routing/route-table';
import type { KeyLookup } from './key-cache';

export const QUERY_KEY_PARAM = 'api_key';

export type KeySource = 'authorization' | 'x-api-key' | 'query';

export type ExtractedKey = { key: string; source: KeySource } | null;

/** Finds the presented key: `Authorization: Bearer`, then `X-API-Key`, then the query if the API allows. */
export function extractApiKey(headers: IncomingHttpHeaders, query: string, allowQuery: boolean): ExtractedKey {
  const auth = headers.authorization;
  if (auth !== undefined) {
    // "Bearer" is case-insensitive (RFC 9110 §11.1); anything else isn't ours.
    if (auth.length > 7 && auth.charCodeAt(6) === 32 && auth.slice(0, 6).toLowerCase() === 'bearer') {
      return { key: auth.slice(7).trim(), source: 'authorization' };
    }
  }
  const header = headers['x-api-key'];
  if (typeof header === 'string' && header !== '') return { key: header.trim(), source: 'x-api-key' };
  if (allowQuery && query !== '') {
    const value = new URLSearchParams(query).get(QUERY_KEY_PARAM);
    if (value) return { key: value, source: 'query' };
  }
  return null;
}

export type Identity = {
  record: KeyRecord;
  plan: PlanPolicy | null;
  keyHash: string;
};

export type AuthFailure = {
  status: 401 | 403 | 503;
  code: 'unauthorized' | 'invalid_key' | 'forbidden' | 'unavailable';
  message: string;
};

export type AuthResult = { ok: true; identity: Identity } | { ok: false; failure: AuthFailure };

const invalidKey: AuthResult = { ok: false, failure: { status: 401, code: 'invalid_key', message: 'the API key is not valid' } };

/** Format and checksum first: a typo or a scanner's guess costs no Redis lookup. */
export function checkKeyFormat(key: string): { ok: true; hash: string } | { ok: false; result: AuthResult } {
  const parsed = parseApiKey(key);
  if (!parsed.ok) return { ok: false, result: invalidKey };
  return { ok: true, hash: hashApiKey(key) };
}

/** Status, expiry, tenant, allowed APIs, plan and subscription state: values, not throws. */
export function authorizeRecord(lookup: KeyLookup, hash: string, tenant: TenantRuntime, api: CompiledApi, now: number): AuthResult {
  if (lookup.kind === 'unavailable') {
    return { ok: false, failure: { status: 503, code: 'unavailable', message: 'the key store is unreachable; try again shortly' } };
  }
  if (lookup.kind === 'missing') return invalidKey;
  const record = lookup.record;
  // A key from another tenant is treated as unknown here: no cross-tenant oracle.
  if (record.tenantId !== tenant.tenantId) return invalidKey;
  if (record.status !== 'active')
    return { ok: false, failure: { status: 401, code: 'invalid_key', message: 'the API key has been revoked' } };
  if (record.expiresAt !== null && record.expiresAt <= now) {
    return { ok: false, failure: { status: 401, code: 'invalid_key', message: 'the API key has expired' } };
  }
  if (!SERVING_SUBSCRIPTION_STATES.has(record.subscriptionStatus)) {
    return { ok: false, failure: { status: 403, code: 'forbidden', message: 'the subscription for this key is not active' } };
  }
  let plan: PlanPolicy | null = null;
  if (record.planId !== null) {
    plan = tenant.plans.get(record.planId) ?? null;
    if (!plan) return { ok: false, failure: { status: 403, code: 'forbidden', message: "the key's plan is not available" } };
  }
  if (record.apiIds.length > 0) {
    if (!record.apiIds.includes(api.id))
      return { ok: false, failure: { status: 403, code: 'forbidden', message: 'this key may not call this API' } };
  } else if (plan && !plan.apiIds.includes(api.id)) {
    return { ok: false, failure: { status: 403, code: 'forbidden', message: "this key's plan does not include this API" } };
  }
  return { ok: true, identity: { record, plan, keyHash: hash } };
}
