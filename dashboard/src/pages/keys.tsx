// Keys (admin): create a key (its secret is shown once, with a copy button), list keys without their
// secrets, revoke.
import { useState } from 'preact/hooks';
import { api, messageOf } from '../api.ts';
import { Empty, ErrorBox, Loading, Time, useGet } from '../ui.tsx';

interface Key {
  id: string;
  name: string;
  scopes: string[];
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
  created_by: string | null;
  expires_at: string | null;
}

export function Keys() {
  const { data, error, loading, reload } = useGet<{ data: Key[] }>('v1/keys');
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<string[]>(['send']);
  const [created, setCreated] = useState<{ id: string; key: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const [message, setMessage] = useState('');

  const create = async (e: Event) => {
    e.preventDefault();
    setMessage('');
    setCopied(false);
    try {
      const r = await api<{ id: string; key: string }>('POST', 'v1/keys', { name: name.trim(), scopes });
      setCreated(r);
      setName('');
      reload();
    } catch (err) {
      setMessage(messageOf(err));
    }
  };
  const revoke = async (k: Key) => {
    setMessage('');
    try {
      await api('DELETE', `v1/keys/${encodeURIComponent(k.id)}`);
      reload();
    } catch (err) {
      setMessage(messageOf(err));
    }
  };
  const toggle = (s: string) => setScopes(scopes.includes(s) ? scopes.filter((x) => x !== s) : [...scopes, s]);

  return (
    <>
      <h1>Keys</h1>
      <form class="filters" onSubmit={(e) => void create(e)} aria-label="Create a key">
        <label>
          Key name
          <input required maxLength={100} value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <fieldset class="inline">
          <legend>Scopes</legend>
          {['read', 'send', 'admin'].map((s) => (
            <label key={s}>
              <input type="checkbox" checked={scopes.includes(s)} onChange={() => toggle(s)} /> {s}
            </label>
          ))}
        </fieldset>
        <button type="submit" class="primary" disabled={scopes.length === 0}>
          Create key
        </button>
      </form>
      {created ? (
        <section class="result" aria-label="New key">
          <p>This key is shown only now. Store it somewhere safe.</p>
          <p>
            <code class="secret">{created.key}</code>{' '}
            <button
              type="button"
              onClick={() =>
                void navigator.clipboard.writeText(created.key).then(
                  () => setCopied(true),
                  () => setMessage('The browser refused the clipboard; select the key and copy it.'),
                )
              }
            >
              {copied ? 'Copied' : 'Copy'}
            </button>
          </p>
        </section>
      ) : null}
      {message ? (
        <p class="state error" role="alert">
          {message}
        </p>
      ) : null}
      <ErrorBox error={error} />
      {loading && !data ? <Loading /> : null}
      {data && data.data.length === 0 ? <Empty>No keys yet.</Empty> : null}
      {data && data.data.length > 0 ? (
        <div class="table-wrap">
          <table aria-label="Keys">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Prefix</th>
                <th scope="col">Scopes</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col">Action</th>
              </tr>
            </thead>
            <tbody>
              {data.data.map((k) => (
                <tr key={k.id}>
                  <td>{k.name}</td>
                  <td>
                    <code>{k.prefix}</code>
                  </td>
                  <td>{k.scopes.join(', ')}</td>
                  <td>
                    <Time iso={k.created_at} />
                  </td>
                  <td>
                    <Time iso={k.last_used_at} />
                  </td>
                  <td>
                    {k.revoked_at ? (
                      <span class="muted">revoked</span>
                    ) : (
                      <button type="button" aria-label={`Revoke ${k.name}`} onClick={() => void revoke(k)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </>
  );
}
