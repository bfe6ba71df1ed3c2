import { screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';

import { DashboardPage } from '@/features/dashboard/components/DashboardPage';
import { envelope, failure, route, stubFetch } from '@/testing/fetch';
import { renderPage, signInAs } from '@/testing/render';

const totals: Record<string, number> = { '': 10, online: 7, offline: 2, unknown: 1 };

describe('DashboardPage', () => {
  it('shows node counts by status from the node list totals', async () => {
    signInAs('viewer');
    stubFetch(
      route('GET', '/api/v1/nodes', (_r, url) =>
        envelope({ total: totals[url.searchParams.get('status') ?? ''], items: [], page: 1, page_size: 1 }),
      ),
      route('GET', '/api/v1/versions', () => envelope({ total: 0, items: [], page: 1, page_size: 100 })),
      route('GET', '/api/v1/metrics/trend', () => envelope([])),
    );
    renderPage(<DashboardPage />);
    expect(await screen.findByTestId('count-total')).toHaveTextContent('10');
    expect(screen.getByTestId('count-online')).toHaveTextContent('7');
    expect(screen.getByTestId('count-offline')).toHaveTextContent('2');
    expect(screen.getByTestId('count-unknown')).toHaveTextContent('1');
    expect(screen.getByText('尚未上传版本')).toBeInTheDocument();
    expect(screen.getByText('最近24小时没有指标数据')).toBeInTheDocument();
  });

  it('shows an error with a retry when the API fails', async () => {
    signInAs('viewer');
    stubFetch(() => failure(500, 5001, 'database error'));
    renderPage(<DashboardPage />);
    expect(await screen.findByRole('alert')).toHaveTextContent('数据加载失败: database error (5001)');
    expect(screen.getByRole('button', { name: '重试' })).toBeInTheDocument();
  });
});
