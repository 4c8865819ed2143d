// Operator alerts: Standard-Webhooks-signed events to the workspace's operator_webhook, sent
// through the normal delivery queue (domain/operator.ts has the rules and the body).
//
// Set-up: the workspace setting operator_webhook {url, secret?} (PUT /v1/settings) is stored as
// the workspace's reserved recipient (alerts/store.ts). No secret given: the current one is kept,
// or a whsec_ secret is generated, and the PUT's answer shows it once; GET shows it masked.
//
// Raising: this service listens to the events port and acts on the events THIS node emitted (each
// event is announced on every node, but one alert per event is wanted):
//   delivery.exhausted  → an alert to that delivery's workspace;
//   provider.failing    → an alert to that workspace, at most one per provider within
//                         PROVIDER_FAILING_WINDOW_MS across all nodes (a dedupe key of the alert);
//   circuit.opened/closed (per node, per vendor lane, all workspaces share it) → an alert to
//                         every workspace with an operator webhook that can use the channel.
// An alert is a notification of kind OPERATOR_KIND with one webhook delivery to the reserved
// recipient, committed by the store's accept batch like any send: it is retried on the retry
// schedule, logged in the attempt log, and lands in the DLQ when exhausted, from where it can be
// replayed. The webhook channel sends its body {type, timestamp, data}; webhook-id is the
// delivery id. An alert's own delivery never raises an alert (no loops).
//
// Best effort like the events it follows: an event lost before this node heard it (a crash
// between commit and announcement) raises no alert; the store (the DLQ) still shows the delivery.

import type { Logger } from 'pino';
import type { SecretBox } from '../auth/secret-box.ts';
import type { ChannelName } from '../channels/channel.ts';
import type { HeraldEvent } from '../domain/events.ts';
import { newId } from '../domain/ids.ts';
import { ALERT_TYPES, alertBody, alertSummary, OPERATOR_KIND, OPERATOR_RECIPIENT, PROVIDER_FAILING_WINDOW_MS, raisesAlert, type AlertBody } from '../domain/operator.ts';
import { generateWebhookSecret } from '../domain/webhook-signature.ts';
import type { Events } from '../events/events.ts';
import type { AcceptItem, StoreAdapter } from '../store/adapter.ts';
import { reservedWebhookItem } from '../store/reserved-webhook.ts';
import { getOperatorWebhook, putOperatorWebhook, workspacesWithOperatorWebhook } from './store.ts';

/** The operator webhook as settings show it. */
export interface OperatorWebhookView {
  url: string;
  /** Whole only in the answer to the PUT that set it; else masked (`whsec_abc…`). */
  secret: string;
  /** Set when the receiver answered 410 Gone: no alerts go out until the setting is PUT again. */
  disabled_at: string | null;
}

export class AlertsService {
  readonly #store: StoreAdapter;
  readonly #secrets: SecretBox;
  readonly #log: Logger;
  readonly #wake: (channels: string[]) => void;
  readonly #channels: (workspaceId: string) => Promise<readonly ChannelName[]>;
  #unlisten: (() => void) | undefined;
  readonly #pending = new Set<Promise<void>>();

  constructor(opts: {
    store: StoreAdapter;
    secrets: SecretBox;
    log: Logger;
    /** Wakes the workers of these channels (an alert was committed). */
    wake: (channels: string[]) => void;
    /** The channels a workspace can deliver on (circuit alerts go where the channel is used). */
    channels: (workspaceId: string) => Promise<readonly ChannelName[]>;
  }) {
    this.#store = opts.store;
    this.#secrets = opts.secrets;
    this.#log = opts.log;
    this.#wake = opts.wake;
    this.#channels = opts.channels;
  }

  /** The workspace's operator webhook, secret masked; null when it has none. */
  async get(workspaceId: string): Promise<OperatorWebhookView | null> {
    const hook = await getOperatorWebhook(this.#store.db, workspaceId);
    if (!hook) return null;
    return { url: hook.url, secret: mask(this.#secrets.open(hook.sealedSecret)), disabled_at: hook.disabledAt === null ? null : new Date(hook.disabledAt).toISOString() };
  }

  /**
   * Sets (or, with null, removes) the workspace's operator webhook. Without a secret the current
   * one is kept, or one is generated. Returns the view with the secret whole.
   */
  async put(workspaceId: string, input: { url: string; secret?: string | undefined } | null): Promise<OperatorWebhookView | null> {
    const now = Date.now();
    if (input === null) {
      await putOperatorWebhook(this.#store.db, workspaceId, null, now);
      return null;
    }
    const current = input.secret === undefined ? await getOperatorWebhook(this.#store.db, workspaceId) : undefined;
    const secret = input.secret ?? (current ? this.#secrets.open(current.sealedSecret) : generateWebhookSecret());
    await putOperatorWebhook(this.#store.db, workspaceId, { url: input.url, sealedSecret: this.#secrets.seal(secret) }, now);
    return { url: input.url, secret, disabled_at: null };
  }

  /** Starts raising alerts for the events this node emits. */
  listen(events: Events): void {
    this.#unlisten ??= events.listen({
      types: ALERT_TYPES,
      onEvent: (e, local) => {
        if (!local || !raisesAlert(e)) return;
        const p = this.#raise(e)
          .catch((err: unknown) => this.#log.warn({ err, event: e.type }, 'could not raise an operator alert'))
          .finally(() => this.#pending.delete(p));
        this.#pending.add(p);
      },
    });
  }

  /** Stops listening and waits for alerts being written. */
  async stop(): Promise<void> {
    this.#unlisten?.();
    this.#unlisten = undefined;
    await Promise.allSettled([...this.#pending]);
  }

  async #raise(e: HeraldEvent): Promise<void> {
    switch (e.type) {
      case 'delivery.exhausted':
        return this.#send([e.workspace_id], alertBody(e));
      case 'provider.failing':
        return this.#send([e.workspace_id], alertBody(e), { key: `provider.failing:${e.provider}`, windowMs: PROVIDER_FAILING_WINDOW_MS });
      case 'circuit.opened':
      case 'circuit.closed': {
        const all = await workspacesWithOperatorWebhook(this.#store.db);
        const using = await Promise.all(all.map(async (ws) => ((await this.#channels(ws)).includes(e.channel as ChannelName) ? ws : undefined)));
        return this.#send(using.filter((ws) => ws !== undefined), alertBody(e));
      }
      default:
        return;
    }
  }

  /** Commits one alert per workspace that has an operator webhook, and wakes the webhook workers. */
  async #send(workspaces: readonly string[], body: AlertBody, dedupe?: { key: string; windowMs: number }): Promise<void> {
    const now = Date.now();
    const items: AcceptItem[] = [];
    for (const ws of workspaces) {
      if (!(await getOperatorWebhook(this.#store.db, ws))) continue;
      items.push(alertItem(ws, body, now, dedupe));
    }
    if (items.length === 0) return;
    const outcomes = await this.#store.acceptBatch(items);
    if (outcomes.some((o) => o === 'ok')) this.#wake(['webhook']);
  }
}

/** `whsec_` and the first 4 characters of the key, then an ellipsis. */
function mask(secret: string): string {
  return `${secret.slice(0, 10)}…`;
}

/** The notification and its one delivery that carry an alert to the workspace's operator webhook. */
function alertItem(workspaceId: string, body: AlertBody, now: number, dedupe?: { key: string; windowMs: number }): AcceptItem {
  const { title, body: text } = alertSummary(body);
  return reservedWebhookItem({
    workspaceId, id: newId('ntf'), recipient: OPERATOR_RECIPIENT, kind: OPERATOR_KIND, title, body: text, data: body, now,
    dedupe: dedupe && { key: dedupe.key, expiresAt: now + dedupe.windowMs },
  });
}
