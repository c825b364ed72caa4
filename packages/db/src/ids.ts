import { ulid } from 'ulid';

/** Type prefixes of every id people see; one list so the same prefix never names two things. */
export const ID_PREFIXES = {
  tenant: 'ten',
  user: 'usr',
  membership: 'mem',
  invitation: 'inv',
  accessToken: 'tok',
  api: 'api',
  route: 'rte',
  target: 'tgt',
  plan: 'pln',
  consumer: 'con',
  subscription: 'sub',
  planChange: 'spc',
  key: 'key',
  ledger: 'led',
  invoice: 'in',
  audit: 'aud',
  email: 'eml',
  reset: 'rst',
} as const;
export type IdPrefix = keyof typeof ID_PREFIXES;

export function newId(kind: IdPrefix): string {
  return `${ID_PREFIXES[kind]}_${ulid().toLowerCase()}`;
}
