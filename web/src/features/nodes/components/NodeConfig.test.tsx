import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import { NodeConfig } from '@/features/nodes/components/NodeConfig';
import { envelope, json, route, stubFetch } from '@/testing/fetch';
import { renderPage, signInAs } from '@/testing/render';

const group = { id: 3, name: 'payments', description: null, parent_id: null, sort_order: 0, created_at: null, updated_at: null };
const delivery = (state: string, extra: object = {}) => ({
  command_id: 'c-1', state, current: true, error: null, created_at: '2026-12-01T10:00:00Z', done_at: null, ...extra,
});

function renderConfig(deliveries: (object | null)[]) {
  signInAs('operator');
  let reads = 0;
  const stub = stubFetch(
    route('GET', '/api/v1/groups', () => envelope([group])),
    route('GET', '/api/v1/nodes/5/config/effective', () => {
      const shown = deliveries[Math.min(reads, deliveries.length - 1)];
      reads += 1;
      return envelope({
        config: { heartbeat_interval: '30', metric_interval: '15', region: 'eu' },
        sources: { heartbeat_interval: 'default', metric_interval: 'group:3', region: 'node' },
        delivery: shown,
      });
    }),
    route('GET', '/api/v1/nodes/5/config', () => envelope({ config: { region: 'eu' } })),
    route('PUT', '/api/v1/nodes/5/config', async (request) => {
      const body = (await request.json()) as { config: Record<string, string> };
      if (body.config.heartbeat_interval === '0') {
        const message = 'must be a whole number of seconds from 1 to 89, got \'0\'';
        return json({ code: 1001, message: `config.heartbeat_interval ${message}`, data: { errors: [{ field: 'config.heartbeat_interval', message }] }, request_id: 't' }, 400);
      }
      return envelope(body);
    }),
  );
  renderPage(<NodeConfig nodeId={5} />);
  return stub;
}

describe('NodeConfig', () => {
  it('shows the effective configuration with where each key comes from', async () => {
    renderConfig([delivery('done', { done_at: '2026-12-01T10:00:05Z' })]);
    const panel = await screen.findByTestId('node-config');
    const rows = await within(panel).findAllByRole('row');
    expect(rows.slice(1).map((row) => row.textContent)).toEqual(['heartbeat_interval30默认', 'metric_interval15分组 payments', 'regioneu本节点']);
    expect(screen.getByTestId('config-delivery')).toHaveTextContent(/^守护进程已应用（.+）。$/);
  });

  it('follows a delivery until the daemon applies it', async () => {
    renderConfig([delivery('pending'), delivery('sent'), delivery('done', { done_at: '2026-12-01T10:00:05Z' })]);
    expect(await screen.findByText('尚未送达：守护进程下次连接时接收。')).toBeInTheDocument();
    await waitFor(() => expect(screen.getByTestId('config-delivery')).toHaveTextContent('守护进程已应用'), { timeout: 8000 });
  }, 15_000);

  it('says what the daemon objected to, and when nothing was sent since it enrolled', async () => {
    renderConfig([delivery('failed', { error: 'region=eu is not served here', current: false })]);
    expect(await screen.findByTestId('config-delivery')).toHaveTextContent(
      '守护进程拒绝了此配置：region=eu is not served here 下发之后，当前显示的配置又有变化。',
    );
  });

  it('edits the node level and shows the server refusing a value on its row', async () => {
    const { calls } = renderConfig([null]);
    expect(await screen.findByTestId('config-delivery')).toHaveTextContent('节点注册以来未下发过配置');
    await userEvent.click(screen.getByRole('button', { name: '编辑节点配置' }));
    const dialog = await screen.findByRole('dialog', { name: '编辑节点配置' });
    expect(within(dialog).getByRole('textbox', { name: '值 region' })).toHaveValue('eu');
    await userEvent.click(within(dialog).getByRole('button', { name: '添加键' }));
    await userEvent.type(within(dialog).getByRole('textbox', { name: '键 2' }), 'Bad Key');
    expect(within(dialog).getByText('小写字母、数字、_ 和 .（最多 64 个）')).toBeInTheDocument();
    expect(within(dialog).getByRole('button', { name: '保存' })).toBeDisabled();
    const key = within(dialog).getByRole('textbox', { name: '键 2' });
    await userEvent.clear(key);
    await userEvent.type(key, 'heartbeat_interval');
    await userEvent.type(within(dialog).getByRole('textbox', { name: '值 heartbeat_interval' }), '0');
    await userEvent.click(within(dialog).getByRole('button', { name: '保存' }));
    expect(await within(dialog).findByText("must be a whole number of seconds from 1 to 89, got '0'")).toBeInTheDocument();
    const value = within(dialog).getByRole('textbox', { name: '值 heartbeat_interval' });
    await userEvent.clear(value);
    await userEvent.type(value, '20');
    await userEvent.click(within(dialog).getByRole('button', { name: '移除 region' }));
    await userEvent.click(within(dialog).getByRole('button', { name: '保存' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    const puts = calls.filter((c) => c.method === 'PUT');
    expect(await puts.at(-1)?.json()).toEqual({ config: { heartbeat_interval: '20' } });
  });
});
