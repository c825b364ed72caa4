import { describe, expect, it } from 'vitest';
import { guardedConnector, guardedLookup, TargetRefusedError } from './target-guard';

const connectErr = (hostname: string, allowPrivate: boolean) =>
  new Promise<Error | null>((resolve) => {
    const connect = guardedConnector({ timeout: 200 }, allowPrivate);
    connect(
      { hostname, host: hostname, protocol: 'http:', port: '9', servername: null, localAddress: null, httpSocket: undefined } as never,
      (err, socket) => {
        socket?.destroy();
        resolve(err);
      },
    );
  });

describe('guardedConnector', () => {
  it.each(['169.254.169.254', '[::ffff:169.254.169.254]', '[64:ff9b::a9fe:a9fe]', '[2002:a9fe:a9fe::1]'])(
    'refuses metadata literal %s without dialling, private targets allowed or not',
    async (host) => {
      for (const allow of [true, false]) expect(await connectErr(host, allow)).toBeInstanceOf(TargetRefusedError);
    },
  );

  it('refuses private literals only when the tenant does not allow them', async () => {
    expect(await connectErr('127.0.0.1', false)).toBeInstanceOf(TargetRefusedError);
    expect(await connectErr('127.0.0.1', true)).not.toBeInstanceOf(TargetRefusedError);
  });
});

describe('guardedLookup', () => {
  it('drops addresses the tenant may not reach from what a name resolves to', async () => {
    const lookup = (allow: boolean) =>
      new Promise<{ err: Error | null; addrs: unknown }>((resolve) =>
        guardedLookup(allow)('localhost', { all: true }, (err, addrs) => resolve({ err, addrs })),
      );
    expect((await lookup(false)).err).toBeInstanceOf(TargetRefusedError);
    const ok = await lookup(true);
    expect(ok.err).toBeNull();
    expect(Array.isArray(ok.addrs) && ok.addrs.length > 0).toBe(true);
  });
});
