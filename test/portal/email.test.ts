import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@tollgate/db';
import { createLogger } from '@tollgate/config';
import { testDb } from '../harness/db';
import { sendEmail } from '../../apps/console/src/server/portal/email';
import { freePort } from '../e2e/platform';

// A minimal SMTP server: enough of the protocol to accept one message and keep what it got.
function smtpServer(received: string[]): Server {
  return createServer((sock) => {
    let inData = false;
    let buf = '';
    sock.write('220 test ESMTP\r\n');
    sock.on('data', (d) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            sock.write('250 queued\r\n');
          } else received.push(line);
          continue;
        }
        if (/^EHLO/.test(line)) sock.write('250-test\r\n250 AUTH PLAIN\r\n');
        else if (/^AUTH PLAIN/.test(line)) sock.write('235 ok\r\n');
        else if (/^(MAIL|RCPT)/.test(line)) sock.write('250 ok\r\n');
        else if (line === 'DATA') {
          inData = true;
          sock.write('354 go\r\n');
        } else if (line === 'QUIT') sock.end('221 bye\r\n');
      }
    });
  });
}

let db: Db;
const log = createLogger('email-test', 'silent');
beforeAll(() => {
  db = testDb();
});
afterAll(async () => {
  await db.$disconnect();
});

describe('portal e-mail adapter', () => {
  it('delivers over SMTP when configured and marks the outbox row sent', async () => {
    const received: string[] = [];
    const server = smtpServer(received);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const to = `smtp-${Date.now()}@example.com`;
      const id = await sendEmail(
        { db, log, settings: { smtpUrl: `smtp://user:pa%40ss@127.0.0.1:${port}`, from: 'portal@example.com' } },
        { tenantId: null, to, subject: 'Reset\r\nBcc: evil@example.com', text: 'line one\n.\nline three' },
      );
      const row = await db.emailMessage.findUniqueOrThrow({ where: { id } });
      expect(row.sentAt).not.toBeNull();
      expect(received).toContain(`To: ${to}`);
      // A newline in the subject can't add headers; a lone dot in the body is escaped.
      expect(received).toContain('Subject: Reset  Bcc: evil@example.com');
      expect(received.some((l) => /^Bcc:/i.test(l))).toBe(false);
      expect(received).toContain('..');
    } finally {
      server.close();
    }
  });

  it('keeps the message in the outbox, unsent, when the SMTP server is unreachable, without failing the caller', async () => {
    const port = await freePort();
    const to = `down-${Date.now()}@example.com`;
    const id = await sendEmail(
      { db, log, settings: { smtpUrl: `smtp://127.0.0.1:${port}`, from: 'portal@example.com' } },
      { tenantId: null, to, subject: 'Hi', text: 'x' },
    );
    expect((await db.emailMessage.findUniqueOrThrow({ where: { id } })).sentAt).toBeNull();
  });
});
