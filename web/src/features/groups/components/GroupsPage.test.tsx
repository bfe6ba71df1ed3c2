import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import { GroupsPage } from '@/features/groups/components/GroupsPage';
import type { Role } from '@/stores/auth';
import { envelope, route, stubFetch } from '@/testing/fetch';
import { renderPage, signInAs } from '@/testing/render';

const group = { id: 3, name: 'payments', description: null, parent_id: null, sort_order: 0, created_at: null, updated_at: null, children: [] };

function renderGroups(role: Role) {
  signInAs(role);
  const stub = stubFetch(
    route('GET', '/api/v1/groups', () => envelope([group])),
    route('GET', '/api/v1/groups/3/config', () => envelope({ config: { metric_interval: '15' } })),
    route('PUT', '/api/v1/groups/3/config', async (request) => envelope(await request.json())),
  );
  renderPage(<GroupsPage />);
  return stub;
}

describe('GroupsPage configuration', () => {
  it("edits a group's own configuration", async () => {
    const { calls } = renderGroups('operator');
    await userEvent.click(await screen.findByRole('button', { name: '分组配置 payments' }));
    const dialog = await screen.findByRole('dialog', { name: 'payments 的配置' });
    const value = within(dialog).getByRole('textbox', { name: '值 metric_interval' });
    await userEvent.clear(value);
    await userEvent.type(value, '30');
    await userEvent.click(within(dialog).getByRole('button', { name: '添加键' }));
    await userEvent.type(within(dialog).getByRole('textbox', { name: '键 2' }), 'region');
    await userEvent.type(within(dialog).getByRole('textbox', { name: '值 region' }), 'eu');
    await userEvent.click(within(dialog).getByRole('button', { name: '保存' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    const put = calls.find((c) => c.method === 'PUT');
    expect(await put?.json()).toEqual({ config: { metric_interval: '30', region: 'eu' } });
  });

  it('offers a viewer no configuration', async () => {
    renderGroups('viewer');
    expect(await screen.findByText('payments')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: '分组配置 payments' })).not.toBeInTheDocument();
  });
});
