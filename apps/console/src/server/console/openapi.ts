export const OPENAPI_MAX_BYTES = 1_000_000;
const MAX_DEPTH = 64;
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
const PARAM_IN = new Set(['query', 'header', 'path', 'cookie']);

export type OpenApiCheck =
  { ok: true; doc: Record<string, unknown>; title: string; version: string; operations: number } | { ok: false; reason: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function depthOf(v: unknown, limit: number): number {
  // Iterative walk: a hostile document can't blow the stack.
  let max = 0;
  const stack: Array<[unknown, number]> = [[v, 1]];
  while (stack.length) {
    const [node, d] = stack.pop()!;
    if (d > max) max = d;
    if (max > limit) return max;
    if (typeof node === 'object' && node !== null) for (const child of Object.values(node)) stack.push([child, d + 1]);
  }
  return max;
}

/**
 * A structural check of an OpenAPI 3.0/3.1 document: enough that the portal can render it and
 * that a wrong file (Swagger 2, a random JSON, an HTML error page) is refused on save.
 */
export function validateOpenApi(input: unknown): OpenApiCheck {
  let doc: unknown = input;
  if (typeof input === 'string') {
    if (Buffer.byteLength(input, 'utf8') > OPENAPI_MAX_BYTES)
      return { ok: false, reason: `is larger than ${OPENAPI_MAX_BYTES / 1_000_000} MB` };
    try {
      doc = JSON.parse(input);
    } catch {
      return { ok: false, reason: 'is not valid JSON (upload the JSON form of the document)' };
    }
  }
  if (!isObject(doc)) return { ok: false, reason: 'must be a JSON object' };
  // Depth first (iteratively): serialising a hostile object to measure it could overflow the stack.
  if (depthOf(doc, MAX_DEPTH) > MAX_DEPTH) return { ok: false, reason: `nests deeper than ${MAX_DEPTH} levels` };
  if (typeof input !== 'string' && JSON.stringify(doc).length > OPENAPI_MAX_BYTES) {
    return { ok: false, reason: `is larger than ${OPENAPI_MAX_BYTES / 1_000_000} MB` };
  }
  if (typeof doc.swagger === 'string') return { ok: false, reason: 'is Swagger 2.0; convert it to OpenAPI 3' };
  if (typeof doc.openapi !== 'string' || !/^3\.[01]\.\d+(-[\w.]+)?$/.test(doc.openapi)) {
    return { ok: false, reason: 'needs an "openapi" field with version 3.0.x or 3.1.x' };
  }
  const is31 = doc.openapi.startsWith('3.1');
  const info = doc.info;
  if (!isObject(info)) return { ok: false, reason: 'needs an "info" object' };
  if (typeof info.title !== 'string' || info.title.trim() === '') return { ok: false, reason: 'info.title must be a non-empty string' };
  if (typeof info.version !== 'string' || info.version.trim() === '')
    return { ok: false, reason: 'info.version must be a non-empty string' };
  if (doc.paths === undefined) {
    if (!is31 || (!isObject(doc.components) && !isObject(doc.webhooks))) return { ok: false, reason: 'needs a "paths" object' };
  } else if (!isObject(doc.paths)) {
    return { ok: false, reason: '"paths" must be an object' };
  }
  let operations = 0;
  for (const [path, item] of Object.entries(isObject(doc.paths) ? doc.paths : {})) {
    if (!path.startsWith('/')) return { ok: false, reason: `path "${path.slice(0, 80)}" must start with /` };
    if (!isObject(item)) return { ok: false, reason: `path "${path.slice(0, 80)}" must be an object` };
    for (const method of METHODS) {
      const op = item[method];
      if (op === undefined) continue;
      const where = `${method.toUpperCase()} ${path.slice(0, 80)}`;
      if (!isObject(op)) return { ok: false, reason: `${where} must be an object` };
      if (!is31 && !isObject(op.responses)) return { ok: false, reason: `${where} needs a "responses" object` };
      if (op.responses !== undefined && !isObject(op.responses)) return { ok: false, reason: `${where}: "responses" must be an object` };
      if (op.parameters !== undefined) {
        if (!Array.isArray(op.parameters)) return { ok: false, reason: `${where}: "parameters" must be an array` };
        for (const p of op.parameters) {
          if (isObject(p) && typeof p.$ref === 'string') continue;
          if (!isObject(p) || typeof p.name !== 'string' || typeof p.in !== 'string' || !PARAM_IN.has(p.in)) {
            return { ok: false, reason: `${where}: each parameter needs a "name" and "in" (query, header, path or cookie)` };
          }
        }
      }
      operations++;
    }
  }
  return { ok: true, doc, title: info.title, version: info.version, operations };
}
