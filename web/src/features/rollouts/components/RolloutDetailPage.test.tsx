import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import { rolloutStatusQuery, type DeployStatus } from '@/features/rollouts/api/rollouts';
import { RolloutDetailPage } from '@/features/rollouts/components/RolloutDetailPage';
import type { Role } from '@/stores/auth';
import { envelope, failure, route, stubFetch } from '@/testing/fetch';
import { renderRoutes, signInAs } from '@/testing/render';

const BATCH = '0c1d2e3f-0000-4000-8000-000000000001';
const BACK = '0c1d2e3f-0000-4000-8000-000000000002';
const record = (id: number, status: string, progress: number, error: string | null = null) => ({
  id, node_id: id, node_name: `edge-${id}`, wave: 1, from_version: '1.0.0', to_version: '2.0.0', status, progress,
  error_message: error, started_at: null, finished_at: null,
});
const running: DeployStatus = {
  batch_id: BATCH, status: 'running', reason: null, current_wave: 1, total_waves: 2, total: 3, success: 1, failed: 0, pending: 2, records_total: 3,
  records: [record(1, 'success', 100), record(2, 'downloading', 50), record(3, 'pending', 0)],
};
const completed: DeployStatus = {
  ...running, status: 'completed', current_wave: 2, success: 2, failed: 1, pending: 0,
  records: [record(1, 'success', 100), record(2, 'success', 100), record(3, 'failed', 0, 'simulated: the download was cut 3 times')],
};

/** `answers`: what each poll gets in turn (the last one again after), or a function of
 * whether the rollout was paused through the page. */
function renderDetail(role: Role, answers: DeployStatus[] | ((paused: boolean) => DeployStatus), path = `/rollouts/${BATCH}`) {
  signInAs(role);
  let asked = 0;
  let paused = false;
  const answer = () =>
    typeof answers === 'function' ? answers(paused) : answers[Math.min(asked++, answers.length - 1)];
  const stub = stubFetch(
    route('GET', `/api/v1/updates/${BATCH}/status`, () => envelope(answer())),
    route('GET', `/api/v1/updates/${BACK}/status`, () => envelope({ ...completed, batch_id: BACK })),
    route('GET', /\/api\/v1\/updates\/[0-9a-f-]+\/status$/, () => failure(404, 4005, 'rollout not found')),
    route('POST', `/api/v1/updates/${BATCH}/pause`, () => {
      paused = true;
      return envelope({});
    }),
    route('POST', `/api/v1/updates/${BATCH}/rollback`, () => envelope({ batch_ids: [BACK], total_nodes: 2, ineligible: [] })),
  );
  const view = renderRoutes([{ path: '/rollouts/:batchId', element: <RolloutDetailPage /> }], path);
  return { ...stub, ...view };
}

describe('RolloutDetailPage', () => {
  it("shows each node's progress and follows a running rollout until it ends", async () => {
    renderDetail('viewer', [running, completed]);
    expect(await screen.findByText('第 1 / 2 批')).toBeInTheDocument();
    expect(screen.getByTestId('rollout-status')).toHaveTextContent('进行中');
    expect(screen.getByTestId('rollout-progress')).toHaveTextContent('成功 1 · 失败 0 · 未完成 2 / 共 3');
    expect(screen.getByRole('link', { name: 'edge-2' })).toHaveAttribute('href', '/nodes/2');
    expect(screen.getByText('下载中')).toBeInTheDocument();
    expect(screen.getByText('50%')).toBeInTheDocument();
    // The next poll (2 s) brings the end.
    await waitFor(() => expect(screen.getByTestId('rollout-status')).toHaveTextContent('已完成'), { timeout: 5000 });
    // The grid lays out its rows after the header has changed: wait for them too.
    expect(await screen.findByText('simulated: the download was cut 3 times')).toBeInTheDocument();
    expect(screen.getByTestId('rollout-progress')).toHaveTextContent('成功 2 · 失败 1 · 未完成 0 / 共 3');
  });

  it('polls every 2 s while the rollout can change, and stops once it ended', () => {
    const interval = rolloutStatusQuery(BATCH).refetchInterval as (query: { state: { data?: DeployStatus } }) => number | false;
    expect(interval({ state: {} })).toBe(2000);
    expect(interval({ state: { data: running } })).toBe(2000);
    expect(interval({ state: { data: { ...running, status: 'paused' } } })).toBe(2000);
    expect(interval({ state: { data: completed } })).toBe(false);
    expect(interval({ state: { data: { ...running, status: 'cancelled' } } })).toBe(false);
  });

  it('asks the server for one page of records, of the chosen state', async () => {
    const { calls } = renderDetail('viewer', [running]);
    await screen.findByText('第 1 / 2 批');
    const asked = () => new URL(calls[calls.length - 1]!.url).searchParams;
    expect(asked().get('page')).toBe('1');
    expect(asked().get('page_size')).toBe('50');
    expect(asked().get('record_status')).toBeNull();
    await userEvent.click(screen.getByRole('combobox', { name: '节点状态' }));
    await userEvent.click(await screen.findByRole('option', { name: '失败' }));
    await waitFor(() => expect(asked().get('record_status')).toBe('failed'));
    expect(asked().get('page')).toBe('1');
  });

  it('shows a viewer no controls', async () => {
    renderDetail('viewer', [running]);
    await screen.findByText('第 1 / 2 批');
    for (const name of ['暂停', '继续', '取消发布', '回滚']) {
      expect(screen.queryByRole('button', { name })).not.toBeInTheDocument();
    }
  });

  it('lets an operator pause a running rollout', async () => {
    // Paused only by the click: a poll must not take the button away before it is pressed.
    const { calls } = renderDetail('operator', (paused) => (paused ? { ...running, status: 'paused' } : running));
    await userEvent.click(await screen.findByRole('button', { name: '暂停' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'POST' && c.url.endsWith('/pause'))).toBe(true));
    expect(await screen.findByRole('button', { name: '继续' })).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: '暂停' })).not.toBeInTheDocument();
    expect(screen.getByRole('button', { name: '取消发布' })).toBeInTheDocument();
  });

  it('rolls back after a confirmation and opens the rollback rollout', async () => {
    const { router } = renderDetail('admin', [completed]);
    await userEvent.click(await screen.findByRole('button', { name: '回滚' }));
    const dialog = screen.getByRole('dialog');
    expect(dialog).toHaveTextContent('回到之前的版本');
    await userEvent.click(within(dialog).getByRole('button', { name: '回滚' }));
    await waitFor(() => expect(router.state.location.pathname).toBe(`/rollouts/${BACK}`));
    expect(await screen.findByText('已开始回滚：2 个节点，1 个发布')).toBeInTheDocument();
  });

  it('says when the rollout does not exist', async () => {
    renderDetail('viewer', [running], '/rollouts/0c1d2e3f-0000-4000-8000-0000000000ff');
    expect(await screen.findByText('发布不存在')).toBeInTheDocument();
    renderDetail('viewer', [running], '/rollouts/not-a-batch');
    expect(await screen.findAllByText('发布不存在')).toHaveLength(2);
  });
});
