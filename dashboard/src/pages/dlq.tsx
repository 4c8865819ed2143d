// Dead letters (admin): exhausted deliveries, filtered by channel and error class, newest first.
// "Replay" puts one back to pending; "Discard" asks for a reason first. "Replay all matching" and
// "Discard all matching" (with a reason) first ask for a dry run (the count and a sample of ids,
// nothing changes); only "Confirm" starts the bulk job, whose progress is polled.
import { useEffect, useState } from 'preact/hooks';
import { api, messageOf } from '../api.ts';
import { PagedList, Status, Time } from '../ui.tsx';
import type { Delivery } from './notifications.tsx';

const CHANNELS = ['webhook', 'email', 'fcm', 'apns', 'webpush', 'pushover', 'sms', 'kakao', 'slack', 'discord', 'inbox'];

interface Job {
  id: string;
  action: 'replay' | 'discard';
  status: 'running' | 'completed' | 'failed';
  total: number;
  processed: number;
}

export function DeadLetters() {
  const [channel, setChannel] = useState('');
  const [errorClass, setErrorClass] = useState('');
  const [filters, setFilters] = useState<{ channel?: string; error?: string }>({});
  const [refresh, setRefresh] = useState(0);
  const [message, setMessage] = useState('');
  const [dry, setDry] = useState<{ action: 'replay' | 'discard'; count: number; sample: string[] } | null>(null);
  const [bulkReason, setBulkReason] = useState('');
  const [discarding, setDiscarding] = useState<{ id: string; reason: string } | null>(null);
  const [job, setJob] = useState<Job | null>(null);

  useEffect(() => {
    if (!job || job.status !== 'running') return;
    const t = setTimeout(() => {
      api<{ job: Job }>('GET', `v1/dlq/jobs/${encodeURIComponent(job.id)}`).then(
        (r) => {
          setJob(r.job);
          if (r.job.status !== 'running') setRefresh((x) => x + 1);
        },
        (err: unknown) => setMessage(messageOf(err)),
      );
    }, 1000);
    return () => clearTimeout(t);
  }, [job]);

  const replay = async (id: string) => {
    setMessage('');
    try {
      await api('POST', `v1/dlq/${encodeURIComponent(id)}/replay`, { reason: 'replayed from the dashboard' });
      setMessage(`Replayed ${id}.`);
    } catch (err) {
      setMessage(messageOf(err));
    }
    setRefresh((x) => x + 1);
  };
  const discard = async (id: string, reason: string) => {
    setMessage('');
    try {
      await api('POST', `v1/dlq/${encodeURIComponent(id)}/discard`, { reason });
      setMessage(`Discarded ${id}.`);
      setDiscarding(null);
    } catch (err) {
      setMessage(messageOf(err));
    }
    setRefresh((x) => x + 1);
  };
  const reasonFor = (action: 'replay' | 'discard') => (action === 'discard' ? bulkReason.trim() : bulkReason.trim() || 'bulk replay from the dashboard');
  const dryRun = async (action: 'replay' | 'discard') => {
    setMessage('');
    setJob(null);
    if (action === 'discard' && !bulkReason.trim()) {
      setMessage('A discard needs a reason.');
      return;
    }
    try {
      const r = await api<{ count: number; sample: string[] }>('POST', `v1/dlq/bulk-${action}`, { ...filters, ...(action === 'discard' ? { reason: reasonFor(action) } : {}) });
      setDry({ action, count: r.count, sample: r.sample });
    } catch (err) {
      setMessage(messageOf(err));
    }
  };
  const confirm = async () => {
    if (!dry) return;
    try {
      const r = await api<{ job: Job }>('POST', `v1/dlq/bulk-${dry.action}`, { ...filters, confirm: true, reason: reasonFor(dry.action) });
      setDry(null);
      setJob(r.job);
    } catch (err) {
      setMessage(messageOf(err));
    }
  };

  return (
    <>
      <h1>Dead letters</h1>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setDry(null);
          setFilters({ channel: channel || undefined, error: errorClass.trim() || undefined });
        }}
      >
        <label>
          Channel
          <select aria-label="Channel" value={channel} onChange={(e) => setChannel((e.target as HTMLSelectElement).value)}>
            <option value="">any</option>
            {CHANNELS.map((c) => (
              <option key={c}>{c}</option>
            ))}
          </select>
        </label>
        <label>
          Error class
          <input value={errorClass} placeholder="http_500" onInput={(e) => setErrorClass((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <div class="actions">
        <button type="button" onClick={() => void dryRun('replay')}>
          Replay all matching
        </button>
        <label class="inline-field">
          Reason
          <input value={bulkReason} placeholder="vendor outage fixed" onInput={(e) => setBulkReason((e.target as HTMLInputElement).value)} />
        </label>
        <button type="button" onClick={() => void dryRun('discard')}>
          Discard all matching
        </button>
      </div>
      {dry ? (
        <section class="result" aria-label={`Dry run of a bulk ${dry.action}`}>
          <p role="status">
            {dry.count} {dry.count === 1 ? 'delivery matches' : 'deliveries match'}; nothing has changed yet.
          </p>
          {dry.sample.length > 0 ? (
            <details open>
              <summary>Sample</summary>
              <ul class="ids">
                {dry.sample.map((id) => (
                  <li key={id}>
                    <code>{id}</code>
                  </li>
                ))}
              </ul>
            </details>
          ) : null}
          <button type="button" class="primary" disabled={dry.count === 0} onClick={() => void confirm()}>
            Confirm
          </button>{' '}
          <button type="button" onClick={() => setDry(null)}>
            Cancel
          </button>
        </section>
      ) : null}
      {job ? (
        <section class="result" aria-label={`Bulk ${job.action}`}>
          <label>
            Bulk {job.action} {job.status}: {job.processed} of {job.total}
            <progress max={Math.max(job.total, 1)} value={job.processed} />
          </label>
        </section>
      ) : null}
      {message ? <p role="status">{message}</p> : null}
      <PagedList<Delivery>
        path="v1/dlq"
        params={{ ...filters, limit: '25' }}
        refresh={refresh}
        label="Dead letters"
        empty="The dead-letter queue is empty for these filters."
        head={
          <tr>
            <th scope="col">Delivery</th>
            <th scope="col">Recipient</th>
            <th scope="col">Channel</th>
            <th scope="col">Error</th>
            <th scope="col">Dead since</th>
            <th scope="col">Action</th>
          </tr>
        }
        row={(d) => (
          <tr key={d.id}>
            <td>
              <a href={`#/notifications/${encodeURIComponent(d.notification_id)}`} title="The notification">
                <code>{d.id}</code>
              </a>
            </td>
            <td>{d.recipient}</td>
            <td>{d.channel}</td>
            <td>
              <Status value={d.error_class ?? 'error'} /> {d.last_error ?? ''}
            </td>
            <td>
              <Time iso={d.completed_at} />
            </td>
            <td>
              <button type="button" title={`Replay ${d.id}`} onClick={() => void replay(d.id)}>
                Replay
              </button>{' '}
              {discarding?.id === d.id ? (
                <form
                  class="inline-form"
                  onSubmit={(e) => {
                    e.preventDefault();
                    void discard(d.id, discarding.reason.trim());
                  }}
                >
                  <label>
                    Discard reason
                    <input required pattern=".*\S.*" value={discarding.reason} onInput={(e) => setDiscarding({ id: d.id, reason: (e.target as HTMLInputElement).value })} />
                  </label>
                  <button type="submit">Confirm discard</button>
                </form>
              ) : (
                <button type="button" title={`Discard ${d.id}`} onClick={() => setDiscarding({ id: d.id, reason: '' })}>
                  Discard
                </button>
              )}
            </td>
          </tr>
        )}
      />
    </>
  );
}
