// Inbound forwards (subscriptions' `forward` action): a notification of kind FORWARD_KIND with one
// webhook delivery to the subscription's reserved recipient. Its data is ForwardData; the webhook
// channel sends the original body as received, byte for byte (a body kept as base64 because it is
// not UTF-8 is decoded back to its bytes), with its content type, instead of a notification
// envelope, signed with Standard Webhooks over those bytes like every webhook, and names the event
// in headers.
// FORWARD_KIND, like OPERATOR_KIND, starts with "_": no API request can name it.

export const FORWARD_KIND = '_forward';

export interface ForwardData {
  event_id: string;
  subscription_id: string;
  event_type: string | null;
  path: string;
  content_type: string;
  /** The original body: its text, or base64 of its bytes when they are not UTF-8. */
  body: string;
  encoding: 'utf8' | 'base64';
}

/** The request a forward delivery sends, or undefined when `data` is not a forward's. */
export function forwardRequest(data: unknown): { contentType: string; body: string | Buffer; headers: Record<string, string> } | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const d = data as Partial<ForwardData>;
  if (typeof d.body !== 'string' || typeof d.content_type !== 'string' || typeof d.event_id !== 'string') return undefined;
  return {
    contentType: d.content_type,
    body: d.encoding === 'base64' ? Buffer.from(d.body, 'base64') : d.body,
    headers: {
      'herald-event-id': d.event_id,
      ...(typeof d.event_type === 'string' && { 'herald-event-type': d.event_type }),
      ...(typeof d.path === 'string' && { 'herald-source-path': d.path }),
      ...(typeof d.subscription_id === 'string' && { 'herald-subscription-id': d.subscription_id }),
    },
  };
}
