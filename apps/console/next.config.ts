import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NextConfig } from 'next';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const config: NextConfig = {
  // Workspace packages export TypeScript source; Next compiles them like app code.
  transpilePackages: ['@tollgate/policy', '@tollgate/keys', '@tollgate/db', '@tollgate/config', '@tollgate/billing', '@tollgate/telemetry'],
  // Native drivers and Prisma's runtime (it loads its query compiler at runtime) stay in node_modules.
  serverExternalPackages: ['@prisma/client', '@prisma/adapter-pg', 'pg', 'ioredis', 'pino', 'prom-client'],
  turbopack: { root },
  poweredByHeader: false,
  // Room for a 1 MB OpenAPI upload plus the rest of the API form; the service enforces 1 MB.
  experimental: { serverActions: { bodySizeLimit: '3mb' } },
  reactStrictMode: true,
  typescript: { ignoreBuildErrors: false },
  // A request src/proxy.ts marked as arriving on a tenant's own portal host is that tenant's
  // portal: / and every path below it, never anything outside /portal/{slug}. The header name is
  // PORTAL_HOST_HEADER (src/server/shared/portal-host.ts); the proxy deletes any client-sent copy.
  async rewrites() {
    const has = [{ type: 'header' as const, key: 'x-tollgate-portal-host', value: '(?<slug>[a-z0-9][a-z0-9-]{0,47})' }];
    return {
      beforeFiles: [{ source: '/:path*', has, destination: '/portal/:slug/:path*' }],
      afterFiles: [],
      fallback: [],
    };
  },
  async headers() {
    return [
      {
        source: '/:path*',
        headers: [
          { key: 'X-Frame-Options', value: 'DENY' },
          { key: 'X-Content-Type-Options', value: 'nosniff' },
          { key: 'Referrer-Policy', value: 'same-origin' },
        ],
      },
    ];
  },
};

export default config;
