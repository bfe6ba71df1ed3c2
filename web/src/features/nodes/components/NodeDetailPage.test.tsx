import { screen, waitFor } from '@testing-library/react';
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

function renderDetail(role: Role, path = '/nodes/5') {
  signInAs(role);
  const stub = stubFetch(
    route('GET', '/api/v1/nodes/5', () => envelope(node)),
    route('GET', '/api/v1/nodes/404', () => failure(404, 2001, 'node not found')),
    route('GET', '/api/v1/nodes/5/metrics', () => envelope([])),
    route('GET', '/api/v1/nodes/5/events', () => envelope({ total: 0, items: [], page: 1, page_size: 20 })),
    route('GET', '/api/v1/groups', () => envelope([{ id: 3, name: 'payments', description: null, parent_id: null, sort_order: 0, created_at: null, updated_at: null }])),
    route('PUT', '/api/v1/nodes/5', () => envelope(node)),
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

  it('says when the node does not exist', async () => {
    renderDetail('viewer', '/nodes/404');
    expect(await screen.findByText('节点不存在（可能已被删除）')).toBeInTheDocument();
  });
});
