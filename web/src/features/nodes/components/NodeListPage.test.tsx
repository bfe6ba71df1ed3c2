import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import { NodeListPage } from '@/features/nodes/components/NodeListPage';
import { envelope, route, stubFetch } from '@/testing/fetch';
import { renderRoutes, signInAs } from '@/testing/render';

function node(id: number, hostname: string, status: 'online' | 'offline' = 'online') {
  return {
    id, uuid: `u-${id}`, hostname, ip: `10.0.0.${id}`, peer_ip: null, port: 9100, group_id: null,
    os: 'linux', arch: 'amd64', kernel_version: null, daemon_version: '1.0.0', cpu_cores: 2,
    memory_total: null, disk_total: null, status, last_heartbeat: null, tags: ['web', 'db', 'edge', 'eu'],
    labels: { env: 'prod' }, created_at: null, updated_at: null, group: null,
    agent: null,
  };
}

function renderList(path: string) {
  signInAs('operator');
  const requests: URL[] = [];
  stubFetch(
    route('GET', '/api/v1/groups', () => envelope([{ id: 7, name: 'payments', description: null, parent_id: null, sort_order: 0, created_at: null, updated_at: null }])),
    route('GET', '/api/v1/nodes', (_request, url) => {
      requests.push(url);
      const items = url.searchParams.get('status') === 'offline' ? [node(2, 'db-1', 'offline')] : [node(1, 'web-1')];
      return envelope({ total: 41, items, page: Number(url.searchParams.get('page')), page_size: 20 });
    }),
  );
  const view = renderRoutes(
    [
      { path: '/nodes', element: <NodeListPage /> },
      { path: '/nodes/:id', element: <p>detail</p> },
    ],
    path,
  );
  return { ...view, requests };
}

describe('NodeListPage', () => {
  it('asks the API for the page and filters in the URL', async () => {
    const { requests } = renderList('/nodes?status=online&label=env%3Dprod&label=team%3Dpay&page=2&sort=-hostname');
    expect(await screen.findByText('web-1')).toBeInTheDocument();
    const query = requests.at(-1)?.searchParams;
    expect(query?.get('status')).toBe('online');
    expect(query?.getAll('label')).toEqual(['env=prod', 'team=pay']);
    expect(query?.get('page')).toBe('2');
    expect(query?.get('page_size')).toBe('20');
    expect(query?.get('sort')).toBe('-hostname');
    expect(document.querySelector('.MuiTablePagination-displayedRows')).toHaveTextContent(/21.*40.*41/);
    // Four tags: three shown, the rest counted.
    expect(screen.getByText('+1')).toBeInTheDocument();
  });

  it('puts a changed filter in the URL and starts again at page 1', async () => {
    const { router, requests } = renderList('/nodes?page=3');
    await screen.findByText('web-1');
    fireEvent.change(screen.getByTestId('filter-labels'), { target: { value: 'env=prod, junk , team=pay' } });
    fireEvent.change(screen.getByTestId('filter-keyword'), { target: { value: ' db ' } });
    await userEvent.click(screen.getByRole('button', { name: '查询' }));
    await waitFor(() =>
      expect(router.state.location.search).toBe('?keyword=db&label=env%3Dprod&label=team%3Dpay'),
    );
    await waitFor(() => expect(requests.at(-1)?.searchParams.get('keyword')).toBe('db'));
    expect(requests.at(-1)?.searchParams.get('page')).toBe('1');
  });

  it('filters by status from the select', async () => {
    const { router } = renderList('/nodes');
    await screen.findByText('web-1');
    await userEvent.click(screen.getByRole('combobox', { name: '状态' }));
    await userEvent.click(within(screen.getByRole('listbox')).getByText('离线'));
    expect(await screen.findByText('db-1')).toBeInTheDocument();
    expect(router.state.location.search).toBe('?status=offline');
  });

  it('stays on the next page once its rows arrive', async () => {
    const { router, requests } = renderList('/nodes?page_size=10');
    await screen.findByText('web-1');
    await userEvent.click(screen.getByRole('button', { name: /下一页|next page/i }));
    await waitFor(() => expect(requests.at(-1)?.searchParams.get('page')).toBe('2'));
    await screen.findByText('web-1');
    // The grid settles (its page checks run after a tick) and the page is still 2.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(router.state.location.search).toBe('?page=2&page_size=10');
  });

  it('opens a node on click', async () => {
    const { router } = renderList('/nodes');
    await userEvent.click(await screen.findByText('web-1'));
    await waitFor(() => expect(router.state.location.pathname).toBe('/nodes/1'));
  });
});
