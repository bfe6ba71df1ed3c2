import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import { AppLayout } from '@/components/layout/AppLayout';
import { RequireAuth } from '@/components/RequireAuth';
import { useAuthStore } from '@/stores/auth';
import { useUiStore } from '@/stores/ui';
import { envelope, route, stubFetch } from '@/testing/fetch';
import { renderRoutes, signInAs } from '@/testing/render';

function renderShell(path = '/') {
  return renderRoutes(
    [
      { path: '/login', element: <p>login page</p> },
      {
        path: '/',
        element: (
          <RequireAuth>
            <AppLayout />
          </RequireAuth>
        ),
        children: [{ path: '*', element: <p>content</p> }],
      },
    ],
    path,
  );
}

describe('AppLayout', () => {
  it('sends a signed-out visitor to the login page with the way back', async () => {
    const { router } = renderShell('/nodes?status=online');
    expect(await screen.findByText('login page')).toBeInTheDocument();
    expect(router.state.location.search).toBe('?next=%2Fnodes%3Fstatus%3Donline');
  });

  it('shows admin pages to an admin only', () => {
    signInAs('admin');
    const { unmount } = renderShell();
    expect(screen.getByRole('link', { name: '用户管理' })).toBeInTheDocument();
    expect(screen.getByRole('link', { name: '审计日志' })).toBeInTheDocument();
    unmount();
    signInAs('operator');
    renderShell();
    expect(screen.getByRole('link', { name: '节点管理' })).toBeInTheDocument();
    expect(screen.queryByRole('link', { name: '用户管理' })).not.toBeInTheDocument();
    expect(screen.queryByRole('link', { name: '审计日志' })).not.toBeInTheDocument();
    expect(screen.queryByRole('link', { name: '注册令牌' })).not.toBeInTheDocument();
  });

  it('switches the language and the colour mode', async () => {
    signInAs('admin');
    renderShell();
    await userEvent.click(screen.getByRole('button', { name: '语言' }));
    await userEvent.click(screen.getByRole('menuitem', { name: 'English' }));
    expect(await screen.findByRole('link', { name: 'Nodes' })).toBeInTheDocument();
    expect(document.documentElement.lang).toBe('en');
    expect(useUiStore.getState().language).toBe('en');
    await userEvent.click(screen.getByRole('button', { name: 'Dark mode' }));
    expect(useUiStore.getState().colorMode).toBe('dark');
    expect(screen.getByRole('button', { name: 'Light mode' })).toBeInTheDocument();
  });

  it('logs out on the server and locally', async () => {
    signInAs('admin');
    const { calls } = stubFetch(route('POST', '/api/v1/auth/logout', () => envelope(null)));
    renderShell();
    await userEvent.click(screen.getByRole('button', { name: '账户' }));
    await userEvent.click(screen.getByRole('menuitem', { name: '退出登录' }));
    expect(await screen.findByText('login page')).toBeInTheDocument();
    await waitFor(() => expect(useAuthStore.getState().token).toBeNull());
    expect(calls[0]?.headers.get('Authorization')).toBe('Bearer access-token');
  });
});
