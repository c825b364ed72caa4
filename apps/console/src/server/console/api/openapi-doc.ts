// The admin API's OpenAPI 3.1 document: paths, operations and their responses; the component
// schemas they refer to are in openapi-schemas.ts.
import { ref, schemas, str, ts } from './openapi-schemas';

const errors = (...codes: number[]) =>
  Object.fromEntries(
    codes.map((c) => [String(c), { description: ERROR_TEXT[c] ?? 'error', content: { 'application/json': { schema: ref('Error') } } }]),
  );
const ERROR_TEXT: Record<number, string> = {
  400: 'Malformed request (not JSON, wrong content type)',
  401: 'Missing, invalid, expired or revoked access token',
  403: "The token's role does not allow this",
  404: 'No such resource in this tenant',
  409: 'Conflicts with existing state',
  413: 'Body too large',
  422: 'Validation failed; `fields` names each bad input',
};
const ok = (status: number, schema: string, description = 'OK') => ({
  [String(status)]: { description, content: { 'application/json': { schema: ref(schema) } } },
});
const body = (schema: string) => ({ required: true, content: { 'application/json': { schema: ref(schema) } } });
const idParam = { name: 'id', in: 'path', required: true, schema: str };
const pageParams = [
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 25 } },
  { name: 'cursor', in: 'query', schema: str, description: 'nextCursor of the previous page' },
];

function crud(tag: string, one: string, create: string, update: string, deleteSchema = 'Deleted', deleteText = 'Deleted') {
  return {
    collection: {
      get: {
        tags: [tag],
        operationId: `list${one}s`,
        parameters: pageParams,
        responses: { ...ok(200, `${one}Page`), ...errors(401, 422) },
      },
      post: {
        tags: [tag],
        operationId: `create${one}`,
        requestBody: body(create),
        responses: { ...ok(201, one, 'Created'), ...errors(400, 401, 403, 409, 413, 422) },
      },
    },
    item: {
      parameters: [idParam],
      get: { tags: [tag], operationId: `get${one}`, responses: { ...ok(200, one), ...errors(401, 404) } },
      patch: {
        tags: [tag],
        operationId: `update${one}`,
        requestBody: body(update),
        responses: { ...ok(200, one), ...errors(400, 401, 403, 404, 409, 413, 422) },
      },
      delete: {
        tags: [tag],
        operationId: `delete${one}`,
        responses: { ...ok(200, deleteSchema, deleteText), ...errors(401, 403, 404, 409) },
      },
    },
  };
}

/** The admin API's OpenAPI 3.1 description, served at /api/v1/openapi.json. */
export function buildOpenApiDocument(serverUrl = 'http://localhost:3000') {
  const apis = crud('APIs', 'Api', 'CreateApi', 'UpdateApi');
  const plans = crud('Plans', 'Plan', 'CreatePlan', 'UpdatePlan', 'Deleted', 'Deleted, or archived when it has subscribers');
  const consumers = crud('Consumers', 'Consumer', 'CreateConsumer', 'UpdateConsumer');
  const keys = crud('Keys', 'Key', 'IssueKey', 'UpdateKey', 'Key', 'Revoked (keys are never deleted)');
  keys.collection.post.responses = {
    ...ok(201, 'IssuedKey', 'Issued; `secret` is shown only in this response'),
    ...errors(400, 401, 403, 404, 413, 422),
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Tollgate admin API',
      version: '1.0.0',
      description:
        'Automate a Tollgate workspace. Authenticate with an access token created in the console (Settings → Admin API tokens): `Authorization: Bearer tgat_…`. Every error is `{ "error": { "code", "message", "requestId" } }`. Lists are cursor-paginated: pass `nextCursor` back as `cursor`.',
    },
    servers: [{ url: `${serverUrl}/api/v1` }],
    security: [{ bearer: [] }],
    paths: {
      '/apis': apis.collection,
      '/apis/{id}': apis.item,
      '/apis/{id}/routes': {
        parameters: [idParam],
        get: { tags: ['Routes'], operationId: 'listRoutes', responses: { ...ok(200, 'RoutePage'), ...errors(401, 404) } },
        post: {
          tags: ['Routes'],
          operationId: 'createRoute',
          requestBody: body('CreateRoute'),
          responses: { ...ok(201, 'Route', 'Created'), ...errors(400, 401, 403, 404, 413, 422) },
        },
      },
      '/routes/{id}': {
        parameters: [idParam],
        get: { tags: ['Routes'], operationId: 'getRoute', responses: { ...ok(200, 'Route'), ...errors(401, 404) } },
        patch: {
          tags: ['Routes'],
          operationId: 'updateRoute',
          requestBody: body('UpdateRoute'),
          responses: { ...ok(200, 'Route'), ...errors(400, 401, 403, 404, 413, 422) },
        },
        delete: { tags: ['Routes'], operationId: 'deleteRoute', responses: { ...ok(200, 'Deleted'), ...errors(401, 403, 404) } },
      },
      '/plans': plans.collection,
      '/plans/{id}': plans.item,
      '/consumers': consumers.collection,
      '/consumers/{id}': consumers.item,
      '/keys': keys.collection,
      '/keys/{id}': keys.item,
      '/subject-bindings': {
        post: {
          tags: ['Keys'],
          operationId: 'bindSubject',
          description:
            "Binds a JWT subject or OAuth client (the value of the API's `consumerClaim`) to a consumer and plan, so its calls are limited, metered and billed like a key. The binding is a key without a secret (prefix `sub:`): update or revoke it through `/keys/{id}`.",
          requestBody: body('BindSubject'),
          responses: { ...ok(201, 'SubjectBinding', 'Bound'), ...errors(400, 401, 403, 404, 409, 413, 422) },
        },
      },
      '/keys/{id}/roll': {
        parameters: [idParam],
        post: {
          tags: ['Keys'],
          operationId: 'rollKey',
          description: 'Issues a replacement key; the old one keeps working for `graceSeconds` (0 = revoked now).',
          requestBody: { required: false, content: { 'application/json': { schema: ref('RollKey') } } },
          responses: { ...ok(201, 'RolledKey', 'Rolled'), ...errors(400, 401, 403, 404, 409, 422) },
        },
      },
      '/members': {
        get: {
          tags: ['Members'],
          operationId: 'listMembers',
          description: 'Members and pending invitations.',
          responses: { ...ok(200, 'MemberPage'), ...errors(401) },
        },
        post: {
          tags: ['Members'],
          operationId: 'inviteMember',
          description: 'Invites by e-mail. Only an owner can grant the owner role, so a token (at most admin) cannot.',
          requestBody: body('InviteMember'),
          responses: { ...ok(201, 'Invited', 'Invited'), ...errors(400, 401, 403, 409, 413, 422) },
        },
      },
      '/members/{id}': {
        parameters: [idParam],
        patch: {
          tags: ['Members'],
          operationId: 'changeMemberRole',
          description: "Only an owner changes an owner's role or grants the owner role; the last owner keeps it.",
          requestBody: body('ChangeMemberRole'),
          responses: { ...ok(200, 'RoleChanged'), ...errors(400, 401, 403, 404, 409, 413, 422) },
        },
        delete: {
          tags: ['Members'],
          operationId: 'removeMember',
          description: 'Only an owner removes an owner; the last owner cannot be removed.',
          responses: { ...ok(200, 'Deleted'), ...errors(401, 403, 404, 409) },
        },
      },
      '/tokens': {
        get: {
          tags: ['Access tokens'],
          operationId: 'listAccessTokens',
          responses: { ...ok(200, 'AccessTokenPage'), ...errors(401, 403) },
        },
        post: {
          tags: ['Access tokens'],
          operationId: 'createAccessToken',
          description: 'A token never gets more rights than its creator; the secret is returned only here, and only its hash is kept.',
          requestBody: body('CreateAccessToken'),
          responses: {
            ...ok(201, 'CreatedAccessToken', 'Created; `secret` is shown only in this response'),
            ...errors(400, 401, 403, 413, 422),
          },
        },
      },
      '/tokens/{id}': {
        parameters: [idParam],
        delete: {
          tags: ['Access tokens'],
          operationId: 'revokeAccessToken',
          description: 'Revokes at once; the row stays for the audit trail.',
          responses: { ...ok(200, 'RevokedAccessToken', 'Revoked'), ...errors(401, 403, 404) },
        },
      },
      '/settings': {
        get: { tags: ['Settings'], operationId: 'getSettings', responses: { ...ok(200, 'Settings'), ...errors(401) } },
        patch: {
          tags: ['Settings'],
          operationId: 'updateSettings',
          description:
            'An admin (so any token) may change `requireDeveloperApproval`; the name, the portal host, the currency and `allowPrivateTargets` need the owner role.',
          requestBody: body('UpdateSettings'),
          responses: { ...ok(200, 'Settings'), ...errors(400, 401, 403, 409, 413, 422) },
        },
      },
      '/usage': {
        get: {
          tags: ['Usage'],
          operationId: 'queryUsage',
          description:
            'Requests, status classes and latency percentiles over time from the usage rollups; granularity is chosen by range unless given.',
          parameters: [
            { name: 'range', in: 'query', schema: { enum: ['1h', '6h', '24h', '7d', '30d', '90d'] } },
            { name: 'from', in: 'query', schema: ts },
            { name: 'to', in: 'query', schema: ts },
            { name: 'granularity', in: 'query', schema: { enum: ['minute', 'hour', 'day'] } },
            { name: 'apiId', in: 'query', schema: str },
            { name: 'keyId', in: 'query', schema: str },
            { name: 'consumerId', in: 'query', schema: str },
            { name: 'status', in: 'query', schema: { enum: ['2xx', '3xx', '4xx', '5xx'] } },
          ],
          responses: { ...ok(200, 'Usage'), ...errors(401, 422) },
        },
      },
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, schemas },
  };
}
