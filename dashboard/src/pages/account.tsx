// Account: the signed-in person's own settings: password (every other session ends), TOTP (enrol:
// the secret shown once, confirmed with a code, then the recovery codes shown once; turn off with the
// password), and signing out every session.
import { useState } from 'preact/hooks';
import { api, messageOf } from '../api.ts';
import type { Me } from '../ui.tsx';
import { ErrorBox, Loading, useGet } from '../ui.tsx';

export function Account({ me, signOut }: { me: Me; signOut: () => void }) {
  const totp = useGet<{ enabled: boolean; pending: boolean; recovery_codes_left: number }>('v1/auth/totp');
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [message, setMessage] = useState('');
  const [enrolment, setEnrolment] = useState<{ secret: string; otpauth_uri: string } | null>(null);
  const [code, setCode] = useState('');
  const [recovery, setRecovery] = useState<string[] | null>(null);
  const [offPassword, setOffPassword] = useState('');

  const run = async (fn: () => Promise<string | void>) => {
    setMessage('');
    try {
      const m = await fn();
      if (m) setMessage(m);
    } catch (err) {
      setMessage(messageOf(err));
    }
  };
  const field = (label: string, value: string, set: (v: string) => void, kind: 'current' | 'new' | 'code' = 'current') => (
    <label>
      {label}
      {kind === 'code' ? (
        <input type="text" inputMode="numeric" required autocomplete="one-time-code" value={value} onInput={(e) => set((e.target as HTMLInputElement).value)} />
      ) : (
        <input type="password" required autocomplete={kind === 'new' ? 'new-password' : 'current-password'} value={value} onInput={(e) => set((e.target as HTMLInputElement).value)} />
      )}
    </label>
  );

  return (
    <>
      <h1>Account</h1>
      <dl class="facts">
        <dt>Name</dt>
        <dd>{me.user.name}</dd>
        <dt>Email</dt>
        <dd>{me.user.email}</dd>
      </dl>
      {message ? <p role="status">{message}</p> : null}

      <h2>Password</h2>
      <form
        class="stack"
        aria-label="Change password"
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => {
            const r = await api<{ sessions_ended: number }>('POST', 'v1/auth/password', { current_password: current, new_password: next });
            setCurrent('');
            setNext('');
            return `Password changed; ${r.sessions_ended} other ${r.sessions_ended === 1 ? 'session' : 'sessions'} ended.`;
          });
        }}
      >
        {field('Current password', current, setCurrent)}
        {field('New password', next, setNext, 'new')}
        <button type="submit">Change password</button>
      </form>

      <h2>Two-factor authentication (TOTP)</h2>
      <ErrorBox error={totp.error} />
      {!totp.data ? (
        totp.error ? null : <Loading />
      ) : totp.data.enabled ? (
        <form
          class="stack"
          aria-label="Turn off TOTP"
          onSubmit={(e) => {
            e.preventDefault();
            void run(async () => {
              await api('POST', 'v1/auth/totp/disable', { password: offPassword });
              setOffPassword('');
              setRecovery(null);
              totp.reload();
              return 'TOTP is off.';
            });
          }}
        >
          <p>TOTP is on; {totp.data.recovery_codes_left} recovery codes left.</p>
          {recovery ? (
            <section class="result" aria-label="Recovery codes">
              <p>Recovery codes, shown only now; each works once:</p>
              <ul class="ids">
                {recovery.map((c) => (
                  <li key={c}>
                    <code>{c}</code>
                  </li>
                ))}
              </ul>
            </section>
          ) : null}
          {field('Password to turn TOTP off', offPassword, setOffPassword)}
          <button type="submit">Turn off TOTP</button>
        </form>
      ) : enrolment ? (
        <form
          class="stack"
          aria-label="Confirm TOTP"
          onSubmit={(e) => {
            e.preventDefault();
            void run(async () => {
              const r = await api<{ recovery_codes: string[] }>('POST', 'v1/auth/totp/confirm', { code: code.trim() });
              setRecovery(r.recovery_codes);
              setEnrolment(null);
              setCode('');
              totp.reload();
              return 'TOTP is on.';
            });
          }}
        >
          <p>Add this secret to your authenticator app (shown only now), then enter the code it shows.</p>
          <p>
            Secret: <code class="secret">{enrolment.secret}</code>
          </p>
          <p>
            Or the URI: <code class="secret">{enrolment.otpauth_uri}</code>
          </p>
          {field('Code from the app', code, setCode, 'code')}
          <button type="submit" class="primary">
            Confirm
          </button>
        </form>
      ) : (
        <div class="actions">
          <button
            type="button"
            onClick={() =>
              void run(async () => {
                setEnrolment(await api<{ secret: string; otpauth_uri: string }>('POST', 'v1/auth/totp'));
              })
            }
          >
            Turn on TOTP
          </button>
        </div>
      )}

      <h2>Sessions</h2>
      <button
        type="button"
        onClick={() =>
          void run(async () => {
            await api('POST', 'v1/auth/logout-all');
            signOut();
          })
        }
      >
        Sign out everywhere
      </button>
    </>
  );
}
