import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import { RulesPage } from '@/features/alerts/components/RulesPage';
import type { Role } from '@/stores/auth';
import { envelope, failure, json, route, stubFetch } from '@/testing/fetch';
import { renderRoutes, signInAs } from '@/testing/render';

const rule = {
  id: 2, name: 'cpu high', metric: 'cpu_usage', operator: 'gt', threshold: 90, duration: 120, keep_firing_for: 0,
  severity: 'critical', target_type: 'group', target_value: ['3'], notification_channels: [4], enabled: true,
  created_by: 1, created_at: '2026-12-01T10:00:00Z', updated_at: '2026-12-01T10:00:00Z',
};
const offline = { ...rule, id: 3, name: 'node down', metric: 'node_offline', operator: null, threshold: null, target_type: 'all', target_value: [], notification_channels: [], enabled: false };
const channel = { id: 4, name: 'ops hook', type: 'webhook', enabled: true, config: { url: 'https://hooks.example.com/x', secret_set: true }, created_by: 1, created_at: null, updated_at: null };
const group = { id: 3, name: 'payments', description: null, parent_id: null, sort_order: 0, created_at: null, updated_at: null };

function renderRules(role: Role, items: object[] = [rule, offline]) {
  signInAs(role);
  const stub = stubFetch(
    route('GET', '/api/v1/alerts/rules', () => envelope({ total: items.length, items, page: 1, page_size: 20 })),
    route('GET', '/api/v1/alerts/channels', () => envelope([channel])),
    route('GET', '/api/v1/groups', () => envelope([group])),
    route('POST', '/api/v1/alerts/rules', async (request) => {
      const body = (await request.json()) as { threshold?: number | null };
      if (body.threshold === null || body.threshold === undefined) return failure(400, 1001, 'threshold: required for a rule on cpu_usage');
      if (body.threshold > 100)
        return json({ code: 1001, message: 'invalid request: body.threshold', data: { errors: [{ field: 'body.threshold', message: 'Input should be less than 100', type: 'less_than' }] }, request_id: 't' }, 400);
      return envelope({ ...rule, ...body, id: 9 });
    }),
    route('PUT', '/api/v1/alerts/rules/2', async (request) => envelope({ ...rule, ...((await request.json()) as object) })),
    route('DELETE', '/api/v1/alerts/rules/2', () => envelope({})),
  );
  renderRoutes([{ path: '/alerts/rules', element: <RulesPage /> }], '/alerts/rules');
  return stub;
}

async function bodies(calls: Request[], method: string) {
  await waitFor(() => expect(calls.some((c) => c.method === method)).toBe(true));
  return Promise.all(calls.filter((c) => c.method === method).map((c) => c.json() as Promise<Record<string, unknown>>));
}

describe('RulesPage', () => {
  it('lists rules with their condition, target, channels and state', async () => {
    renderRules('admin');
    expect(await screen.findByText('cpu_usage > 90 · 持续 120 秒')).toBeInTheDocument();
    expect(screen.getByText('node_offline · 持续 120 秒')).toBeInTheDocument();
    expect(screen.getByText('分组: 3')).toBeInTheDocument();
    expect(await screen.findByText('ops hook')).toBeInTheDocument();
    expect(screen.getByText('停用')).toBeInTheDocument();
  });

  it("shows the server's refusal of a field beside it", async () => {
    renderRules('admin');
    await userEvent.click(await screen.findByRole('button', { name: '新建规则' }));
    const dialog = screen.getByRole('dialog', { name: '新建规则' });
    await userEvent.type(within(dialog).getByRole('textbox', { name: '名称' }), 'disk full');
    await userEvent.click(within(dialog).getByRole('button', { name: '保存' }));
    // No threshold: the server says the field is required (in its message), shown under it.
    expect(await within(dialog).findByText('required for a rule on cpu_usage')).toBeInTheDocument();
    await userEvent.type(within(dialog).getByRole('spinbutton', { name: '阈值' }), '150');
    await userEvent.click(within(dialog).getByRole('button', { name: '保存' }));
    // Refused by the request's validation: the envelope's errors name the field.
    expect(await within(dialog).findByText('Input should be less than 100')).toBeInTheDocument();
    expect(screen.getByRole('dialog')).toBeInTheDocument();
  });

  it('creates a rule on tags that notifies a channel', async () => {
    const { calls } = renderRules('admin');
    await userEvent.click(await screen.findByRole('button', { name: '新建规则' }));
    const dialog = screen.getByRole('dialog', { name: '新建规则' });
    await userEvent.type(within(dialog).getByRole('textbox', { name: '名称' }), 'disk full');
    await userEvent.type(within(dialog).getByRole('spinbutton', { name: '阈值' }), '95');
    await userEvent.click(within(dialog).getByRole('combobox', { name: '适用范围' }));
    await userEvent.click(await screen.findByRole('option', { name: '标签' }));
    await userEvent.type(within(dialog).getByRole('textbox', { name: '标签' }), 'db, cache');
    await userEvent.click(within(dialog).getByRole('combobox', { name: '通知' }));
    await userEvent.click(await screen.findByRole('option', { name: 'ops hook (webhook)' }));
    await userEvent.keyboard('{Escape}');
    await userEvent.click(within(dialog).getByRole('button', { name: '保存' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    const sent = await bodies(calls, 'POST');
    expect(sent).toEqual([
      {
        name: 'disk full', metric: 'cpu_usage', operator: 'gt', threshold: 95, duration: 60, keep_firing_for: 0,
        severity: 'warning', target_type: 'tag', target_value: ['db', 'cache'], notification_channels: [4], enabled: true,
      },
    ]);
  });

  it('edits a rule; a state condition is sent without operator or threshold', async () => {
    const { calls } = renderRules('admin');
    await userEvent.click(await screen.findByRole('button', { name: '编辑规则 cpu high' }));
    const dialog = screen.getByRole('dialog', { name: '编辑规则' });
    await userEvent.click(within(dialog).getByRole('combobox', { name: '指标' }));
    await userEvent.click(await screen.findByRole('option', { name: 'agent_not_running' }));
    expect(within(dialog).queryByRole('spinbutton', { name: '阈值' })).not.toBeInTheDocument();
    await userEvent.click(within(dialog).getByRole('button', { name: '保存' }));
    const [sent] = await bodies(calls, 'PUT');
    expect(sent).toMatchObject({ metric: 'agent_not_running', target_type: 'group', target_value: ['3'] });
    expect(sent).not.toHaveProperty('operator');
    expect(sent).not.toHaveProperty('threshold');
  });

  it('deletes a rule after a confirmation', async () => {
    const { calls } = renderRules('admin');
    await userEvent.click(await screen.findByRole('button', { name: '删除规则 cpu high' }));
    await userEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: '删除规则' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'DELETE' && c.url.endsWith('/rules/2'))).toBe(true));
  });

  it('shows an operator the rules but no way to change them', async () => {
    renderRules('operator');
    expect(await screen.findByText('cpu high')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: '新建规则' })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /编辑规则/ })).not.toBeInTheDocument();
    expect(screen.queryByRole('tab', { name: '通知渠道' })).not.toBeInTheDocument();
  });

  it('says when there is none', async () => {
    renderRules('viewer', []);
    expect(await screen.findByText('还没有告警规则')).toBeInTheDocument();
  });
});
