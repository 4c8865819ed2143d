// Read views of the catalog: recipients (search by id, name or email), templates (keys, and one
// template's variants as text: a template's source is shown, never rendered as HTML) and providers
// (configuration with secrets masked by the server, and this node's circuit state).
import { useState } from 'preact/hooks';
import { Empty, ErrorBox, JsonView, Loading, PagedList, Status, Time, useGet } from '../ui.tsx';

interface Recipient {
  id: string;
  name: string | null;
  email: string | null;
  phone: string | null;
  locale: string | null;
  timezone: string | null;
  webhook: { url: string; disabled_at: string | null } | null;
}

export function Recipients() {
  const [q, setQ] = useState('');
  const [applied, setApplied] = useState('');
  return (
    <>
      <h1>Recipients</h1>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(q.trim());
        }}
      >
        <label>
          Search recipients
          <input value={q} placeholder="id, name or email" onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Search</button>
      </form>
      <PagedList<Recipient>
        path="v1/recipients"
        params={{ q: applied || undefined, limit: '25' }}
        label="Recipients"
        empty="No recipients match."
        head={
          <tr>
            <th scope="col">Id</th>
            <th scope="col">Name</th>
            <th scope="col">Email</th>
            <th scope="col">Phone</th>
            <th scope="col">Webhook</th>
            <th scope="col">Locale · zone</th>
            <th scope="col">History</th>
          </tr>
        }
        row={(r) => (
          <tr key={r.id}>
            <td>
              <code>{r.id}</code>
            </td>
            <td>{r.name ?? '—'}</td>
            <td>{r.email ?? '—'}</td>
            <td>{r.phone ?? '—'}</td>
            <td class="excerpt">{r.webhook ? `${r.webhook.url}${r.webhook.disabled_at ? ' (disabled)' : ''}` : '—'}</td>
            <td>{[r.locale, r.timezone].filter(Boolean).join(' · ') || '—'}</td>
            <td>
              <a href={`#/recipients/${encodeURIComponent(r.id)}`} aria-label={`Notifications of ${r.id}`}>
                Notifications
              </a>
            </td>
          </tr>
        )}
      />
    </>
  );
}

interface TemplateSummary {
  key: string;
  latest_version: number;
  updated_at: string;
}
interface Template {
  key: string;
  version: number;
  variants: { locale: string; channel?: string | null; title?: string | null; body?: string | null; subject?: string | null; html?: string | null }[];
}

export function Templates() {
  const [open, setOpen] = useState<string | null>(null);
  return (
    <>
      <h1>Templates</h1>
      <PagedList<TemplateSummary>
        path="v1/templates"
        params={{ limit: '25' }}
        label="Templates"
        empty="No templates yet. Create one with PUT /v1/templates/{key}."
        head={
          <tr>
            <th scope="col">Key</th>
            <th scope="col">Version</th>
            <th scope="col">Updated</th>
          </tr>
        }
        row={(t) => (
          <tr key={t.key}>
            <td>
              <button type="button" class="link" aria-expanded={open === t.key} onClick={() => setOpen(open === t.key ? null : t.key)}>
                {t.key}
              </button>
            </td>
            <td>{t.latest_version}</td>
            <td>
              <Time iso={t.updated_at} />
            </td>
          </tr>
        )}
      />
      {open ? <TemplateSource keyName={open} /> : null}
    </>
  );
}

function TemplateSource({ keyName }: { keyName: string }) {
  const { data, error } = useGet<Template>(`v1/templates/${encodeURIComponent(keyName)}`);
  if (!data) return error ? <ErrorBox error={error} /> : <Loading />;
  return (
    <section aria-label={`Template ${keyName}`}>
      <h2>
        {data.key} · version {data.version}
      </h2>
      {data.variants.map((v, i) => (
        <article class="variant" key={i}>
          <h3>
            {v.locale}
            {v.channel ? ` · ${v.channel}` : ' · every channel'}
          </h3>
          {(['subject', 'title', 'body', 'html'] as const).map((f) =>
            v[f] ? (
              <div key={f}>
                <h4>{f}</h4>
                <pre class="source">{v[f]}</pre>
              </div>
            ) : null,
          )}
        </article>
      ))}
    </section>
  );
}

interface Provider {
  provider: string;
  channel: string;
  configured: boolean;
  config: Record<string, unknown> | null;
  base_url: string | null;
  circuit: string | null;
  updated_at: string | null;
}

export function Providers() {
  const { data, error, loading } = useGet<{ data: Provider[] }>('v1/providers');
  return (
    <>
      <h1>Providers</h1>
      <ErrorBox error={error} />
      {loading && !data ? <Loading /> : null}
      {data && data.data.length === 0 ? <Empty>No providers.</Empty> : null}
      {data && data.data.length > 0 ? (
        <div class="table-wrap">
          <table aria-label="Providers">
            <thead>
              <tr>
                <th scope="col">Provider</th>
                <th scope="col">Channel</th>
                <th scope="col">Configured</th>
                <th scope="col">Circuit</th>
                <th scope="col">Configuration (masked)</th>
              </tr>
            </thead>
            <tbody>
              {data.data.map((p) => (
                <tr key={p.provider}>
                  <td>{p.provider}</td>
                  <td>{p.channel}</td>
                  <td>{p.configured ? 'yes' : 'no'}</td>
                  <td>{p.circuit ? <Status value={p.circuit} /> : <span class="muted">no workers here</span>}</td>
                  <td>{p.config ? <JsonView value={p.config} /> : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </>
  );
}
