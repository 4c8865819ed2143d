// The app's frame. States: `loading` (asking GET v1/auth/me) -> `signed-out` (the sign-in page) or
// `signed-in` (navigation, organization switcher, the page named by the URL's hash). Any 401 that a
// refresh cannot cure returns to `signed-out`. Routes live in the hash (`#/notifications/ntf_…`),
// so the server serves one page at the deployment's root.
import { useEffect, useState } from 'preact/hooks';
import { api, whenSignedOut } from './api.ts';
import { SignIn } from './pages/signin.tsx';
import { Overview } from './pages/overview.tsx';
import { Notifications, NotificationDetail } from './pages/notifications.tsx';
import { Send } from './pages/send.tsx';
import { Recipients, Templates, Providers } from './pages/catalog.tsx';
import { DeadLetters } from './pages/dlq.tsx';
import { Keys } from './pages/keys.tsx';
import { Members } from './pages/members.tsx';
import { Audit } from './pages/audit.tsx';
import { AcceptInvitation } from './pages/invitation.tsx';
import { Account } from './pages/account.tsx';
import { can, Loading, type Me } from './ui.tsx';

type Session = { state: 'loading' } | { state: 'signed-out' } | { state: 'signed-in'; me: Me };

interface Route {
  path: string;
  label: string;
  needs: 'read' | 'send' | 'admin';
}
/** The navigation, in order; a link the role may not use is absent. */
const NAV: Route[] = [
  { path: 'overview', label: 'Overview', needs: 'read' },
  { path: 'notifications', label: 'Notifications', needs: 'read' },
  { path: 'send', label: 'Send', needs: 'send' },
  { path: 'recipients', label: 'Recipients', needs: 'read' },
  { path: 'templates', label: 'Templates', needs: 'read' },
  { path: 'providers', label: 'Providers', needs: 'read' },
  { path: 'dead-letters', label: 'Dead letters', needs: 'admin' },
  { path: 'keys', label: 'Keys', needs: 'admin' },
  { path: 'members', label: 'Members', needs: 'read' },
  { path: 'audit', label: 'Audit log', needs: 'admin' },
  { path: 'account', label: 'Account', needs: 'read' },
];

function useHash(): string[] {
  const read = () => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [parts, setParts] = useState(read);
  useEffect(() => {
    const on = () => setParts(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return parts;
}

export function App() {
  const [session, setSession] = useState<Session>({ state: 'loading' });
  const [route, ...params] = useHash();
  const load = () =>
    api<Me>('GET', 'v1/auth/me').then(
      (me) => setSession({ state: 'signed-in', me }),
      () => setSession({ state: 'signed-out' }),
    );
  useEffect(() => {
    whenSignedOut(() => setSession({ state: 'signed-out' }));
    void load();
  }, []);
  if (session.state === 'loading') return <Loading what="Opening Herald" />;
  if (route === 'invitation' && params[0]) {
    const token = params[0];
    const done = async (org: string | null) => {
      if (org) await api('POST', 'v1/auth/switch', { org });
      location.hash = '#/overview';
      await load();
    };
    return <AcceptInvitation token={token} signedIn={session.state === 'signed-in'} done={(org) => void done(org)} />;
  }
  if (session.state === 'signed-out') return <SignIn onSignedIn={load} />;
  return <Shell me={session.me} reload={load} signOut={() => setSession({ state: 'signed-out' })} />;
}

function Shell({ me, reload, signOut }: { me: Me; reload: () => Promise<void>; signOut: () => void }) {
  const [page = 'overview', ...rest] = useHash();
  const role = me.organization.role;
  const route = NAV.find((r) => r.path === page);
  const allowed = !route || can(role, route.needs);
  const [navOpen, setNavOpen] = useState(false);
  useEffect(() => setNavOpen(false), [page]);
  useEffect(() => {
    document.title = `${route?.label ?? 'Herald'} · Herald`;
  }, [route]);

  const switchOrg = async (org: string) => {
    await api('POST', 'v1/auth/switch', { org });
    await reload();
  };
  const doSignOut = async () => {
    await api('POST', 'v1/auth/logout').catch(() => undefined);
    signOut();
  };

  return (
    <div class="shell">
      <header class="top">
        <a class="brand" href="#/overview">
          Herald
        </a>
        <button type="button" class="menu" aria-expanded={navOpen} aria-controls="nav" onClick={() => setNavOpen(!navOpen)}>
          Menu
        </button>
        <label class="org">
          <span>Organization</span>
          <select aria-label="Organization" value={me.organization.id} onChange={(e) => void switchOrg((e.target as HTMLSelectElement).value)}>
            {me.organizations.map((o) => (
              <option value={o.id} key={o.id}>
                {o.name} ({o.role})
              </option>
            ))}
          </select>
        </label>
        <span class="who" title={me.user.email}>
          {me.user.name}
        </span>
        <button type="button" onClick={() => void doSignOut()}>
          Sign out
        </button>
      </header>
      <nav id="nav" class={navOpen ? 'side open' : 'side'} aria-label="Main">
        <ul>
          {NAV.filter((r) => can(role, r.needs)).map((r) => (
            <li key={r.path}>
              <a href={`#/${r.path}`} aria-current={r.path === page ? 'page' : undefined}>
                {r.label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main class="content">{allowed ? <PageFor page={page} rest={rest} me={me} signOut={signOut} /> : <p class="state">Your role ({role}) cannot open this page.</p>}</main>
    </div>
  );
}

function PageFor({ page, rest, me, signOut }: { page: string; rest: string[]; me: Me; signOut: () => void }) {
  const role = me.organization.role;
  switch (page) {
    case 'overview':
      return <Overview />;
    case 'notifications':
      return rest[0] ? <NotificationDetail id={rest[0]} role={role} /> : <Notifications />;
    case 'send':
      return <Send />;
    case 'recipients':
      return rest[0] ? <Notifications recipient={rest[0]} key={rest[0]} /> : <Recipients />;
    case 'templates':
      return <Templates />;
    case 'providers':
      return <Providers />;
    case 'dead-letters':
      return <DeadLetters />;
    case 'keys':
      return <Keys />;
    case 'members':
      return <Members me={me} />;
    case 'audit':
      return <Audit />;
    case 'account':
      return <Account me={me} signOut={signOut} />;
    default:
      return (
        <>
          <h1>Not found</h1>
          <p class="state">
            There is no page “{page}”. <a href="#/overview">Go to the overview</a>.
          </p>
        </>
      );
  }
}
