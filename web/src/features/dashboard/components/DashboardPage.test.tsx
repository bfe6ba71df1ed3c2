import { screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';

import { DashboardPage } from '@/features/dashboard/components/DashboardPage';
import { envelope, failure, route, stubFetch } from '@/testing/fetch';
import { renderPage, signInAs } from '@/testing/render';

const point = (minute: number, cpu: number) => ({
  timestamp: `2026-12-01T10:${String(minute).padStart(2, '0')}:00Z`, nodes: 3, samples: 15,
  cpu_usage_avg: cpu, cpu_usage_max: cpu + 5, memory_usage_avg: 40, memory_usage_max: 50,
  disk_usage_avg: 20, disk_usage_max: 22,
});

const dashboard = {
  generated_at: '2026-12-01T10:15:00Z',
  total_nodes: 10,
  online_nodes: 7,
  offline_nodes: 3,
  running_agents: 6,
  active_alerts: 4,
  active_alerts_by_severity: { critical: 1, warning: 2, info: 1 },
  node_status_distribution: [
    { value: 'online', count: 7 },
    { value: 'offline', count: 2 },
    { value: 'unknown', count: 1 },
  ],
  agent_version_distribution: [
    { value: '1.2.0', count: 5 },
    { value: 'unknown', count: 1 },
  ],
  daemon_version_distribution: [{ value: '0.9.1', count: 10 }],
  resource_trend: [point(0, 10), point(5, 30), point(10, 20)],
  recent_alerts: [
    {
      id: 1, rule_id: 2, rule_name: 'cpu high', node_id: 5, node_name: 'pay-1', metric: 'cpu_usage', severity: 'critical',
      status: 'firing', current_value: 97.5, threshold: 90, fired_at: '2026-12-01T10:10:00Z', resolved_at: null, acknowledged: false,
    },
    {
      id: 2, rule_id: 3, rule_name: null, node_id: 6, node_name: null, metric: 'disk_usage', severity: 'warning',
      status: 'resolved', current_value: 81, threshold: 80, fired_at: '2026-12-01T09:10:00Z', resolved_at: null, acknowledged: true,
    },
  ],
};

describe('DashboardPage', () => {
  it('shows the counts, the severities and the time of the figures from one call', async () => {
    signInAs('viewer');
    const { calls } = stubFetch(route('GET', '/api/v1/system/dashboard', () => envelope(dashboard)));
    renderPage(<DashboardPage />);
    expect(await screen.findByTestId('count-total')).toHaveTextContent('10');
    expect(screen.getByTestId('count-online')).toHaveTextContent('7');
    expect(screen.getByText('3 个不在线')).toBeInTheDocument();
    expect(screen.getByTestId('count-agents')).toHaveTextContent('6');
    expect(screen.getByTestId('count-alerts')).toHaveTextContent('4');
    expect(screen.getByText('严重 1 · 警告 2 · 提示 1')).toBeInTheDocument();
    expect(screen.getByTestId('generated-at')).toHaveTextContent(new Date('2026-12-01T10:15:00Z').toLocaleString('zh-CN', { hour12: false }));
    expect(calls.map((c) => new URL(c.url).pathname)).toEqual(['/api/v1/system/dashboard']);
  });

  it('draws the distributions and the trend, and lists the recent alerts', async () => {
    signInAs('viewer');
    stubFetch(route('GET', '/api/v1/system/dashboard', () => envelope(dashboard)));
    renderPage(<DashboardPage />);
    const alerts = await screen.findByTestId('recent-alerts');
    const rows = within(alerts).getAllByRole('row');
    expect(rows[1]).toHaveTextContent('cpu high');
    expect(rows[1]).toHaveTextContent('严重');
    expect(rows[1]).toHaveTextContent('cpu_usage 97.5 / 90');
    expect(rows[1]).toHaveTextContent('告警中');
    expect(within(rows[1] as HTMLElement).getByRole('link', { name: 'pay-1' })).toHaveAttribute('href', '/nodes/5');
    // The alert itself opens from its rule (and its time); the header links to the firing alerts.
    expect(within(rows[1] as HTMLElement).getByRole('link', { name: 'cpu high' })).toHaveAttribute('href', '/alerts/1');
    expect(within(rows[2] as HTMLElement).getByRole('link', { name: '（规则已删除）' })).toHaveAttribute('href', '/alerts/2');
    expect(screen.getByRole('link', { name: '全部未恢复告警' })).toHaveAttribute('href', '/alerts?status=firing');
    expect(rows[2]).toHaveTextContent('（规则已删除）');
    expect(rows[2]).toHaveTextContent('（节点已删除）');
    expect(rows[2]).toHaveTextContent('已恢复 · 已确认');
    // Pie legends name the versions (an agent without a version is "unknown").
    expect(within(screen.getByTestId('agent-versions')).getByText('1.2.0')).toBeInTheDocument();
    expect(within(screen.getByTestId('agent-versions')).getByText('未知')).toBeInTheDocument();
    expect(within(screen.getByTestId('daemon-versions')).getByText('0.9.1')).toBeInTheDocument();
    expect(within(screen.getByTestId('status-distribution')).getByText('离线')).toBeInTheDocument();
    // The trend's legend names its series.
    expect(screen.getByText('内存')).toBeInTheDocument();
    expect(screen.queryByText('最近24小时没有指标数据')).not.toBeInTheDocument();
  });

  it('says so when the fleet is empty', async () => {
    signInAs('viewer');
    stubFetch(
      route('GET', '/api/v1/system/dashboard', () =>
        envelope({
          ...dashboard, total_nodes: 0, online_nodes: 0, offline_nodes: 0, running_agents: 0, active_alerts: 0,
          active_alerts_by_severity: { critical: 0, warning: 0, info: 0 }, node_status_distribution: [],
          agent_version_distribution: [], daemon_version_distribution: [], resource_trend: [], recent_alerts: [],
        }),
      ),
    );
    renderPage(<DashboardPage />);
    expect(await screen.findByText('最近24小时没有指标数据')).toBeInTheDocument();
    expect(screen.getAllByText('尚无节点注册')).toHaveLength(2);
    expect(screen.getByText('在线节点尚未上报Agent')).toBeInTheDocument();
    expect(screen.getByText('暂无告警')).toBeInTheDocument();
  });

  it('shows an error with a retry when the API fails', async () => {
    signInAs('viewer');
    stubFetch(() => failure(500, 5001, 'database error'));
    renderPage(<DashboardPage />);
    expect(await screen.findByRole('alert')).toHaveTextContent('数据加载失败: database error (5001)');
    expect(screen.getByRole('button', { name: '重试' })).toBeInTheDocument();
  });
});
