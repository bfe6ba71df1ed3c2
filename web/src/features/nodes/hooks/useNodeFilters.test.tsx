import { act, renderHook } from '@testing-library/react';
import type { ReactNode } from 'react';
import { createMemoryRouter, RouterProvider } from 'react-router';
import { describe, expect, it } from 'vitest';

import { useNodeFilters } from '@/features/nodes/hooks/useNodeFilters';

function setup(path: string) {
  let router: ReturnType<typeof createMemoryRouter> | undefined;
  const wrapper = ({ children }: { children: ReactNode }) => {
    router ??= createMemoryRouter([{ path: '*', element: children }], { initialEntries: [path] });
    return <RouterProvider router={router} />;
  };
  const hook = renderHook(() => useNodeFilters(), { wrapper });
  return { hook, location: () => router?.state.location };
}

describe('useNodeFilters', () => {
  it('ignores what the URL holds that the API would refuse', () => {
    const { hook } = setup('/nodes?status=sleeping&group_id=x&page=-2&page_size=7&sort=secret&label=novalue');
    expect(hook.result.current.query).toEqual({
      keyword: undefined, status: undefined, group_id: undefined, tags: undefined, label: undefined,
      sort: undefined, page: 1, page_size: 20,
    });
  });

  it('writes a change to the URL and starts again at page 1', () => {
    const { hook, location } = setup('/nodes?status=online&page=4&page_size=50');
    act(() => hook.result.current.setFilters({ groupId: '3', labels: ['env=prod', 'team=a'] }));
    expect(location()?.search).toBe('?status=online&group_id=3&label=env%3Dprod&label=team%3Da&page_size=50');
    expect(hook.result.current.query).toMatchObject({ status: 'online', group_id: 3, label: ['env=prod', 'team=a'], page: 1, page_size: 50 });
    act(() => hook.result.current.setFilters({ page: 2 }));
    expect(location()?.search).toContain('page=2');
  });
});
