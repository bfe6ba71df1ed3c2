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

  it('draws the fleet trend and lists the latest packages', async () => {
    signInAs('viewer');
    const point = (minute: number, cpu: number) => ({
      timestamp: `2026-12-01T10:${String(minute).padStart(2, '0')}:00Z`, nodes: 3, samples: 15,
      cpu_usage_avg: cpu, cpu_usage_max: cpu + 5, memory_usage_avg: 40, memory_usage_max: 50,
      disk_usage_avg: 20, disk_usage_max: 22,
    });
    const version = (id: number, is_latest: boolean) => ({
      id, component: 'agent', version: `1.${id}.0`, os: 'linux', arch: 'amd64', file_name: 'a.tgz', file_size: 1,
      hash_sha256: 'x', release_notes: null, is_latest, key_fingerprint: null, created_by: 1, created_at: null,
    });
    stubFetch(
      route('GET', '/api/v1/nodes', () => envelope({ total: 3, items: [], page: 1, page_size: 1 })),
      route('GET', '/api/v1/versions', () => envelope({ total: 2, items: [version(1, false), version(2, true)], page: 1, page_size: 100 })),
      route('GET', '/api/v1/metrics/trend', () => envelope([point(0, 10), point(5, 30), point(10, 20)])),
    );
    renderPage(<DashboardPage />);
    expect(await screen.findByText('1.2.0')).toBeInTheDocument();
    expect(screen.queryByText('1.1.0')).not.toBeInTheDocument();
    expect(screen.queryByText('最近24小时没有指标数据')).not.toBeInTheDocument();
    // The trend's legend names its series (the status pie has other labels).
    expect(screen.getByText('内存')).toBeInTheDocument();
    expect(screen.getByText('磁盘')).toBeInTheDocument();
  });

  it('shows an error with a retry when the API fails', async () => {
    signInAs('viewer');
    stubFetch(() => failure(500, 5001, 'database error'));
    renderPage(<DashboardPage />);
    expect(await screen.findByRole('alert')).toHaveTextContent('数据加载失败: database error (5001)');
    expect(screen.getByRole('button', { name: '重试' })).toBeInTheDocument();
  });
});
