import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/**
 * An OpenTelemetry collector stand-in: accepts OTLP/HTTP trace exports on /v1/traces, as JSON
 * (`http/json`) or protobuf (`http/protobuf`, decoded here for the fields tests read), and keeps
 * the spans. `waitForSpans` resolves as exports arrive, without polling.
 */
export type CollectedSpan = {
  service: string;
  scope: string;
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  traceState: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, string | number | boolean>;
  links: { traceId: string; spanId: string }[];
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
};

export type OtlpCollector = {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT. */
  endpoint: string;
  spans: CollectedSpan[];
  /** Export requests received, by content type. */
  exports: { json: number; protobuf: number };
  waitForSpans: (match: (all: CollectedSpan[]) => boolean, what: string, timeoutMs?: number) => Promise<CollectedSpan[]>;
  close: () => Promise<void>;
};

export const SPAN_KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;

export async function startOtlpCollector(): Promise<OtlpCollector> {
  const spans: CollectedSpan[] = [];
  const exports = { json: 0, protobuf: 0 };
  const events = new EventEmitter();
  const server = createServer((req, res) => {
    void readBody(req).then((body) => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      const type = req.headers['content-type'] ?? '';
      try {
        if (type.startsWith('application/json')) {
          exports.json++;
          spans.push(...fromJson(JSON.parse(body.toString('utf8')) as JsonRequest));
        } else if (type.startsWith('application/x-protobuf')) {
          exports.protobuf++;
          spans.push(...fromProtobuf(body));
        } else {
          res.writeHead(415).end();
          return;
        }
      } catch (err) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ message: String(err) }));
        return;
      }
      res.writeHead(200, { 'content-type': type.startsWith('application/json') ? 'application/json' : 'application/x-protobuf' });
      res.end(type.startsWith('application/json') ? '{}' : '');
      events.emit('spans');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    exports,
    waitForSpans: (match, what, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (!match(spans)) return;
          cleanup();
          resolve(spans);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for spans: ${what}; received: ${spans.map((s) => `${s.service}/${s.name}`).join(', ')}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          events.off('spans', check);
        };
        events.on('spans', check);
        check();
      }),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const raw = Buffer.concat(chunks);
  return req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
}

// --- OTLP/JSON (ids are hex strings in OTLP/JSON) -------------------------------------------

type JsonValue = { stringValue?: string; boolValue?: boolean; intValue?: string | number; doubleValue?: number };
type JsonKv = { key: string; value: JsonValue };
type JsonSpan = {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  traceState?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes?: JsonKv[];
  links?: { traceId: string; spanId: string }[];
  status?: { code?: number };
};
type JsonRequest = {
  resourceSpans: { resource?: { attributes?: JsonKv[] }; scopeSpans: { scope?: { name?: string }; spans: JsonSpan[] }[] }[];
};

const jsonAttrs = (kvs: JsonKv[] = []) =>
  Object.fromEntries(
    kvs.map(({ key, value }) => [
      key,
      value.stringValue ?? value.boolValue ?? (value.intValue !== undefined ? Number(value.intValue) : (value.doubleValue ?? '')),
    ]),
  );

function fromJson(body: JsonRequest): CollectedSpan[] {
  return body.resourceSpans.flatMap((rs) => {
    const service = String(jsonAttrs(rs.resource?.attributes)['service.name'] ?? '');
    return rs.scopeSpans.flatMap((ss) =>
      ss.spans.map((s) => ({
        service,
        scope: ss.scope?.name ?? '',
        traceId: s.traceId,
        spanId: s.spanId,
        parentSpanId: s.parentSpanId ?? '',
        traceState: s.traceState ?? '',
        name: s.name,
        kind: s.kind,
        startNs: BigInt(s.startTimeUnixNano),
        endNs: BigInt(s.endTimeUnixNano),
        attributes: jsonAttrs(s.attributes),
        links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
        statusCode: s.status?.code ?? 0,
      })),
    );
  });
}

// --- OTLP/protobuf: just enough of the wire format for ExportTraceServiceRequest -------------

type Field = { no: number; varint?: bigint; bytes?: Buffer; fixed?: Buffer };

function* fields(buf: Buffer): Generator<Field> {
  let i = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[i++]!;
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) yield { no, varint: varint() };
    else if (wire === 1) yield { no, fixed: buf.subarray(i, (i += 8)) };
    else if (wire === 5) yield { no, fixed: buf.subarray(i, (i += 4)) };
    else if (wire === 2) {
      const len = Number(varint());
      yield { no, bytes: buf.subarray(i, (i += len)) };
    } else throw new Error(`unsupported wire type ${wire}`);
  }
}

function pbValue(buf: Buffer): string | number | boolean {
  for (const f of fields(buf)) {
    if (f.no === 1) return f.bytes!.toString('utf8');
    if (f.no === 2) return f.varint! !== 0n;
    if (f.no === 3) return Number(BigInt.asIntN(64, f.varint!));
    if (f.no === 4) return f.fixed!.readDoubleLE(0);
  }
  return '';
}

function pbAttrs(list: Buffer[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list) {
    let key = '';
    let value: string | number | boolean = '';
    for (const f of fields(kv)) {
      if (f.no === 1) key = f.bytes!.toString('utf8');
      else if (f.no === 2) value = pbValue(f.bytes!);
    }
    out[key] = value;
  }
  return out;
}

function pbSpan(buf: Buffer, service: string, scope: string): CollectedSpan {
  const s: CollectedSpan = {
    service,
    scope,
    traceId: '',
    spanId: '',
    parentSpanId: '',
    traceState: '',
    name: '',
    kind: 0,
    startNs: 0n,
    endNs: 0n,
    attributes: {},
    links: [],
    statusCode: 0,
  };
  const attrs: Buffer[] = [];
  for (const f of fields(buf)) {
    if (f.no === 1) s.traceId = f.bytes!.toString('hex');
    else if (f.no === 2) s.spanId = f.bytes!.toString('hex');
    else if (f.no === 3) s.traceState = f.bytes!.toString('utf8');
    else if (f.no === 4) s.parentSpanId = f.bytes!.toString('hex');
    else if (f.no === 5) s.name = f.bytes!.toString('utf8');
    else if (f.no === 6) s.kind = Number(f.varint!);
    else if (f.no === 7) s.startNs = f.fixed!.readBigUInt64LE(0);
    else if (f.no === 8) s.endNs = f.fixed!.readBigUInt64LE(0);
    else if (f.no === 9) attrs.push(f.bytes!);
    else if (f.no === 13) {
      const link = { traceId: '', spanId: '' };
      for (const lf of fields(f.bytes!)) {
        if (lf.no === 1) link.traceId = lf.bytes!.toString('hex');
        else if (lf.no === 2) link.spanId = lf.bytes!.toString('hex');
      }
      s.links.push(link);
    } else if (f.no === 15) for (const sf of fields(f.bytes!)) if (sf.no === 3) s.statusCode = Number(sf.varint!);
  }
  s.attributes = pbAttrs(attrs);
  return s;
}

function fromProtobuf(body: Buffer): CollectedSpan[] {
  const out: CollectedSpan[] = [];
  for (const rs of fields(body)) {
    if (rs.no !== 1) continue;
    let service = '';
    const scopeSpans: Buffer[] = [];
    for (const f of fields(rs.bytes!)) {
      if (f.no === 1) {
        const attrs = [...fields(f.bytes!)].filter((a) => a.no === 1).map((a) => a.bytes!);
        service = String(pbAttrs(attrs)['service.name'] ?? '');
      } else if (f.no === 2) scopeSpans.push(f.bytes!);
    }
    for (const ss of scopeSpans) {
      let scope = '';
      const spans: Buffer[] = [];
      for (const f of fields(ss)) {
        if (f.no === 1) for (const sf of fields(f.bytes!)) if (sf.no === 1) scope = sf.bytes!.toString('utf8');
        if (f.no === 2) spans.push(f.bytes!);
      }
      for (const span of spans) out.push(pbSpan(span, service, scope));
    }
  }
  return out;
}
