// One verifier per provider, chosen by the source's provider (domain/inbound.ts PROVIDERS).

import type { Provider } from '../../domain/inbound.ts';
import { verifyGithub } from './github.ts';
import { verifyGitlab } from './gitlab.ts';
import { verifyHmac, type HmacOptions } from './hmac.ts';
import { verifyJira } from './jira.ts';
import { verifyShopify } from './shopify.ts';
import { verifySlack } from './slack.ts';
import { verifyStandard } from './standard.ts';
import { verifyStripe } from './stripe.ts';
import { verifyTwilio } from './twilio.ts';
import { OK, type SignedRequest, type Verdict } from './verdict.ts';

export type { FailureReason, SignedRequest, Verdict } from './verdict.ts';
export type { HmacOptions } from './hmac.ts';

export interface VerifyContext {
  /** Twilio: the public URL the request was sent to. */
  readonly url: string;
  /** Twilio: the form parameters (empty for other bodies). */
  readonly form: Record<string, string>;
  readonly hmac: HmacOptions | undefined;
}

export function verify(provider: Provider, req: SignedRequest, secrets: readonly string[], ctx: VerifyContext): Verdict {
  switch (provider) {
    case 'github':
      return verifyGithub(req, secrets);
    case 'stripe':
      return verifyStripe(req, secrets);
    case 'slack':
      return verifySlack(req, secrets);
    case 'jira':
      return verifyJira(req, secrets);
    case 'gitlab':
      return verifyGitlab(req, secrets);
    case 'shopify':
      return verifyShopify(req, secrets);
    case 'twilio':
      return verifyTwilio(req, secrets, ctx.url, ctx.form);
    case 'standard':
      return verifyStandard(req, secrets);
    case 'hmac':
      return verifyHmac(req, secrets, ctx.hmac!);
    case 'none':
      return OK;
  }
}
