import { connect, type Socket } from 'node:net';
import { newId, type Db } from '@tollgate/db';
import type { Logger } from '@tollgate/config';

export type OutgoingEmail = { tenantId: string | null; to: string; subject: string; text: string };
export type EmailSettings = { smtpUrl?: string | undefined; from: string };

/**
 * Every message is written to the EmailMessage table (the outbox people and tests read); when
 * SMTP is configured it is also delivered and marked sent. A delivery failure is logged and
 * leaves the row unsent — it never fails the request that caused the mail (a reset request
 * must answer the same whether or not the mail went out).
 */
export async function sendEmail(deps: { db: Db; log: Logger; settings: EmailSettings }, mail: OutgoingEmail): Promise<string> {
  const id = newId('email');
  await deps.db.emailMessage.create({ data: { id, tenantId: mail.tenantId, to: mail.to, subject: mail.subject, text: mail.text } });
  if (deps.settings.smtpUrl) {
    try {
      await deliverSmtp(deps.settings.smtpUrl, deps.settings.from, mail);
      await deps.db.emailMessage.update({ where: { id }, data: { sentAt: new Date() } });
    } catch (err) {
      deps.log.warn({ err: (err as Error).message, emailId: id }, 'smtp delivery failed; message kept in the outbox');
    }
  }
  return id;
}

/** Minimal SMTP client (plain or AUTH PLAIN over a trusted relay such as a local MTA or Mailpit). */
export async function deliverSmtp(smtpUrl: string, from: string, mail: OutgoingEmail, timeoutMs = 10_000): Promise<void> {
  const u = new URL(smtpUrl);
  if (u.protocol !== 'smtp:') throw new Error('only smtp:// URLs are supported');
  const socket: Socket = connect({ host: u.hostname, port: Number(u.port || 25) });
  socket.setTimeout(timeoutMs, () => socket.destroy(new Error('smtp timeout')));
  let buf = '';
  const waiters: Array<(line: string) => void> = [];
  socket.on('data', (d) => {
    buf += d.toString('utf8');
    let i: number;
    while ((i = buf.indexOf('\r\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      // Multi-line replies ("250-…") end with a line whose 4th char is a space.
      if (/^\d{3} /.test(line) || /^\d{3}$/.test(line)) waiters.shift()?.(line);
    }
  });
  const failed = new Promise<never>((_, reject) => socket.once('error', reject));
  const reply = () => Promise.race([new Promise<string>((r) => waiters.push(r)), failed]);
  const expect = async (cmd: string | null, code: string) => {
    const p = reply();
    if (cmd !== null) socket.write(`${cmd}\r\n`);
    const line = await p;
    if (!line.startsWith(code)) throw new Error(`smtp: expected ${code}, got ${line.slice(0, 100)}`);
  };
  try {
    await expect(null, '220');
    await expect('EHLO tollgate', '250');
    if (u.username) {
      const token = Buffer.from(`\0${decodeURIComponent(u.username)}\0${decodeURIComponent(u.password)}`).toString('base64');
      await expect(`AUTH PLAIN ${token}`, '235');
    }
    await expect(`MAIL FROM:<${from}>`, '250');
    await expect(`RCPT TO:<${mail.to}>`, '250');
    await expect('DATA', '354');
    const body = mail.text.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    const headers = [
      `From: ${from}`,
      `To: ${mail.to}`,
      `Subject: ${mail.subject.replace(/[\r\n]/g, ' ')}`,
      'Content-Type: text/plain; charset=utf-8',
      `Date: ${new Date().toUTCString()}`,
    ];
    await expect(`${headers.join('\r\n')}\r\n\r\n${body}\r\n.`, '250');
    await expect('QUIT', '221').catch(() => undefined);
  } finally {
    socket.destroy();
  }
}
