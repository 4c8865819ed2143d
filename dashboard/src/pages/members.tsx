// Members: everyone in the organization sees the list; admins and owners also invite (email and
// role) and change roles (an admin only below owner, as the server enforces).
import { useState } from 'preact/hooks';
import { api, messageOf } from '../api.ts';
import type { Me } from '../ui.tsx';
import { can, Empty, ErrorBox, Loading, Time, useGet, type Role } from '../ui.tsx';

interface Member {
  user: string;
  email: string;
  name: string;
  role: Role;
  since: string;
}
interface Invitation {
  id: string;
  email: string;
  role: Role;
  status: string;
  created_at: string;
  expires_at: string;
}

const ROLES: Role[] = ['viewer', 'member', 'admin', 'owner'];

export function Members({ me }: { me: Me }) {
  const org = encodeURIComponent(me.organization.id);
  const admin = can(me.organization.role, 'admin');
  const members = useGet<{ data: Member[] }>(`v1/orgs/${org}/members`);
  const invitations = useGet<{ data: Invitation[] }>(admin ? `v1/orgs/${org}/invitations` : null);
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Role>('member');
  const [message, setMessage] = useState('');
  const grantable = ROLES.filter((r) => me.organization.role === 'owner' || r !== 'owner');

  const invite = async (e: Event) => {
    e.preventDefault();
    setMessage('');
    try {
      await api('POST', `v1/orgs/${org}/invitations`, { email: email.trim(), role });
      setMessage(`Invited ${email.trim()} as ${role}.`);
      setEmail('');
      invitations.reload();
    } catch (err) {
      setMessage(messageOf(err));
    }
  };
  const setMemberRole = async (m: Member, r: string) => {
    setMessage('');
    try {
      await api('PUT', `v1/orgs/${org}/members/${encodeURIComponent(m.user)}`, { role: r });
    } catch (err) {
      setMessage(messageOf(err));
    }
    members.reload();
  };

  return (
    <>
      <h1>Members</h1>
      {admin ? (
        <form class="filters" onSubmit={(e) => void invite(e)} aria-label="Invite a member">
          <label>
            Invite email
            <input type="email" required value={email} onInput={(e) => setEmail((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            Role
            <select aria-label="Role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as Role)}>
              {grantable.map((r) => (
                <option key={r}>{r}</option>
              ))}
            </select>
          </label>
          <button type="submit" class="primary">
            Invite
          </button>
        </form>
      ) : null}
      {message ? <p role="status">{message}</p> : null}
      <ErrorBox error={members.error} />
      {members.loading && !members.data ? <Loading /> : null}
      {members.data ? (
        <div class="table-wrap">
          <table aria-label="Members">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">Since</th>
              </tr>
            </thead>
            <tbody>
              {members.data.data.map((m) => (
                <tr key={m.user}>
                  <td>{m.name}</td>
                  <td>{m.email}</td>
                  <td>
                    {admin && m.user !== me.user.id && (m.role !== 'owner' || me.organization.role === 'owner') ? (
                      <select aria-label={`Role of ${m.email}`} value={m.role} onChange={(e) => void setMemberRole(m, (e.target as HTMLSelectElement).value)}>
                        {grantable.map((r) => (
                          <option key={r}>{r}</option>
                        ))}
                      </select>
                    ) : (
                      m.role
                    )}
                  </td>
                  <td>
                    <Time iso={m.since} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {admin ? (
        <>
          <h2>Invitations</h2>
          <ErrorBox error={invitations.error} />
          {invitations.data && invitations.data.data.length === 0 ? <Empty>No invitations.</Empty> : null}
          {invitations.data && invitations.data.data.length > 0 ? (
            <div class="table-wrap">
              <table aria-label="Invitations">
                <thead>
                  <tr>
                    <th scope="col">Email</th>
                    <th scope="col">Role</th>
                    <th scope="col">Status</th>
                    <th scope="col">Expires</th>
                  </tr>
                </thead>
                <tbody>
                  {invitations.data.data.map((i) => (
                    <tr key={i.id}>
                      <td>{i.email}</td>
                      <td>{i.role}</td>
                      <td>{i.status}</td>
                      <td>
                        <Time iso={i.expires_at} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : null}
        </>
      ) : null}
    </>
  );
}
