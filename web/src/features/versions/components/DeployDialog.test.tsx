import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';

import { DeployDialog } from '@/features/versions/components/DeployDialog';
import { envelope, failure, route, stubFetch } from '@/testing/fetch';
import { renderPage, signInAs } from '@/testing/render';

const version = {
  id: 7, component: 'agent', version: '2.0.0', os: 'linux', arch: 'amd64', file_name: 'agent.tgz', file_size: 2048,
  hash_sha256: 'abc', release_notes: null, is_latest: true, key_fingerprint: null, created_by: 1, created_at: null,
} as const;
const group = { id: 3, name: 'edge', description: null, parent_id: null, sort_order: 0, created_at: null, updated_at: null };
const plan = (dryRun: boolean) => ({
  batch_id: dryRun ? null : '0c1d2e3f-0000-4000-8000-000000000001',
  dry_run: dryRun,
  total_nodes: 3,
  batches: [[{ id: 1, name: 'edge-1', offline: false }], [{ id: 2, name: 'edge-2', offline: false }, { id: 3, name: 'edge-3', offline: true }]],
  ineligible: [{ id: 4, name: 'edge-4', reason: 'version: already runs agent 2.0.0' }],
});

function renderDialog() {
  signInAs('operator');
  const onStarted = vi.fn();
  const stub = stubFetch(
    route('GET', '/api/v1/groups', () => envelope([group])),
    route('POST', '/api/v1/updates/deploy', async (request) => {
      const body = (await request.json()) as { dry_run: boolean; canary_size: number };
      if (body.canary_size > 50) return failure(400, 1001, 'canary_size: larger than the target');
      return envelope(plan(body.dry_run));
    }),
  );
  renderPage(<DeployDialog version={{ ...version }} onClose={() => undefined} onStarted={onStarted} />);
  return { ...stub, onStarted };
}

async function choose(label: string, option: string) {
  await userEvent.click(screen.getByRole('combobox', { name: label }));
  await userEvent.click(await screen.findByRole('option', { name: option }));
}

describe('DeployDialog', () => {
  it('previews the waves and the ineligible nodes, then starts the same settings', async () => {
    const { calls, onStarted } = renderDialog();
    const dialog = screen.getByRole('dialog');
    expect(dialog).toHaveTextContent('部署 agent 2.0.0（linux/amd64）');
    await choose('目标', '分组');
    await userEvent.click(await screen.findByRole('combobox', { name: '分组' }));
    await userEvent.click(await screen.findByRole('option', { name: 'edge' }));
    await userEvent.keyboard('{Escape}');
    await choose('策略', '金丝雀');
    const bake = within(dialog).getByLabelText('观察时间（秒）');
    await userEvent.clear(bake);
    await userEvent.type(bake, '60');
    const start = within(dialog).getByRole('button', { name: '开始部署' });
    expect(start).toBeDisabled(); // not before a preview
    await userEvent.click(within(dialog).getByRole('button', { name: '预览计划' }));

    const shown = await within(dialog).findByTestId('deploy-plan');
    expect(shown).toHaveTextContent('将更新 3 个节点，共 2 批');
    const waves = within(shown).getAllByTestId('deploy-wave');
    expect(waves[0]).toHaveTextContent('第 1 批：1 个节点');
    expect(waves[1]).toHaveTextContent('edge-3 · 离线');
    expect(within(shown).getByTestId('deploy-ineligible')).toHaveTextContent('edge-4version: already runs agent 2.0.0');

    expect(start).toBeEnabled();
    await userEvent.click(start);
    await waitFor(() => expect(onStarted).toHaveBeenCalledWith('0c1d2e3f-0000-4000-8000-000000000001'));
    const posts = calls.filter((c) => c.method === 'POST');
    const [preview, real] = await Promise.all(posts.map((c) => c.json() as Promise<Record<string, unknown>>));
    expect(preview).toEqual({
      component: 'agent', version_id: 7, target_type: 'group', target_value: ['3'], strategy: 'canary', max_failures: 0,
      expires_in_seconds: 3600, batch_size: 10, canary_size: 1, bake_seconds: 60, dry_run: true,
    });
    expect(real).toEqual({ ...preview, dry_run: false });
  });

  it('drops the preview when a setting changes, so only a previewed plan can start', async () => {
    renderDialog();
    const dialog = screen.getByRole('dialog');
    await userEvent.click(within(dialog).getByRole('button', { name: '预览计划' }));
    expect(await within(dialog).findByTestId('deploy-plan')).toBeInTheDocument();
    await choose('策略', '滚动');
    expect(within(dialog).queryByTestId('deploy-plan')).not.toBeInTheDocument();
    expect(within(dialog).getByRole('button', { name: '开始部署' })).toBeDisabled();
  });

  it("refuses bad numbers before asking, and shows the API's refusal", async () => {
    renderDialog();
    const dialog = screen.getByRole('dialog');
    await choose('策略', '金丝雀');
    const canary = within(dialog).getByLabelText('金丝雀节点数');
    await userEvent.clear(canary);
    await userEvent.type(canary, 'x');
    expect(within(dialog).getByRole('button', { name: '预览计划' })).toBeDisabled();
    await userEvent.clear(canary);
    await userEvent.type(canary, '99');
    await userEvent.click(within(dialog).getByRole('button', { name: '预览计划' }));
    expect(await within(dialog).findByTestId('deploy-error')).toHaveTextContent('canary_size: larger than the target (1001)');
  });

  it('needs at least one tag for a tag target', async () => {
    const { calls } = renderDialog();
    const dialog = screen.getByRole('dialog');
    await choose('目标', '标签');
    expect(within(dialog).getByRole('button', { name: '预览计划' })).toBeDisabled();
    await userEvent.type(within(dialog).getByRole('textbox', { name: '标签' }), 'web, db');
    await userEvent.click(within(dialog).getByRole('button', { name: '预览计划' }));
    await within(dialog).findByTestId('deploy-plan');
    const body = (await calls.find((c) => c.method === 'POST')?.json()) as { target_type: string; target_value: string[] };
    expect(body).toMatchObject({ target_type: 'tag', target_value: ['web', 'db'] });
  });
});
