// Turns a stored OpenAPI 3.0/3.1 document into the shapes the reference page renders. The
// document came from the API owner, so everything is read defensively: unknown shapes are
// skipped, $refs resolve only inside the document and only so deep, strings are capped.

type Json = unknown;
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;
const MAX_DEPTH = 6;

export type SchemaView = {
  type: string;
  description?: string;
  required?: boolean;
  enum?: string[];
  properties?: Array<{ name: string; schema: SchemaView }>;
  items?: SchemaView;
  ref?: string;
};
export type ParameterView = { name: string; in: string; required: boolean; description: string; schema: SchemaView; example?: string };
export type OperationView = {
  id: string;
  method: string;
  path: string;
  summary: string;
  description: string;
  tags: string[];
  parameters: ParameterView[];
  requestBody: { contentType: string; schema: SchemaView; example: string | null } | null;
  responses: Array<{ status: string; description: string; example: string | null; schema: SchemaView | null }>;
};
export type ReferenceView = {
  title: string;
  version: string;
  description: string;
  operations: OperationView[];
  schemas: Array<{ name: string; schema: SchemaView }>;
};

const obj = (v: Json): Record<string, Json> | null =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, Json>) : null;
const str = (v: Json, max = 2000): string => (typeof v === 'string' ? v.slice(0, max) : '');

function resolve(doc: Record<string, Json>, v: Json, depth = 0): { value: Record<string, Json> | null; ref?: string } {
  const o = obj(v);
  if (!o) return { value: null };
  const ref = typeof o.$ref === 'string' ? o.$ref : null;
  if (!ref) return { value: o };
  if (!ref.startsWith('#/') || depth > MAX_DEPTH) return { value: null, ref };
  let cur: Json = doc;
  for (const part of ref.slice(2).split('/')) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    cur = obj(cur)?.[key];
  }
  const r = resolve(doc, cur, depth + 1);
  return { value: r.value, ref: ref.split('/').pop() };
}

function schemaView(doc: Record<string, Json>, v: Json, depth = 0): SchemaView {
  const { value: s, ref } = resolve(doc, v);
  if (!s) return { type: ref ?? 'any' };
  let type = Array.isArray(s.type) ? s.type.filter((t) => typeof t === 'string').join(' | ') : str(s.type, 40);
  if (!type) type = s.properties ? 'object' : s.items ? 'array' : s.oneOf || s.anyOf ? 'one of' : 'any';
  const view: SchemaView = { type };
  if (ref) view.ref = ref;
  const d = str(s.description, 500);
  if (d) view.description = d;
  if (Array.isArray(s.enum)) view.enum = s.enum.slice(0, 30).map((e) => String(e).slice(0, 60));
  if (depth < MAX_DEPTH) {
    const props = obj(s.properties);
    if (props) {
      const required = new Set(Array.isArray(s.required) ? s.required.filter((r): r is string => typeof r === 'string') : []);
      view.properties = Object.entries(props)
        .slice(0, 60)
        .map(([name, p]) => ({ name: name.slice(0, 100), schema: { ...schemaView(doc, p, depth + 1), required: required.has(name) } }));
    }
    if (s.items) view.items = schemaView(doc, s.items, depth + 1);
  }
  return view;
}

/** An example from the spec (example, examples, or a schema's example), else one built from the schema. */
function exampleOf(doc: Record<string, Json>, media: Record<string, Json> | null): string | null {
  if (!media) return null;
  let ex: Json = media.example;
  if (ex === undefined) {
    const first = Object.values(obj(media.examples) ?? {})[0];
    ex = resolve(doc, first).value?.value;
  }
  if (ex === undefined && media.schema) ex = synthesize(doc, media.schema, 0);
  if (ex === undefined) return null;
  return (typeof ex === 'string' ? ex : JSON.stringify(ex, null, 2)).slice(0, 4000);
}

function synthesize(doc: Record<string, Json>, v: Json, depth: number): Json {
  const { value: s } = resolve(doc, v);
  if (!s || depth > 4) return undefined;
  if (s.example !== undefined) return s.example;
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  const props = obj(s.properties);
  if (type === 'object' || props) {
    const out: Record<string, Json> = {};
    for (const [k, p] of Object.entries(props ?? {}).slice(0, 20)) out[k] = synthesize(doc, p, depth + 1) ?? null;
    return out;
  }
  if (type === 'array') return [synthesize(doc, s.items, depth + 1) ?? null];
  if (type === 'integer' || type === 'number') return 0;
  if (type === 'boolean') return true;
  if (type === 'string') return s.format === 'date-time' ? '2026-01-01T00:00:00Z' : 'string';
  return undefined;
}

function parameterView(doc: Record<string, Json>, p: Json): ParameterView | null {
  const { value } = resolve(doc, p);
  if (!value || typeof value.name !== 'string' || typeof value.in !== 'string') return null;
  const ex = value.example ?? obj(value.schema)?.example;
  return {
    name: value.name.slice(0, 100),
    in: value.in.slice(0, 20),
    required: value.required === true || value.in === 'path',
    description: str(value.description, 500),
    schema: schemaView(doc, value.schema),
    ...(ex !== undefined ? { example: String(ex).slice(0, 200) } : {}),
  };
}

export function buildReference(input: Json, fallbackTitle: string): ReferenceView {
  const doc = obj(input) ?? {};
  const info = obj(doc.info) ?? {};
  const operations: OperationView[] = [];
  for (const [path, item] of Object.entries(obj(doc.paths) ?? {}).slice(0, 300)) {
    const pi = obj(item);
    if (!pi) continue;
    const shared = Array.isArray(pi.parameters) ? pi.parameters : [];
    for (const m of METHODS) {
      const op = obj(pi[m]);
      if (!op) continue;
      const params = new Map<string, ParameterView>();
      for (const p of [...shared, ...(Array.isArray(op.parameters) ? op.parameters : [])]) {
        const v = parameterView(doc, p);
        if (v) params.set(`${v.in}:${v.name}`, v);
      }
      const body = resolve(doc, op.requestBody).value;
      const content = obj(body?.content);
      const [ct, media] = content ? (Object.entries(content)[0] ?? [null, null]) : [null, null];
      const responses = Object.entries(obj(op.responses) ?? {})
        .slice(0, 20)
        .map(([status, r]) => {
          const rv = resolve(doc, r).value;
          const rc = obj(rv?.content);
          const first = rc ? obj(Object.values(rc)[0]) : null;
          return {
            status: status.slice(0, 10),
            description: str(rv?.description, 500),
            example: exampleOf(doc, first),
            schema: first?.schema ? schemaView(doc, first.schema) : null,
          };
        });
      const id = (str(op.operationId, 100) || `${m}-${path}`).replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '') || `${m}-op`;
      operations.push({
        id,
        method: m.toUpperCase(),
        path: path.slice(0, 300),
        summary: str(op.summary, 200),
        description: str(op.description),
        tags: Array.isArray(op.tags) ? op.tags.filter((t): t is string => typeof t === 'string').slice(0, 5) : [],
        parameters: [...params.values()],
        requestBody:
          ct && media
            ? { contentType: ct.slice(0, 100), schema: schemaView(doc, obj(media)?.schema), example: exampleOf(doc, obj(media)) }
            : null,
        responses,
      });
    }
  }
  const schemas = Object.entries(obj(obj(doc.components)?.schemas) ?? {})
    .slice(0, 100)
    .map(([name, s]) => ({ name: name.slice(0, 100), schema: schemaView(doc, s) }));
  return {
    title: str(info.title, 200) || fallbackTitle,
    version: str(info.version, 50),
    description: str(info.description, 4000),
    operations,
    schemas,
  };
}

export type SampleInput = {
  baseUrl: string;
  method: string;
  path: string;
  key: string;
  body: string | null;
  query?: Array<{ name: string; example?: string | undefined }>;
};

/** Fills path parameters with their examples (or a visible placeholder) and adds required query ones. */
export function sampleUrl(op: Pick<OperationView, 'path' | 'parameters'>, baseUrl: string): string {
  const path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const p = op.parameters.find((x) => x.in === 'path' && x.name === name);
    return encodeURIComponent(p?.example ?? name.toUpperCase());
  });
  const q = op.parameters
    .filter((p) => p.in === 'query' && p.required)
    .map((p) => `${encodeURIComponent(p.name)}=${encodeURIComponent(p.example ?? 'value')}`);
  return `${baseUrl.replace(/\/$/, '')}${path}${q.length ? `?${q.join('&')}` : ''}`;
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** curl, JavaScript (fetch) and Python (requests) for one call; `key` is a real key or a placeholder. */
export function codeSamples(
  url: string,
  method: string,
  key: string,
  body: string | null,
): { curl: string; javascript: string; python: string } {
  const hasBody = body !== null && !['GET', 'HEAD', 'DELETE'].includes(method);
  const curl = [
    `curl -X ${method} ${shq(url)}`,
    `  -H ${shq(`Authorization: Bearer ${key}`)}`,
    ...(hasBody ? [`  -H 'Content-Type: application/json'`, `  -d ${shq(body!)}`] : []),
  ].join(' \\\n');
  const javascript = [
    `const res = await fetch(${JSON.stringify(url)}, {`,
    `  method: ${JSON.stringify(method)},`,
    `  headers: { Authorization: ${JSON.stringify(`Bearer ${key}`)}${hasBody ? `, 'Content-Type': 'application/json'` : ''} },`,
    ...(hasBody ? [`  body: JSON.stringify(${body}),`] : []),
    `});`,
    `console.log(res.status, await res.json());`,
  ].join('\n');
  const python = [
    'import requests',
    '',
    `res = requests.request(${JSON.stringify(method)}, ${JSON.stringify(url)},`,
    `    headers={"Authorization": ${JSON.stringify(`Bearer ${key}`)}},${hasBody ? `\n    json=${pyLiteral(body!)},` : ''})`,
    'print(res.status_code, res.json())',
  ].join('\n');
  return { curl, javascript, python };
}

function pyLiteral(json: string): string {
  try {
    return JSON.stringify(JSON.parse(json))
      .replace(/\btrue\b/g, 'True')
      .replace(/\bfalse\b/g, 'False')
      .replace(/\bnull\b/g, 'None');
  } catch {
    return JSON.stringify(json);
  }
}
