import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import { LoginPage, safeNext } from '@/features/auth/components/LoginPage';
import { useAuthStore } from '@/stores/auth';
import { envelope, failure, route, stubFetch } from '@/testing/fetch';
import { renderRoutes } from '@/testing/render';

const user = { id: 1, username: 'alice', role: 'operator', email: null, phone: null, status: 1 };

function renderLogin(path: string) {
  return renderRoutes(
    [
      { path: '/login', element: <LoginPage /> },
      { path: '*', element: <p>landed</p> },
    ],
    path,
  );
}

describe('LoginPage', () => {
  it('signs in and goes back where the user was', async () => {
    const { calls } = stubFetch(
      route('POST', '/api/v1/auth/login', () =>
        envelope({ token: 't', refresh_token: 'r', token_type: 'Bearer', expires_in: 1, refresh_expires_in: 2, user }),
      ),
    );
    const { router } = renderLogin('/login?next=%2Fnodes%3Fstatus%3Donline');
    await userEvent.type(screen.getByLabelText(/用户名/), ' alice ');
    await userEvent.type(screen.getByLabelText(/密码/), 'secret-pass');
    await userEvent.click(screen.getByRole('button', { name: '登录' }));
    expect(await screen.findByText('landed')).toBeInTheDocument();
    expect(router.state.location.pathname + router.state.location.search).toBe('/nodes?status=online');
    expect(useAuthStore.getState()).toMatchObject({ token: 't', refreshToken: 'r', user: { username: 'alice' } });
    expect(await calls[0]?.json()).toEqual({ username: 'alice', password: 'secret-pass' });
  });

  it('says when the password is wrong', async () => {
    stubFetch(route('POST', '/api/v1/auth/login', () => failure(401, 1002, 'invalid credentials')));
    renderLogin('/login');
    await userEvent.type(screen.getByLabelText(/用户名/), 'alice');
    await userEvent.type(screen.getByLabelText(/密码/), 'nope');
    await userEvent.click(screen.getByRole('button', { name: '登录' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('用户名或密码错误');
    expect(useAuthStore.getState().token).toBeNull();
  });

  it('never sends the user to another site', () => {
    expect(safeNext('/nodes?x=1')).toBe('/nodes?x=1');
    expect(safeNext('//evil.example/')).toBe('/');
    expect(safeNext('https://evil.example/')).toBe('/');
    expect(safeNext(null)).toBe('/');
  });
});
