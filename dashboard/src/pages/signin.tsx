// Sign-in: email and password, then a TOTP code when the server answers `totp_required`; buttons for
// the configured GitHub, Google and OpenID Connect providers (GET v1/auth/providers), which return to
// this page through the provider's callback.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, messageOf } from '../api.ts';

interface Provider {
  id: string;
  name: string;
  type: string;
  url: string;
}

export function SignIn({ onSignedIn }: { onSignedIn: () => Promise<void> }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [totp, setTotp] = useState('');
  const [askTotp, setAskTotp] = useState(false);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [providers, setProviders] = useState<Provider[]>([]);
  useEffect(() => {
    document.title = 'Sign in · Herald';
    api<{ data: Provider[] }>('GET', 'v1/auth/providers').then(
      (r) => setProviders(r.data),
      () => setProviders([]),
    );
  }, []);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await api('POST', 'v1/auth/login', { email, password, ...(askTotp ? { totp } : {}) });
      await onSignedIn();
    } catch (err) {
      if (err instanceof ApiError && err.problem.code === 'totp_required') {
        setAskTotp(true);
        setError('');
      } else setError(err instanceof ApiError && err.problem.code === 'invalid_credentials' ? 'Wrong email or password.' : messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  const startUrl = (p: Provider) => {
    const u = new URL(p.url, location.href);
    u.searchParams.set('redirect', `${location.pathname}#/overview`);
    return u.toString();
  };

  return (
    <main class="signin">
      <h1>Sign in to Herald</h1>
      <form onSubmit={(e) => void submit(e)}>
        <label>
          Email
          <input type="email" name="email" autocomplete="username" required value={email} onInput={(e) => setEmail((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Password
          <input type="password" name="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
        </label>
        {askTotp ? (
          <label>
            Authentication code
            <input
              name="totp"
              inputMode="numeric"
              autocomplete="one-time-code"
              required
              autoFocus
              value={totp}
              onInput={(e) => setTotp((e.target as HTMLInputElement).value)}
            />
            <small>The code from your authenticator app, or a recovery code.</small>
          </label>
        ) : null}
        {error ? (
          <p class="state error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" class="primary" disabled={busy}>
          Sign in
        </button>
      </form>
      {providers.length > 0 ? (
        <section class="providers" aria-label="Other ways to sign in">
          {providers.map((p) => (
            <a class="button" href={startUrl(p)} key={p.id}>
              Sign in with {p.name}
            </a>
          ))}
        </section>
      ) : null}
    </main>
  );
}
