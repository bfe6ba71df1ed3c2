import { render } from '@testing-library/react';
import type { ReactElement } from 'react';
import { createMemoryRouter, RouterProvider, type RouteObject } from 'react-router';

import { makeQueryClient } from '@/api/queryClient';
import { Providers } from '@/app/Providers';
import { useAuthStore, type User } from '@/stores/auth';

export function signInAs(role: User['role'], username = 'tester'): void {
  useAuthStore.getState().signIn('access-token', 'refresh-token', {
    id: 1,
    username,
    role,
    email: null,
    phone: null,
    status: 1,
    last_login_at: null,
    last_login_ip: null,
    created_at: null,
    updated_at: null,
  });
}

/** A page inside the app's providers and a memory router at `path`. */
export function renderRoutes(routes: RouteObject[], path: string) {
  const router = createMemoryRouter(routes, { initialEntries: [path] });
  const client = makeQueryClient();
  client.setDefaultOptions({ queries: { ...client.getDefaultOptions().queries, retry: false } });
  const view = render(
    <Providers client={client}>
      <RouterProvider router={router} />
    </Providers>,
  );
  return { ...view, router, client };
}

export function renderPage(element: ReactElement, { path = '/', pattern = '*' } = {}) {
  return renderRoutes([{ path: pattern, element }], path);
}
