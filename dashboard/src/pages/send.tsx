// Send: compose one notification (to a recipient or a topic; title and body, or a template with
// JSON data) and POST v1/notifications; the answer links to the notification's page.
import { useState } from 'preact/hooks';
import { api, messageOf } from '../api.ts';
import { Status } from '../ui.tsx';

interface Accepted {
  id: string;
  status: string;
  deliveries: { id: string; recipient: string; channel: string; status: string; reason?: string | null }[];
}

export function Send() {
  const [target, setTarget] = useState<'recipient' | 'topic'>('recipient');
  const [to, setTo] = useState('');
  const [kind, setKind] = useState('');
  const [title, setTitle] = useState('');
  const [body, setBody] = useState('');
  const [template, setTemplate] = useState('');
  const [data, setData] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [sent, setSent] = useState<Accepted | null>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    setError('');
    let parsed: unknown;
    if (data.trim()) {
      try {
        parsed = JSON.parse(data);
      } catch {
        setError('Data must be JSON, e.g. {"order": 1234}.');
        return;
      }
    }
    setBusy(true);
    try {
      const res = await api<Accepted>('POST', 'v1/notifications', {
        to: target === 'topic' ? { topic: to.trim() } : to.trim(),
        ...(kind.trim() ? { kind: kind.trim() } : {}),
        title,
        body,
        ...(template.trim() ? { template: template.trim() } : {}),
        ...(parsed !== undefined ? { data: parsed } : {}),
      });
      setSent(res);
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <h1>Send</h1>
      <form class="stack" onSubmit={(e) => void submit(e)}>
        <fieldset class="inline">
          <legend>Send to</legend>
          <label>
            <input type="radio" name="target" checked={target === 'recipient'} onChange={() => setTarget('recipient')} /> a recipient
          </label>
          <label>
            <input type="radio" name="target" checked={target === 'topic'} onChange={() => setTarget('topic')} /> a topic
          </label>
        </fieldset>
        <label>
          {target === 'topic' ? 'Topic' : 'Recipient'}
          <input required value={to} onInput={(e) => setTo((e.target as HTMLInputElement).value)} placeholder={target === 'topic' ? 'ops' : 'alice'} />
        </label>
        <label>
          Kind <small>(optional; default transactional)</small>
          <input value={kind} onInput={(e) => setKind((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Title
          <input value={title} onInput={(e) => setTitle((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Body
          <textarea rows={4} value={body} onInput={(e) => setBody((e.target as HTMLTextAreaElement).value)} />
        </label>
        <details>
          <summary>Template and data</summary>
          <label>
            Template <small>(optional: a template key; renders title and body per locale and channel)</small>
            <input value={template} onInput={(e) => setTemplate((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            Data <small>(JSON)</small>
            <textarea rows={3} value={data} onInput={(e) => setData((e.target as HTMLTextAreaElement).value)} />
          </label>
        </details>
        {error ? (
          <p class="state error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" class="primary" disabled={busy}>
          Send
        </button>
      </form>
      {sent ? (
        <section class="result" role="status" aria-label="Sent">
          <p>
            Accepted: <a href={`#/notifications/${encodeURIComponent(sent.id)}`}>{sent.id}</a>
          </p>
          <ul>
            {sent.deliveries.map((d) => (
              <li key={d.id}>
                {d.recipient} · {d.channel} <Status value={d.status} /> {d.reason ?? ''}
              </li>
            ))}
          </ul>
        </section>
      ) : null}
    </>
  );
}
