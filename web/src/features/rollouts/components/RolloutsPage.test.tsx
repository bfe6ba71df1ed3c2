import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import { RolloutsPage } from '@/features/rollouts/components/RolloutsPage';
import { envelope, route, stubFetch } from '@/testing/fetch';
import { renderRoutes, signInAs } from '@/testing/render';

const rollout = {
  batch_id: '0c1d2e3f-0000-4000-8000-000000000001', component: 'agent', version_id: 7, version: '2.0.0', strategy: 'canary',
  batch_size: 5, max_failures: 0, canary_size: 1, bake_seconds: 60, total_waves: 3, current_wave: 2, status: 'running',
  reason: null, wait_seconds: 3600, expires_at: null, created_by: 1, created_at: null, finished_at: null, rollback_of: null,
  counts: { pending: 2, downloading: 1, installing: 0, verifying: 0, success: 6, failed: 1, rollback: 1 },
};

describe('RolloutsPage', () => {
  it('lists rollouts with their counts, filters by status in the URL and opens one', async () => {
    signInAs('viewer');
    const { calls } = stubFetch(
      route('GET', '/api/v1/updates', () => envelope({ total: 1, items: [rollout], page: 1, page_size: 20 })),
    );
    const { router } = renderRoutes(
      [
        { path: '/rollouts', element: <RolloutsPage /> },
        { path: '/rollouts/:id', element: <p>detail</p> },
      ],
      '/rollouts?status=running',
    );
    expect(await screen.findByText('agent 2.0.0')).toBeInTheDocument();
    expect(new URL(calls[0]?.url ?? '').searchParams.get('status')).toBe('running');
    expect(screen.getByText('金丝雀')).toBeInTheDocument();
    expect(screen.getByText('2 / 3')).toBeInTheDocument();
    // Rolled back records count as failed; those not final yet as pending.
    expect(screen.getByText('成功 6 · 失败 2 · 未完成 3 / 共 11')).toBeInTheDocument();
    await userEvent.click(screen.getByText('agent 2.0.0'));
    expect(router.state.location.pathname).toBe('/rollouts/0c1d2e3f-0000-4000-8000-000000000001');
  });

  it('says when there is none', async () => {
    signInAs('viewer');
    stubFetch(route('GET', '/api/v1/updates', () => envelope({ total: 0, items: [], page: 1, page_size: 20 })));
    renderRoutes([{ path: '/rollouts', element: <RolloutsPage /> }], '/rollouts');
    expect(await screen.findByText('还没有发布')).toBeInTheDocument();
  });
});
