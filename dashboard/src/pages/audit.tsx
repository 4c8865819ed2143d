// Audit log (admin): who did what, when, and the change; filtered by actor, action and target.
import { useState } from 'preact/hooks';
import { JsonView, PagedList, Time } from '../ui.tsx';

interface Entry {
  id: string;
  actor: string;
  action: string;
  target: string | null;
  reason: string | null;
  details: unknown;
  created_at: string;
}

export function Audit() {
  const [form, setForm] = useState({ actor: '', action: '', target: '' });
  const [applied, setApplied] = useState<Record<string, string | undefined>>({});
  const field = (k: keyof typeof form, label: string) => (
    <label>
      {label}
      <input value={form[k]} onInput={(e) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value })} />
    </label>
  );
  return (
    <>
      <h1>Audit log</h1>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied({ actor: form.actor.trim() || undefined, action: form.action.trim() || undefined, target: form.target.trim() || undefined });
        }}
      >
        {field('actor', 'Actor')}
        {field('action', 'Action')}
        {field('target', 'Target')}
        <button type="submit">Filter</button>
      </form>
      <PagedList<Entry>
        path="v1/audit"
        params={{ ...applied, limit: '50' }}
        label="Audit log"
        empty="No audit entries match."
        head={
          <tr>
            <th scope="col">When</th>
            <th scope="col">Who</th>
            <th scope="col">What</th>
            <th scope="col">Target</th>
            <th scope="col">Change</th>
          </tr>
        }
        row={(a) => (
          <tr key={a.id}>
            <td>
              <Time iso={a.created_at} />
            </td>
            <td>
              <code>{a.actor}</code>
            </td>
            <td>{a.action}</td>
            <td>{a.target ?? '—'}</td>
            <td>
              {a.reason ? <p>{a.reason}</p> : null}
              {a.details !== null && a.details !== undefined ? (
                <details>
                  <summary>Details</summary>
                  <JsonView value={a.details} />
                </details>
              ) : null}
            </td>
          </tr>
        )}
      />
    </>
  );
}
