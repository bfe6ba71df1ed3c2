import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import { UsersPage } from '@/features/users/components/UsersPage';
import { envelope, failure, route, stubFetch } from '@/testing/fetch';
import { renderPage, signInAs } from '@/testing/render';

const user = (id: number, username: string, role: string, status = 1) => ({
  id, username, role, status, email: null, phone: null, last_login_at: null, last_login_ip: null, created_at: null, updated_at: null,
});
// The signed-in admin is user 1 ("tester"); bob is someone else.
const users = [user(1, 'tester', 'admin'), user(2, 'bob', 'viewer')];

function renderUsers() {
  signInAs('admin');
  const stub = stubFetch(
    route('GET', '/api/v1/system/users', () => envelope({ total: 2, items: users, page: 1, page_size: 20 })),
    route('PUT', '/api/v1/system/users/2', async (request) => {
      const body = (await request.json()) as { password?: string };
      if (body.password === 'short') return failure(400, 1001, 'password: at least 12 characters');
      return envelope({ ...user(2, 'bob', 'viewer'), ...body });
    }),
    route('DELETE', '/api/v1/system/users/2', () => envelope(user(2, 'bob', 'viewer'))),
  );
  renderPage(<UsersPage />);
  return stub;
}

async function sent(calls: Request[], method: string) {
  await waitFor(() => expect(calls.some((c) => c.method === method)).toBe(true));
  const call = calls.find((c) => c.method === method) as Request;
  return method === 'DELETE' ? null : ((await call.json()) as unknown);
}

describe('UsersPage', () => {
  it("changes a user's role", async () => {
    const { calls } = renderUsers();
    await userEvent.click(await screen.findByRole('button', { name: '修改角色 bob' }));
    const dialog = screen.getByRole('dialog', { name: '修改 bob 的角色' });
    await userEvent.click(within(dialog).getByRole('combobox', { name: '角色' }));
    await userEvent.click(await screen.findByRole('option', { name: '运维人员' }));
    await userEvent.click(within(dialog).getByRole('button', { name: '保存' }));
    expect(await sent(calls, 'PUT')).toEqual({ role: 'operator' });
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
  });

  it('disables a user after a confirmation, but never the signed-in one', async () => {
    const { calls } = renderUsers();
    await screen.findByRole('button', { name: '停用 bob' });
    expect(screen.queryByRole('button', { name: '停用 tester' })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: '删除用户 tester' })).not.toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: '停用 bob' }));
    const dialog = screen.getByRole('dialog');
    expect(dialog).toHaveTextContent('停用 bob？该用户将无法登录。');
    await userEvent.click(within(dialog).getByRole('button', { name: '停用' }));
    expect(await sent(calls, 'PUT')).toEqual({ status: 0 });
  });

  it("resets a password and shows the API's refusal", async () => {
    const { calls } = renderUsers();
    await userEvent.click(await screen.findByRole('button', { name: '重置密码 bob' }));
    const dialog = screen.getByRole('dialog', { name: '重置 bob 的密码' });
    const field = within(dialog).getByLabelText(/新密码/);
    await userEvent.type(field, 'short');
    await userEvent.click(within(dialog).getByRole('button', { name: '保存' }));
    expect(await within(dialog).findByText('password: at least 12 characters (1001)')).toBeInTheDocument();
    await userEvent.clear(field);
    await userEvent.type(field, 'a-much-longer-passw0rd');
    await userEvent.click(within(dialog).getByRole('button', { name: '保存' }));
    expect(await screen.findByText('已重置 bob 的密码')).toBeInTheDocument();
    const bodies = await Promise.all(calls.filter((c) => c.method === 'PUT').map((c) => c.json() as Promise<unknown>));
    expect(bodies).toEqual([{ password: 'short' }, { password: 'a-much-longer-passw0rd' }]);
  });

  it('deletes a user after a confirmation', async () => {
    const { calls } = renderUsers();
    await userEvent.click(await screen.findByRole('button', { name: '删除用户 bob' }));
    const dialog = screen.getByRole('dialog');
    await userEvent.click(within(dialog).getByRole('button', { name: '删除用户' }));
    await sent(calls, 'DELETE');
    expect(calls.find((c) => c.method === 'DELETE')?.url).toMatch(/\/system\/users\/2$/);
  });
});
