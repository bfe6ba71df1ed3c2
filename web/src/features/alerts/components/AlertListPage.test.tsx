import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import i18n from '@/i18n';
import { AlertListPage } from '@/features/alerts/components/AlertListPage';
import type { Role } from '@/stores/auth';
import { envelope, failure, route, stubFetch } from '@/testing/fetch';
import { renderRoutes, signInAs } from '@/testing/render';

export const firing = {
  id: 7, rule_id: 2, rule_name: 'cpu high', node_id: 5, hostname: 'pay-1', metric: 'cpu_usage', current_value: 97.5,
  threshold: 90, severity: 'critical', status: 'firing', fired_at: '2026-12-01T10:00:00Z', resolved_at: null,
  acknowledged_by: null, acknowledged_at: null, silenced: false, silence_ids: [],
};
const resolved = {
  ...firing, id: 6, rule_name: null, hostname: 'pay-2', node_id: 6, status: 'resolved', severity: 'warning',
  resolved_at: '2026-12-01T09:00:00Z', acknowledged_by: 1, acknowledged_at: '2026-12-01T08:00:00Z',
};
const node = { id: 5, hostname: 'pay-1', ip: '10.0.0.5' };

function renderList(role: Role, path = '/alerts', items: object[] = [firing, resolved]) {
  signInAs(role);
  let acknowledged = false;
  const stub = stubFetch(
    route('GET', '/api/v1/alerts', () =>
      envelope({
        total: items.length,
        items: items.map((a) => (acknowledged && (a as { id: number }).id === 7 ? { ...a, acknowledged_at: '2026-12-01T10:05:00Z', acknowledged_by: 1 } : a)),
        page: 1,
        page_size: 20,
      }),
    ),
    route('GET', '/api/v1/nodes', () => envelope({ total: 1, items: [node], page: 1, page_size: 20 })),
    route('POST', '/api/v1/alerts/7/acknowledge', () => {
      acknowledged = true;
      return envelope({ ...firing, acknowledged_at: '2026-12-01T10:05:00Z', acknowledged_by: 1 });
    }),
    route('POST', '/api/v1/alerts/silences', async (request) => envelope({ id: 1, ...((await request.json()) as object) })),
  );
  const view = renderRoutes(
    [
      { path: '/alerts', element: <AlertListPage /> },
      { path: '/alerts/:id', element: <p>alert detail</p> },
      { path: '/nodes/:id', element: <p>node page</p> },
    ],
    path,
  );
  return { ...stub, ...view };
}

const alertCalls = (calls: Request[]) => calls.filter((c) => new URL(c.url).pathname === '/api/v1/alerts').map((c) => new URL(c.url).searchParams);

describe('AlertListPage', () => {
  it('lists alerts with their state and passes the filters of the URL to the API', async () => {
    const { calls } = renderList('viewer', '/alerts?status=firing&severity=critical&node_id=5&page=2&page_size=50');
    expect(await screen.findByText('cpu high')).toBeInTheDocument();
    const asked = alertCalls(calls)[0];
    expect(Object.fromEntries(asked?.entries() ?? [])).toEqual({ status: 'firing', severity: 'critical', node_id: '5', page: '2', page_size: '50' });
    expect(screen.getAllByText('cpu_usage 97.5 / 90')).toHaveLength(2);
    expect(screen.getByText('（规则已删除）')).toBeInTheDocument();
    expect(screen.getAllByTestId('alert-status').map((chip) => chip.textContent)).toEqual(['告警中', '已恢复']);
    expect(screen.getAllByTestId('alert-acknowledged')).toHaveLength(1);
    // The node filter shows the node the URL names once the search answers.
    expect(await screen.findByDisplayValue('pay-1 (10.0.0.5)')).toBeInTheDocument();
  });

  it('changes a filter in the URL and goes back to page 1', async () => {
    const { router, calls } = renderList('viewer', '/alerts?page=3');
    await screen.findByText('cpu high');
    await userEvent.click(screen.getByRole('combobox', { name: '级别' }));
    await userEvent.click(await screen.findByRole('option', { name: '严重' }));
    await waitFor(() => expect(new URLSearchParams(router.state.location.search).get('severity')).toBe('critical'));
    expect(new URLSearchParams(router.state.location.search).get('page')).toBeNull();
    await waitFor(() => expect(alertCalls(calls).at(-1)?.get('severity')).toBe('critical'));
  });

  it('lets an operator acknowledge an alert, and the list shows it', async () => {
    const { calls } = renderList('operator');
    await userEvent.click(await screen.findByRole('button', { name: '确认 #7' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'POST' && c.url.endsWith('/alerts/7/acknowledge'))).toBe(true));
    await waitFor(() => expect(screen.queryByRole('button', { name: '确认 #7' })).not.toBeInTheDocument());
    expect(screen.getAllByTestId('alert-acknowledged')).toHaveLength(2);
  });

  it('silences the node of an alert for a chosen time', async () => {
    const { calls } = renderList('operator');
    await userEvent.click(await screen.findByRole('button', { name: '静默该节点 #7' }));
    const dialog = screen.getByRole('dialog', { name: '静默告警' });
    expect(within(dialog).getByDisplayValue('pay-1')).toBeDisabled();
    await userEvent.click(within(dialog).getByRole('combobox', { name: '时长' }));
    await userEvent.click(await screen.findByRole('option', { name: '1 天' }));
    await userEvent.type(within(dialog).getByRole('textbox', { name: '原因' }), 'maintenance');
    await userEvent.click(within(dialog).getByRole('button', { name: '静默' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'POST' && c.url.endsWith('/silences'))).toBe(true));
    const body = (await calls.find((c) => c.url.endsWith('/silences'))?.json()) as Record<string, string>;
    expect(body).toMatchObject({ target_type: 'node', target_value: '5', reason: 'maintenance' });
    const hours = (new Date(body.ends_at ?? '').getTime() - Date.now()) / 3_600_000;
    expect(Math.round(hours)).toBe(24);
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
  });

  it('shows a viewer no acknowledge or silence action', async () => {
    renderList('viewer');
    await screen.findByText('cpu high');
    expect(screen.queryByRole('button', { name: /^确认/ })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /^静默/ })).not.toBeInTheDocument();
    expect(screen.queryByRole('columnheader', { name: '操作' })).not.toBeInTheDocument();
  });

  it('opens an alert from its row', async () => {
    const { router } = renderList('viewer');
    await userEvent.click(await screen.findByText('cpu high'));
    expect(router.state.location.pathname).toBe('/alerts/7');
  });

  it('says when no alert matches', async () => {
    renderList('viewer', '/alerts', []);
    expect(await screen.findByText('没有符合条件的告警')).toBeInTheDocument();
  });

  it('shows the error with a retry', async () => {
    signInAs('viewer');
    stubFetch(
      route('GET', '/api/v1/alerts', () => failure(500, 5000, 'database unavailable')),
      route('GET', '/api/v1/nodes', () => envelope({ total: 0, items: [], page: 1, page_size: 20 })),
    );
    renderRoutes([{ path: '/alerts', element: <AlertListPage /> }], '/alerts');
    expect(await screen.findByText('数据加载失败: database unavailable (5000)')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: '重试' })).toBeInTheDocument();
  });

  it('reads in English', async () => {
    await i18n.changeLanguage('en');
    renderList('operator');
    expect(await screen.findByRole('button', { name: 'Acknowledge #7' })).toBeInTheDocument();
    expect(screen.getByRole('tab', { name: 'Rules' })).toBeInTheDocument();
    expect(screen.getAllByTestId('alert-status').map((chip) => chip.textContent)).toEqual(['Firing', 'Resolved']);
  });
});
