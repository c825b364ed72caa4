import type { Db } from '@tollgate/db';
import type { ErrorCode } from '@tollgate/policy';

export const ROLES = ['OWNER', 'ADMIN', 'DEVELOPER', 'VIEWER'] as const;
export type Role = (typeof ROLES)[number];

const RANK: Record<Role, number> = { OWNER: 4, ADMIN: 3, DEVELOPER: 2, VIEWER: 1 };

export type Actor = { type: 'user' | 'token'; id: string; label?: string };

/** Everything a service needs to act for one tenant; built by the session or the access token. */
export type ServiceContext = {
  db: Db;
  tenantId: string;
  actor: Actor;
  role: Role;
  ip?: string | null;
};

/** An expected failure: maps onto the shared error envelope; `fields` names bad form inputs. */
export class ServiceError extends Error {
  constructor(
    public readonly code: ErrorCode,
    message: string,
    public readonly fields?: Record<string, string>,
    /** For 'rate_limited': when to try again (the Retry-After of the answer). */
    public readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'ServiceError';
  }
}

export const notFound = (what: string) => new ServiceError('not_found', `${what} not found`);

export function roleAtLeast(role: Role, min: Role): boolean {
  return RANK[role] >= RANK[min];
}

/**
 * The one authorization guard. Every service that reads or changes tenant data calls it first,
 * so the UI, server actions and the REST API can't disagree about who may do what.
 */
export function requireRole(ctx: ServiceContext, min: Role): void {
  if (!roleAtLeast(ctx.role, min)) {
    throw new ServiceError('forbidden', `this needs the ${min.toLowerCase()} role or higher; you are ${ctx.role.toLowerCase()}`);
  }
}

/** What each role may do; pages use it to hide controls, services enforce it. */
export const PERMISSIONS = {
  read: 'VIEWER',
  manageApis: 'DEVELOPER',
  manageKeys: 'DEVELOPER',
  managePlans: 'ADMIN',
  manageConsumers: 'ADMIN',
  manageTokens: 'ADMIN',
  manageMembers: 'ADMIN',
  /** Workspace settings an admin may change (developer approval); the rest need manageTenant. */
  manageSettings: 'ADMIN',
  manageTenant: 'OWNER',
} as const satisfies Record<string, Role>;
export type Permission = keyof typeof PERMISSIONS;

export function can(role: Role, permission: Permission): boolean {
  return roleAtLeast(role, PERMISSIONS[permission]);
}

export function requirePermission(ctx: ServiceContext, permission: Permission): void {
  requireRole(ctx, PERMISSIONS[permission]);
}
