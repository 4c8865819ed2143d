// Account email: invitations, address verification and password reset links, sent through Herald's
// own email channel (channels/email.ts) to the deployment's server (HERALD_SMTP_URL, HERALD_EMAIL_FROM),
// never an organization's smtp provider. One attempt, no retry queue: the person asks again.
//
// Links: `${HERALD_PUBLIC_URL}/#/<what>/<token>` for the dashboard to open; without
// HERALD_PUBLIC_URL the message carries the token and the API call that uses it, and no link
// (a link is never built from a request's Host header, which a client chooses).

import type { Channel } from '../channels/channel.ts';
import { Problem } from '../errors.ts';
import { newId } from '../domain/ids.ts';

export interface AccountMail {
  to: string;
  subject: string;
  /** The text before the link. */
  intro: string;
  /** The dashboard route of the link, e.g. "invitation". */
  page: string;
  token: string;
  /** How to use the token without the dashboard, e.g. "POST /v1/invitations/{token}/accept". */
  api: string;
  /** Organization for the Message-ID and the attempt's log context. */
  workspaceId: string;
}

export class AccountMailer {
  readonly #email: Channel | undefined;
  readonly #publicUrl: URL | undefined;

  constructor(opts: { email: Channel | undefined; smtpConfigured: boolean; publicUrl: URL | undefined }) {
    this.#email = opts.smtpConfigured ? opts.email : undefined;
    this.#publicUrl = opts.publicUrl;
  }

  get configured(): boolean {
    return this.#email !== undefined;
  }

  /** The link (or the token and API call) a message carries. */
  linkText(m: Pick<AccountMail, 'page' | 'token' | 'api'>): string {
    const api = m.api.replace('{token}', m.token);
    if (!this.#publicUrl) return `Your code: ${m.token}\n\nUse it with: ${api}`;
    const base = this.#publicUrl.href.replace(/\/$/, '');
    return `${base}/#/${m.page}/${m.token}\n\n(Or use the code ${m.token} with ${api}.)`;
  }

  /** Sends one message; throws Problem unavailable when there is no server or it refused. */
  async send(m: AccountMail): Promise<void> {
    if (!this.#email) throw new Problem('email_not_configured');
    const id = newId('acm');
    const body = `${m.intro}\n\n${this.linkText(m)}\n\nIf you did not expect this message, ignore it.`;
    const now = Date.now();
    try {
      await this.#email.deliver(
        {
          deliveryId: id,
          notificationId: id,
          workspaceId: m.workspaceId,
          channel: 'email',
          attempt: 1,
          notification: { kind: 'account', title: m.subject, body, data: null, createdAt: now, options: {}, fallback: false, subject: m.subject },
          recipient: { id: 'account', name: null, email: m.to, phone: null, locale: null, timezone: null, webhookUrl: null, webhookSecret: null, pushover: null, slackWebhookUrl: null, discordWebhookUrl: null, kakaoPhone: null },
        },
        AbortSignal.timeout(60_000),
      );
    } catch (err) {
      throw new Problem('unavailable', `The email to ${m.to} could not be sent: ${(err as Error).message}`);
    }
  }
}
