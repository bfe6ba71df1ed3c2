import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import { AlertDetailPage } from '@/features/alerts/components/AlertDetailPage';
import type { Role } from '@/stores/auth';
import { envelope, failure, route, stubFetch } from '@/testing/fetch';
import { renderRoutes, signInAs } from '@/testing/render';

const alert = {
  id: 7, rule_id: 2, rule_name: 'cpu high', node_id: 5, hostname: 'pay-1', metric: 'cpu_usage', current_value: 97.5,
  threshold: 90, severity: 'critical', status: 'firing', fired_at: '2026-12-01T10:00:00Z', resolved_at: null,
  acknowledged_by: null, acknowledged_at: null, silenced: false, silence_ids: [],
};
const deliveries = [
  {
    id: 1, channel_id: 3, channel_name: 'ops hook', channel_type: 'webhook', event: 'firing', status: 'sent', attempts: 1,
    last_error: null, next_attempt_at: null, created_at: '2026-12-01T10:00:01Z', sent_at: '2026-12-01T10:00:02Z',
  },
  {
    id: 2, channel_id: 4, channel_name: null, channel_type: null, event: 'firing', status: 'failed', attempts: 5,
    last_error: 'HTTP 502', next_attempt_at: null, created_at: '2026-12-01T10:00:01Z', sent_at: null,
  },
];

function renderDetail(role: Role, path = '/alerts/7', notifications: object[] = deliveries) {
  signInAs(role);
  let acknowledged = {};
  const stub = stubFetch(
    route('GET', '/api/v1/alerts/7', () => envelope({ ...alert, ...acknowledged })),
    route('GET', '/api/v1/alerts/8', () => failure(404, 6001, 'alert not found')),
    route('GET', '/api/v1/alerts/7/notifications', () => envelope(notifications)),
    route('POST', '/api/v1/alerts/7/acknowledge', () => {
      acknowledged = { acknowledged_by: 1, acknowledged_at: '2026-12-01T10:05:00Z' };
      return envelope({ ...alert, ...acknowledged });
    }),
    route('POST', '/api/v1/alerts/silences', async (request) => {
      const body = (await request.json()) as { reason: string };
      if (body.reason === 'x'.repeat(3)) return failure(400, 1001, 'ends_at: must be in the future');
      return envelope({ id: 1, ...body });
    }),
  );
  renderRoutes([{ path: '/alerts/:id', element: <AlertDetailPage /> }], path);
  return stub;
}

describe('AlertDetailPage', () => {
  it("shows the alert and each channel's delivery", async () => {
    renderDetail('viewer');
    expect(await screen.findByRole('heading', { name: '告警 #7 · cpu high' })).toBeInTheDocument();
    expect(screen.getByRole('link', { name: 'pay-1' })).toHaveAttribute('href', '/nodes/5');
    const table = await screen.findByTestId('alert-notifications');
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows[0]).toHaveTextContent('ops hook (webhook)触发已发送1');
    expect(rows[1]).toHaveTextContent('（渠道已删除）触发失败5HTTP 502');
  });

  it('lets an operator acknowledge it', async () => {
    const { calls } = renderDetail('operator');
    await userEvent.click(await screen.findByRole('button', { name: '确认' }));
    await waitFor(() => expect(screen.queryByRole('button', { name: '确认' })).not.toBeInTheDocument());
    expect(calls.some((c) => c.method === 'POST' && c.url.endsWith('/acknowledge'))).toBe(true);
    expect(screen.getByTestId('alert-acknowledged')).toHaveTextContent('已确认');
    expect(screen.getByText(/^2026.*，用户 #1$/)).toBeInTheDocument();
  });

  it('hides acknowledge and silence from a viewer', async () => {
    renderDetail('viewer');
    await screen.findByRole('heading', { name: '告警 #7 · cpu high' });
    expect(screen.queryByRole('button', { name: '确认' })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: '静默该规则' })).not.toBeInTheDocument();
  });

  it('silences its rule, and shows the refusal beside the field it names', async () => {
    const { calls } = renderDetail('admin');
    await userEvent.click(await screen.findByRole('button', { name: '静默该规则' }));
    const dialog = screen.getByRole('dialog');
    expect(within(dialog).getByDisplayValue('cpu high')).toBeDisabled();
    await userEvent.type(within(dialog).getByRole('textbox', { name: '原因' }), 'xxx');
    await userEvent.click(within(dialog).getByRole('button', { name: '静默' }));
    expect(await within(dialog).findByText('must be in the future')).toBeInTheDocument();
    await userEvent.type(within(dialog).getByRole('textbox', { name: '原因' }), ' deploy window');
    await userEvent.click(within(dialog).getByRole('button', { name: '静默' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    const bodies = await Promise.all(calls.filter((c) => c.url.endsWith('/silences')).map((c) => c.json() as Promise<Record<string, string>>));
    expect(bodies.map((b) => [b.target_type, b.target_value])).toEqual([['rule', '2'], ['rule', '2']]);
  });

  it('says when no notification was sent', async () => {
    renderDetail('viewer', '/alerts/7', []);
    expect(await screen.findByText('此告警没有发送通知（规则未配置通知渠道，或已被静默）')).toBeInTheDocument();
  });

  it('says when the alert does not exist', async () => {
    renderDetail('viewer', '/alerts/8');
    expect(await screen.findByText('告警不存在')).toBeInTheDocument();
  });
});
