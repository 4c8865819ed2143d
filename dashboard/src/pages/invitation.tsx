// The invitation link of the email (`#/invitation/<token>`): a signed-in person accepts with one
// button (then acts in the organization); anyone else registers with a name and a password, then
// signs in.
import { useState } from 'preact/hooks';
import { api, messageOf } from '../api.ts';

export function AcceptInvitation({ token, signedIn, done }: { token: string; signedIn: boolean; done: (org: string | null) => void }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const accept = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const r = await api<{ organization: { id: string } }>('POST', `v1/invitations/${encodeURIComponent(token)}/accept`, signedIn ? {} : { name, password });
      done(signedIn ? r.organization.id : null);
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <h1>Accept the invitation</h1>
      <form onSubmit={(e) => void accept(e)}>
        {signedIn ? (
          <p>Join the organization with your account.</p>
        ) : (
          <>
            <p>Create your account to join. You sign in with the invited email address afterwards.</p>
            <label>
              Name
              <input required autocomplete="name" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
            </label>
            <label>
              Choose a password
              <input type="password" required autocomplete="new-password" value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
            </label>
          </>
        )}
        {error ? (
          <p class="state error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" class="primary" disabled={busy}>
          Accept invitation
        </button>
      </form>
    </main>
  );
}
