// Email over SMTP (nodemailer, pooled connections). One message per delivery, with a text part and
// an HTML part (the body escaped, line breaks kept). The Message-ID is ours, derived from the
// delivery id, and recorded as the provider message id.
// Outcome: SMTP 2xx success; 4xx replies and connection errors retryable; 5xx replies to RCPT TO
// or DATA (about this message) permanent; other 5xx (greeting, AUTH, MAIL FROM) retryable.
// An abort (shutdown after the grace period) ends the attempt at once with the signal's reason.
// Server: the workspace's `smtp` provider ({url, from}) when it has one, else HERALD_SMTP_URL and
// HERALD_EMAIL_FROM. One connection pool per server, kept while its credentials are unchanged.

import { createRequire } from 'node:module';
import type { Transporter } from 'nodemailer';
import { Type, type Static } from 'typebox';
import { PermanentError, RetryableError, type Channel, type DeliveryJob, type DeliveryResult } from './channel.ts';

export const SmtpProviderConfig = Type.Object(
  {
    url: Type.String({ pattern: '^smtps?://', maxLength: 2048, description: 'smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465' }),
    from: Type.String({ minLength: 3, maxLength: 320, description: 'From address, e.g. "Acme <no-reply@acme.example>"' }),
  },
  { additionalProperties: false },
);
export type SmtpProviderConfig = Static<typeof SmtpProviderConfig>;
/** The URL carries the password. */
export const SMTP_SECRET_FIELDS: readonly string[] = ['url'];

export interface EmailOptions {
  /** The deployment's server (HERALD_SMTP_URL), for workspaces without an smtp provider. */
  smtpUrl: URL | undefined;
  from: string;
  timeoutMs: number;
  maxConnections: number;
}

interface Server {
  transport: Transporter;
  from: string;
  domain: string;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function renderEmailHtml(title: string, body: string): string {
  const paragraphs = body
    .split(/\n{2,}/)
    .map((p) => `<p>${escapeHtml(p).replace(/\n/g, '<br>')}</p>`)
    .join('\n');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body style="font-family: system-ui, sans-serif; line-height: 1.5; max-width: 640px; margin: 0 auto; padding: 16px">
${title ? `<h2>${escapeHtml(title)}</h2>\n` : ''}${paragraphs}
</body></html>`;
}

export class EmailChannel implements Channel {
  readonly name = 'email' as const;
  readonly #o: EmailOptions;
  /** By "workspace:provider version" ("" for the deployment's server). */
  readonly #servers = new Map<string, Server>();

  constructor(opts: EmailOptions) {
    this.#o = opts;
  }

  #server(job: DeliveryJob): Server {
    const key = job.provider ? `${job.workspaceId}:${job.provider.version}` : '';
    let server = this.#servers.get(key);
    if (server) return server;
    let url: string;
    let from: string;
    if (job.provider) {
      const c = job.provider.config as SmtpProviderConfig;
      url = c.url;
      from = c.from;
      // Credentials changed: the pools of older versions of this workspace's server are closed.
      for (const [k, old] of this.#servers) if (k !== '' && k.startsWith(`${job.workspaceId}:`)) (old.transport.close(), this.#servers.delete(k));
    } else if (this.#o.smtpUrl) {
      url = this.#o.smtpUrl.href;
      from = this.#o.from;
    } else {
      throw new PermanentError('provider_not_configured', 'no SMTP server: set HERALD_SMTP_URL or PUT /v1/providers/smtp');
    }
    // nodemailer is loaded with the first transport: a process that sends no email never loads it.
    const nodemailer = createRequire(import.meta.url)('nodemailer') as typeof import('nodemailer');
    const transport = nodemailer.createTransport({
      url,
      pool: true,
      maxConnections: this.#o.maxConnections,
      connectionTimeout: this.#o.timeoutMs,
      greetingTimeout: this.#o.timeoutMs,
      socketTimeout: this.#o.timeoutMs,
    } as never);
    server = { transport, from, domain: /@([^>\s]+)>?$/.exec(from)?.[1] ?? 'herald.local' };
    this.#servers.set(key, server);
    return server;
  }

  async deliver(job: DeliveryJob, signal?: AbortSignal): Promise<DeliveryResult> {
    const { email, name } = job.recipient;
    if (!email) throw new PermanentError('no_address', 'recipient has no email address');
    signal?.throwIfAborted();
    const server = this.#server(job);
    const messageId = `<${job.deliveryId}@${server.domain}>`;
    const { title, body } = job.notification;
    try {
      const sending = server.transport.sendMail({
        from: server.from,
        to: name ? { name, address: email } : email,
        // Without a title, the start of the body; cut between characters, never inside a surrogate pair.
        subject: job.notification.subject ?? (title || Array.from(body).slice(0, 78).join('')),
        text: body,
        html: job.notification.html ?? renderEmailHtml(title, body),
        messageId,
        headers: { 'X-Herald-Notification': job.notificationId },
      });
      const info = await abortable(sending, signal);
      return { providerMessageId: info.messageId ?? messageId, smtpReply: String(info.response ?? '').slice(0, 500) };
    } catch (err) {
      if (signal?.aborted && err === signal.reason) throw err;
      const e = err as { responseCode?: number; response?: string; code?: string; command?: string; message: string };
      const smtpReply = e.response?.slice(0, 500);
      // A 5xx is permanent only when it judges this message (its recipient or its content). A 5xx
      // to the greeting, AUTH or MAIL FROM is about the server or Herald's own settings (a wrong
      // password, a refused sender): every message would fail alike, so it stays retryable while
      // the operator fixes it, instead of sending every message to the dead-letter queue.
      const aboutMessage = e.code === 'EENVELOPE' || e.code === 'EMESSAGE' || /^(RCPT|DATA)/i.test(e.command ?? '');
      if (e.responseCode !== undefined) {
        if (e.responseCode >= 500 && aboutMessage) throw new PermanentError(`smtp_${e.responseCode}`, e.message, { smtpReply });
        throw new RetryableError(`smtp_${e.responseCode}`, e.message, { smtpReply });
      }
      if (aboutMessage) throw new PermanentError('smtp_envelope', e.message, { smtpReply });
      throw new RetryableError(e.code === 'ETIMEDOUT' ? 'timeout' : 'network', `${e.code ?? 'error'}: ${e.message}`, { smtpReply });
    }
  }

  async close(): Promise<void> {
    for (const s of this.#servers.values()) s.transport.close();
    this.#servers.clear();
  }
}

/**
 * Settles with `p`, or rejects with the signal's reason as soon as it aborts. nodemailer's sendMail
 * takes no signal: without this an aborted attempt would hold shutdown until the SMTP timeout.
 */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
