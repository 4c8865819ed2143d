// A real SMTP server (the smtp-server package) that keeps every message it receives.

import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
}

export interface SmtpSink {
  url: string;
  messages: ReceivedMail[];
  /** Reply to RCPT TO for an address: undefined accepts; a code and message reject. */
  reject: (rcpt: string) => { code: number; message: string } | undefined;
  close(): Promise<void>;
}

export async function startSmtp(): Promise<SmtpSink> {
  const sink: SmtpSink = {
    url: '',
    messages: [],
    reject: () => undefined,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo(address, _session, cb) {
      const r = sink.reject(address.address);
      if (!r) return cb();
      const err = new Error(r.message) as Error & { responseCode: number };
      err.responseCode = r.code;
      cb(err);
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        sink.messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  sink.url = `smtp://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
  return sink;
}
