import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import { SilencesPage } from '@/features/alerts/components/SilencesPage';
import type { Role } from '@/stores/auth';
import { envelope, route, stubFetch } from '@/testing/fetch';
import { renderRoutes, signInAs } from '@/testing/render';

const silence = {
  id: 4, target_type: 'rule', target_value: '2', reason: 'deploy window', starts_at: '2026-12-01T10:00:00Z',
  ends_at: '2026-12-01T14:00:00Z', active: true, created_by: 1, created_at: null, updated_at: null,
};
const rule = { id: 2, name: 'cpu high' };

function renderSilences(role: Role, path = '/alerts/silences', items: object[] = [silence]) {
  signInAs(role);
  const stub = stubFetch(
    route('GET', '/api/v1/alerts/silences', () => envelope({ total: items.length, items, page: 1, page_size: 20 })),
    route('GET', '/api/v1/alerts/rules', () => envelope({ total: 1, items: [rule], page: 1, page_size: 100 })),
    route('POST', '/api/v1/alerts/silences', async (request) => envelope({ ...silence, ...((await request.json()) as object) })),
    route('DELETE', '/api/v1/alerts/silences/4', () => envelope({})),
  );
  const view = renderRoutes([{ path: '/alerts/silences', element: <SilencesPage /> }], path);
  return { ...stub, ...view };
}

const asked = (calls: Request[]) =>
  calls.filter((c) => new URL(c.url).pathname === '/api/v1/alerts/silences' && c.method === 'GET').map((c) => new URL(c.url).searchParams.get('active'));

describe('SilencesPage', () => {
  it('lists the silences in force, naming their rule, and all of them on request', async () => {
    const { calls, router } = renderSilences('viewer');
    expect(await screen.findByText('规则: cpu high')).toBeInTheDocument();
    expect(screen.getByText('生效中')).toBeInTheDocument();
    expect(asked(calls)[0]).toBe('true');
    await userEvent.click(screen.getByLabelText('只看生效中的静默'));
    await waitFor(() => expect(asked(calls).at(-1)).toBe('false'));
    expect(router.state.location.search).toBe('?active=false');
  });

  it('creates a silence for a tag', async () => {
    const { calls } = renderSilences('operator');
    await userEvent.click(await screen.findByRole('button', { name: '新建静默' }));
    const dialog = screen.getByRole('dialog');
    await userEvent.click(within(dialog).getByRole('combobox', { name: '静默类型' }));
    await userEvent.click(await screen.findByRole('option', { name: '标签' }));
    await userEvent.type(within(dialog).getByRole('textbox', { name: '静默目标' }), 'db');
    await userEvent.type(within(dialog).getByRole('textbox', { name: '原因' }), 'migration');
    await userEvent.click(within(dialog).getByRole('button', { name: '静默' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'POST')).toBe(true));
    expect(await calls.find((c) => c.method === 'POST')?.json()).toMatchObject({ target_type: 'tag', target_value: 'db', reason: 'migration' });
  });

  it('ends a silence after a confirmation', async () => {
    const { calls } = renderSilences('operator');
    await userEvent.click(await screen.findByRole('button', { name: '结束静默 #4' }));
    await userEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: '结束静默' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'DELETE' && c.url.endsWith('/silences/4'))).toBe(true));
  });

  it('gives a viewer nothing to change', async () => {
    renderSilences('viewer');
    await screen.findByText('规则: cpu high');
    expect(screen.queryByRole('button', { name: '新建静默' })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /结束静默/ })).not.toBeInTheDocument();
  });

  it('says when there is none', async () => {
    renderSilences('viewer', '/alerts/silences', []);
    expect(await screen.findByText('没有静默')).toBeInTheDocument();
  });
});
