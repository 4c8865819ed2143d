// Background work on deliveries that are already sent: how each channel's vendor receipts are
// checked (queue/receipts.ts polls the due ones and applies what a check answers).

import { pollReceipt } from '../channels/pushover.ts';
import type { SafeHttp } from '../net/safe-http.ts';
import type { ReceiptChecker } from '../queue/receipts.ts';
import type { ChannelName } from '../channels/channel.ts';

/**
 * Receipt checkers by channel. Pushover (emergency priority): acknowledged -> `acknowledged` with
 * who and when; expired unacknowledged -> `undelivered`; otherwise nothing yet.
 */
export function receiptCheckers(http: SafeHttp): Partial<Record<ChannelName, ReceiptChecker>> {
  return {
    pushover: async (creds, receipt, signal) => {
      const r = await pollReceipt(http, creds, receipt, signal);
      if (r.acknowledged) {
        return { status: 'acknowledged', detail: { acknowledged_by: r.acknowledgedBy ?? null, acknowledged_by_device: r.acknowledgedByDevice ?? null, acknowledged_at: r.acknowledgedAt ? new Date(r.acknowledgedAt).toISOString() : null } };
      }
      if (r.expired) return { status: 'undelivered', detail: { receipt_expired_at: new Date(r.expiresAt).toISOString() } };
      return {};
    },
  };
}
