// Notifications: the list (newest first, by recipient and status, paged by cursor) and one
// notification with its deliveries, their attempt logs, and the actions the role allows (cancel the
// waiting deliveries; replay an exhausted delivery, which is an admin's DLQ action).
import { useEffect, useState } from 'preact/hooks';
import { api, messageOf } from '../api.ts';
import { can, ErrorBox, JsonView, Loading, PagedList, Status, Time, useGet, type Role } from '../ui.tsx';

const STATUSES = ['accepted', 'in_progress', 'sent', 'partial', 'failed', 'skipped', 'cancelled'];

interface Attempt {
  attempt: number;
  started_at: string;
  duration_ms: number;
  outcome: string;
  error_class: string | null;
  error: string | null;
  http_status: number | null;
  smtp_reply: string | null;
  response: string | null;
}
export interface Delivery {
  id: string;
  notification_id: string;
  recipient: string;
  channel: string;
  device: string | null;
  status: string;
  reason: string | null;
  attempts: number;
  next_attempt_at: string | null;
  error_class: string | null;
  last_error: string | null;
  created_at: string;
  completed_at: string | null;
  attempt_log?: Attempt[];
}
interface Notification {
  id: string;
  kind: string;
  title: string;
  body: string;
  data: unknown;
  metadata: unknown;
  status: string;
  template: string | null;
  created_at: string;
  deliveries: Delivery[];
}

/** The list; `recipient` given: one recipient's notification history. */
export function Notifications({ recipient: fixed }: { recipient?: string }) {
  const [recipient, setRecipient] = useState(fixed ?? '');
  const [status, setStatus] = useState('');
  const [applied, setApplied] = useState<Record<string, string | undefined>>({ recipient: fixed });
  return (
    <>
      <h1>{fixed ? `Notifications to ${fixed}` : 'Notifications'}</h1>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied({ recipient: recipient.trim() || undefined, status: status || undefined });
        }}
      >
        <label>
          Recipient id
          <input value={recipient} onInput={(e) => setRecipient((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Status
          <select aria-label="Status" value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value)}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <button type="submit">Search</button>
      </form>
      <PagedList<Notification>
        path="v1/notifications"
        params={{ ...applied, limit: '25' }}
        label="Notifications"
        empty="No notifications match."
        head={
          <tr>
            <th scope="col">Title</th>
            <th scope="col">Kind</th>
            <th scope="col">Status</th>
            <th scope="col">Recipients</th>
            <th scope="col">Accepted</th>
          </tr>
        }
        row={(n) => (
          <tr key={n.id}>
            <td>
              <a href={`#/notifications/${encodeURIComponent(n.id)}`}>{n.title || n.body.slice(0, 60) || n.id}</a>
            </td>
            <td>{n.kind}</td>
            <td>
              <Status value={n.status} />
            </td>
            <td>{[...new Set(n.deliveries.map((d) => d.recipient))].join(', ')}</td>
            <td>
              <Time iso={n.created_at} />
            </td>
          </tr>
        )}
      />
    </>
  );
}

export function NotificationDetail({ id, role }: { id: string; role: Role }) {
  const { data: n, error, loading, reload } = useGet<Notification>(`v1/notifications/${encodeURIComponent(id)}`);
  const [actionError, setActionError] = useState('');
  // While a delivery can still change (waiting, being sent, or sent and awaiting a vendor's report
  // is not counted: that may never come), the page reads the notification again every 2 s.
  const settling = n?.deliveries.some((d) => ['pending', 'scheduled', 'throttled', 'standby', 'sending', 'failed'].includes(d.status)) ?? false;
  useEffect(() => {
    if (!settling) return;
    const t = setInterval(reload, 2000);
    return () => clearInterval(t);
  }, [settling, reload]);
  const act = async (fn: () => Promise<unknown>) => {
    setActionError('');
    try {
      await fn();
    } catch (err) {
      setActionError(messageOf(err));
    }
    reload();
  };
  if (!n) return error ? <ErrorBox error={error} /> : <Loading />;
  const waiting = n.deliveries.some((d) => ['pending', 'scheduled', 'throttled', 'standby', 'failed'].includes(d.status));
  return (
    <>
      <p>
        <a href="#/notifications">← Notifications</a>
      </p>
      <h1 class="wrap">{n.title || n.id}</h1>
      <dl class="facts">
        <dt>Status</dt>
        <dd>
          <Status value={n.status} />
        </dd>
        <dt>Id</dt>
        <dd>
          <code>{n.id}</code>
        </dd>
        <dt>Kind</dt>
        <dd>{n.kind}</dd>
        <dt>Accepted</dt>
        <dd>
          <Time iso={n.created_at} />
        </dd>
        {n.template ? (
          <>
            <dt>Template</dt>
            <dd>{n.template}</dd>
          </>
        ) : null}
      </dl>
      <h2>Body</h2>
      <p class="body-text">{n.body || '—'}</p>
      {n.data !== null && n.data !== undefined ? (
        <details>
          <summary>Data</summary>
          <JsonView value={n.data} />
        </details>
      ) : null}
      <div class="actions">
        <button type="button" onClick={reload} disabled={loading}>
          Refresh
        </button>
        {can(role, 'send') && waiting ? (
          <button type="button" onClick={() => void act(() => api('DELETE', `v1/notifications/${encodeURIComponent(n.id)}`))}>
            Cancel waiting deliveries
          </button>
        ) : null}
      </div>
      {actionError ? (
        <p class="state error" role="alert">
          {actionError}
        </p>
      ) : null}
      <h2>Deliveries</h2>
      {n.deliveries.map((d) => (
        <section class="delivery" key={d.id} aria-label={`Delivery ${d.id}`}>
          <h3>
            {d.recipient} · {d.channel}
            {d.device ? ` · ${d.device}` : ''} <Status value={d.status} />
          </h3>
          <dl class="facts">
            <dt>Delivery</dt>
            <dd>
              <code>{d.id}</code>
            </dd>
            {d.reason ? (
              <>
                <dt>Reason</dt>
                <dd>{d.reason}</dd>
              </>
            ) : null}
            {d.last_error ? (
              <>
                <dt>Last error</dt>
                <dd>
                  {d.error_class ? `${d.error_class}: ` : ''}
                  {d.last_error}
                </dd>
              </>
            ) : null}
            <dt>Attempts</dt>
            <dd>{d.attempts}</dd>
            {d.next_attempt_at ? (
              <>
                <dt>Next attempt</dt>
                <dd>
                  <Time iso={d.next_attempt_at} />
                </dd>
              </>
            ) : null}
          </dl>
          {can(role, 'admin') && d.status === 'exhausted' ? (
            <button type="button" onClick={() => void act(() => api('POST', `v1/dlq/${encodeURIComponent(d.id)}/replay`, { reason: 'replayed from the dashboard' }))}>
              Replay
            </button>
          ) : null}
          <AttemptLog attempts={d.attempt_log ?? []} />
        </section>
      ))}
    </>
  );
}

export function AttemptLog({ attempts }: { attempts: Attempt[] }) {
  if (attempts.length === 0) return <p class="muted">No attempts yet.</p>;
  return (
    <div class="table-wrap">
      <table aria-label="Attempt log">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Time</th>
            <th scope="col">Duration</th>
            <th scope="col">Outcome</th>
            <th scope="col">Error class</th>
            <th scope="col">Response</th>
          </tr>
        </thead>
        <tbody>
          {attempts.map((a) => (
            <tr key={a.attempt}>
              <td>{a.attempt}</td>
              <td>
                <Time iso={a.started_at} />
              </td>
              <td>{a.duration_ms} ms</td>
              <td>
                <Status value={a.outcome} />
              </td>
              <td>{a.error_class ?? '—'}</td>
              <td class="excerpt">{[a.http_status ?? a.smtp_reply, a.error, a.response].filter((x) => x !== null && x !== '').join(' · ') || '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
