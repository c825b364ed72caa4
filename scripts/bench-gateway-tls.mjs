// The TLS rows of `npm run bench:gateway` (docs/adr/0026): one Tollgate process with a TLS port,
// loaded alternately over HTTP/2 (ALPN h2) and HTTP/1.1 over TLS by a Node client pinned to the
// load core(s), interleaved repeats, the gateway's CPU per request measured from /proc.
// (wrk speaks neither TLS-negotiated h2 nor shares a client with it; one Node client for both
// protocols keeps the comparison like for like.)
// Run as a role: node scripts/bench-gateway-tls.mjs --role=tls-client --proto=h1|h2 --port=N ...
import { execFileSync } from 'node:child_process';
import http2 from 'node:http2';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);

/** Closed loop for `duration` s with `concurrency` requests in flight; prints {requests, non2xx}. */
async function client(a) {
  const headers = JSON.parse(a.headers);
  const concurrency = Number(a.concurrency);
  const deadline = Date.now() + Number(a.duration) * 1000;
  let requests = 0;
  let non2xx = 0;
  let errors = 0;
  const count = (status) => {
    requests++;
    if (status < 200 || status >= 400) non2xx++;
  };
  if (a.proto === 'h1') {
    const agent = new https.Agent({ keepAlive: true, maxSockets: concurrency, rejectUnauthorized: false });
    const one = () =>
      new Promise((resolve) => {
        const req = https.request({ host: '127.0.0.1', port: Number(a.port), path: a.path, headers, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(count(res.statusCode)));
        });
        req.on('error', () => resolve(errors++));
        req.end();
      });
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (Date.now() < deadline) await one();
      }),
    );
    agent.destroy();
  } else {
    // A few connections with many streams each: how h2 clients (browsers, gRPC, undici) use it.
    const sessions = Array.from({ length: Math.max(1, Math.round(concurrency / 16)) }, () =>
      http2.connect(`https://127.0.0.1:${a.port}`, { rejectUnauthorized: false }),
    );
    const one = (s) =>
      new Promise((resolve) => {
        const req = s.request({ ':path': a.path, ':authority': headers.Host, authorization: headers.Authorization });
        let status = 0;
        req.on('response', (h) => (status = Number(h[':status'])));
        req.on('error', () => resolve(errors++));
        req.resume();
        req.on('end', () => resolve(count(status)));
        req.end();
      });
    await Promise.all(
      Array.from({ length: concurrency }, async (_, i) => {
        while (Date.now() < deadline) await one(sessions[i % sessions.length]);
      }),
    );
    for (const s of sessions) s.close();
  }
  process.stdout.write(JSON.stringify({ requests, non2xx, errors }) + '\n');
  process.exit(0);
}

function runClient(proto, { port, path: p, headers, duration, concurrency, cpu }) {
  const out = execFileSync(
    'taskset',
    [
      '-c',
      String(cpu),
      process.execPath,
      self,
      '--role=tls-client',
      `--proto=${proto}`,
      `--port=${port}`,
      `--path=${p}`,
      `--headers=${JSON.stringify(headers)}`,
      `--duration=${duration}`,
      `--concurrency=${concurrency}`,
    ],
    { encoding: 'utf8' },
  );
  const r = JSON.parse(out.trim().split('\n').at(-1));
  return { ...r, rps: r.requests / duration };
}

/**
 * h2 over TLS against HTTP/1.1 over TLS, same gateway process, same run. `startGateway(extraEnv)`
 * starts a Tollgate process (the caller's bundle, env and pinning) and resolves {pid, tlsPort}.
 */
export async function benchTls({ work, startGateway, headers, duration, repeats, connections, loadCpu, cpuTicks, ticks, median }) {
  const cert = path.join(work, 'tls-cert.pem');
  const key = path.join(work, 'tls-key.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'],
    {
      stdio: 'ignore',
    },
  );
  const gw = await startGateway({ GATEWAY_TLS_CERT: cert, GATEWAY_TLS_KEY: key });
  const opts = { port: gw.tlsPort, path: '/echo/hello', headers, concurrency: connections, cpu: loadCpu };
  for (const proto of ['h1', 'h2']) runClient(proto, { ...opts, duration: 2 });
  const results = { h1: [], h2: [] };
  for (let r = 0; r < repeats; r++) {
    for (const proto of ['h1', 'h2']) {
      const before = cpuTicks(gw.pid);
      const res = runClient(proto, { ...opts, duration });
      res.cpuUsPerReq = ((cpuTicks(gw.pid) - before) / ticks / res.requests) * 1e6;
      results[proto].push(res);
      console.log(
        `  run ${r + 1} tls-${proto} ${res.rps.toFixed(0).padStart(7)} req/s  cpu ${res.cpuUsPerReq.toFixed(1)} µs/req${res.non2xx ? `  non-2xx ${res.non2xx}` : ''}${res.errors ? `  errors ${res.errors}` : ''}`,
      );
    }
  }
  const med = {};
  console.log(
    `\nTLS, Node client (${connections} in flight; h2: ${Math.max(1, Math.round(connections / 16))} connections), medians of ${repeats}:`,
  );
  for (const proto of ['h1', 'h2']) {
    med[proto] = { rps: median(results[proto].map((x) => x.rps)), cpu: median(results[proto].map((x) => x.cpuUsPerReq)) };
    const name = proto === 'h1' ? '(t1) Tollgate, HTTP/1.1 over TLS' : '(t2) Tollgate, HTTP/2 over TLS (ALPN h2)';
    console.log(`  ${name.padEnd(42)} ${med[proto].rps.toFixed(0).padStart(9)} req/s ${med[proto].cpu.toFixed(1).padStart(9)} cpu µs/req`);
  }
  const pairs = results.h1.map((x, i) => x.cpuUsPerReq / results.h2[i].cpuUsPerReq);
  console.log(
    `  ratio h2/h1 = ${(med.h2.rps / med.h1.rps).toFixed(3)} by req/s, ${(med.h1.cpu / med.h2.cpu).toFixed(3)} by CPU per request (repeat by repeat: ${pairs.map((x) => x.toFixed(3)).join(' ')})`,
  );
  return med;
}

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split(/=(.*)/s).slice(0, 2)));
if (process.argv[1] === self && args.role === 'tls-client') await client(args);
