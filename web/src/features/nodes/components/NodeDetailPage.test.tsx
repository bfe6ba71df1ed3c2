import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import { NodeDetailPage } from '@/features/nodes/components/NodeDetailPage';
import type { Role } from '@/stores/auth';
import { envelope, failure, route, stubFetch } from '@/testing/fetch';
import { renderRoutes, signInAs } from '@/testing/render';

const node = {
  id: 5, uuid: 'u-5', hostname: 'pay-1', ip: '10.0.0.5', peer_ip: '10.0.0.5', port: 9100, group_id: null,
  os: 'linux', arch: 'amd64', kernel_version: '6.1', daemon_version: '1.2.0', cpu_cores: 4,
  memory_total: 8 * 1024 ** 3, disk_total: null, status: 'online', last_heartbeat: null, tags: ['pay'],
  labels: { env: 'prod' }, created_at: null, updated_at: null, group: null,
  agent: { id: 1, node_id: 5, version: '1.1.0', status: 'running', reported_status: 'running', pid: 42,
    cpu_usage: 1.5, memory_usage: 1024, start_time: null, restart_count: 0, last_error: null, updated_at: null },
};

const BATCH = '0c1d2e3f-0000-4000-8000-000000000001';
const events = [
  { kind: 'status', at: '2026-12-01T10:00:00Z', event: 'online', from_status: 'unknown', to_status: 'online' },
  {
    kind: 'alert', at: '2026-12-01T10:05:00Z', alert_id: 3, rule_name: 'cpu high', metric: 'cpu_usage', severity: 'critical',
    status: 'firing', current_value: 97, threshold: 90, resolved_at: null,
  },
  {
    kind: 'update', at: '2026-12-01T10:10:00Z', record_id: 9, batch_id: BATCH, component: 'agent', from_version: '1.1.0',
    to_version: '1.2.0', status: 'success', finished_at: '2026-12-01T10:11:00Z',
  },
  {
    kind: 'task', at: '2026-12-01T10:20:00Z', execution_id: 'e-1', task_id: 4, task_name: 'disk cleanup', status: 'success',
    exit_code: 0, finished_at: null,
  },
];

/** The timeline the API would give for the asked range: the chart's range, or 30 days for updates. */
function timeline(url: URL) {
  const start = new Date(url.searchParams.get('start') ?? 0).getTime();
  const days = (Date.now() - start) / 86_400_000;
  return { start: null, end: null, events: days > 20 ? events.filter((e) => e.kind === 'update') : events, truncated: false };
}

function renderDetail(role: Role, path = '/nodes/5', metrics: object[] = []) {
  signInAs(role);
  const stub = stubFetch(
    route('GET', '/api/v1/nodes/5', () => envelope(node)),
    route('GET', '/api/v1/nodes/404', () => failure(404, 2001, 'node not found')),
    route('GET', '/api/v1/nodes/5/metrics', () => envelope(metrics)),
    route('GET', '/api/v1/nodes/5/timeline', (_r, url) => envelope(timeline(url))),
    route('GET', '/api/v1/groups', () => envelope([{ id: 3, name: 'payments', description: null, parent_id: null, sort_order: 0, created_at: null, updated_at: null }])),
    route('PUT', '/api/v1/nodes/5', () => envelope(node)),
    route('GET', '/api/v1/nodes/5/config/effective', () =>
      envelope({ config: { metric_interval: '60' }, sources: { metric_interval: 'default' }, delivery: null }),
    ),
  );
  renderRoutes([{ path: '/nodes/:id', element: <NodeDetailPage /> }], path);
  return stub;
}

describe('NodeDetailPage', () => {
  it('shows the facts, the agent and the empty metrics state', async () => {
    renderDetail('viewer');
    expect(await screen.findByRole('heading', { name: 'pay-1' })).toBeInTheDocument();
    expect(screen.getByText('8.0 GiB')).toBeInTheDocument();
    expect(screen.getByText('env=prod')).toBeInTheDocument();
    expect(screen.getByText('运行中')).toBeInTheDocument();
    expect(await screen.findByText('该时间范围内没有指标')).toBeInTheDocument();
  });

  it('hides every action from a viewer', async () => {
    renderDetail('viewer');
    await screen.findByRole('heading', { name: 'pay-1' });
    expect(screen.queryByRole('button', { name: '编辑' })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: '连通性检测' })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: '删除节点' })).not.toBeInTheDocument();
  });

  it('lets an operator edit and send commands, but not delete', async () => {
    renderDetail('operator');
    await screen.findByRole('heading', { name: 'pay-1' });
    expect(screen.getByRole('button', { name: '编辑' })).toBeInTheDocument();
    expect(screen.getByRole('button', { name: '连通性检测' })).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: '删除节点' })).not.toBeInTheDocument();
  });

  it('lets an admin delete', async () => {
    renderDetail('admin');
    expect(await screen.findByRole('button', { name: '删除节点' })).toBeInTheDocument();
  });

  it('saves group, tags and labels', async () => {
    const { calls } = renderDetail('operator');
    await userEvent.click(await screen.findByRole('button', { name: '编辑' }));
    const labels = screen.getByRole('textbox', { name: '键值标签' });
    await userEvent.clear(labels);
    await userEvent.type(labels, 'broken');
    expect(screen.getByRole('button', { name: '保存' })).toBeDisabled();
    await userEvent.clear(labels);
    await userEvent.type(labels, 'env=staging, team = pay');
    await userEvent.click(screen.getByRole('button', { name: '保存' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'PUT')).toBe(true));
    const put = calls.find((c) => c.method === 'PUT');
    expect(await put?.json()).toEqual({ group_id: null, tags: ['pay'], labels: { env: 'staging', team: 'pay' } });
  });

  it("lists the node's timeline over the charts' range, newest first, with links", async () => {
    const { calls } = renderDetail('viewer');
    const table = await screen.findByTestId('node-timeline');
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows.map((row) => within(row).getAllByRole('cell')[1]?.textContent)).toEqual(['任务', '更新', '告警', '状态']);
    expect(rows[0]).toHaveTextContent('disk cleanup：success（退出码 0）');
    expect(within(rows[1] as HTMLElement).getByRole('link', { name: 'agent 1.1.0 → 1.2.0' })).toHaveAttribute('href', `/rollouts/${BATCH}`);
    expect(rows[2]).toHaveTextContent('cpu high: cpu_usage 97 / 90 · 告警中');
    expect(rows[3]).toHaveTextContent('online (unknown → online)');
    // Another chart range asks the timeline of that range.
    const asked = () => calls.filter((c) => c.url.includes('/timeline')).map((c) => new URL(c.url).searchParams.get('start'));
    const before = asked().length;
    await userEvent.click(screen.getByRole('button', { name: '6小时' }));
    await waitFor(() => expect(asked().length).toBeGreaterThan(before));
    const start = new Date(asked().at(-1) ?? 0).getTime();
    expect(Math.round((Date.now() - start) / 3_600_000)).toBe(6);
  });

  it('marks the events inside the drawn span on the usage chart', async () => {
    const sample = (minute: number) => ({
      timestamp: `2026-12-01T10:${String(minute).padStart(2, '0')}:00Z`, cpu_usage: 10, memory_usage: 20, disk_usage: 30,
      load_avg_1: 0.1, load_avg_5: 0.1, load_avg_15: 0.1, network_rx: 1, network_tx: 1, process_count: 100, tcp_connections: 5,
    });
    // Samples from 10:02 to 10:12: the alert (10:05) and the update (10:10) are inside, the others outside.
    renderDetail('viewer', '/nodes/5', [sample(2), sample(7), sample(12)]);
    const markers = await screen.findByTestId('timeline-markers');
    expect(markers).toHaveTextContent('图中竖线标出 2 个事件');
    expect(markers).toHaveTextContent('告警');
    expect(markers).toHaveTextContent('更新');
    expect(markers).not.toHaveTextContent('任务');
    expect(document.querySelectorAll('.MuiChartsReferenceLine-root')).toHaveLength(2);
  });

  it('shows the update history of 30 days from the timeline', async () => {
    renderDetail('viewer');
    const history = await screen.findByTestId('update-history');
    const rows = within(history).getAllByRole('row').slice(1);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toHaveTextContent('agent1.1.0 → 1.2.0成功');
    expect(within(rows[0] as HTMLElement).getByRole('link', { name: BATCH.slice(0, 8) })).toHaveAttribute('href', `/rollouts/${BATCH}`);
  });

  it("shows the configuration to those who may change it, and links the node's alerts", async () => {
    renderDetail('operator');
    const config = await screen.findByTestId('node-config');
    await waitFor(() => expect(config).toHaveTextContent('metric_interval60默认'));
    expect(screen.getByRole('link', { name: '查看告警' })).toHaveAttribute('href', '/alerts?node_id=5');
  });

  it('shows a viewer no configuration (the API keeps it from viewers)', async () => {
    const { calls } = renderDetail('viewer');
    await screen.findByRole('heading', { name: 'pay-1' });
    expect(screen.queryByTestId('node-config')).not.toBeInTheDocument();
    expect(calls.some((c) => c.url.includes('/config'))).toBe(false);
  });

  it('says when the node does not exist', async () => {
    renderDetail('viewer', '/nodes/404');
    expect(await screen.findByText('节点不存在（可能已被删除）')).toBeInTheDocument();
  });
});
