import { useQuery } from '@tanstack/react-query';

import { api, unwrap, type Schemas } from '@/api/client';
import { keys } from '@/api/keys';

export interface DashboardData {
  nodes: { total: number; online: number; offline: number; unknown: number };
  latestVersions: Schemas['VersionRead'][];
  trend: Schemas['FleetTrendPoint'][];
}

const REFRESH_MS = 30_000;

async function countNodes(status?: 'online' | 'offline' | 'unknown'): Promise<number> {
  const page = await unwrap(
    api.GET('/api/v1/nodes', { params: { query: { status, page: 1, page_size: 1 } } }),
  );
  return page.total;
}

/**
 * Everything the dashboard shows, from the APIs that exist today (node counts through the
 * list's totals, the latest packages, the fleet's 24 h trend). The page reads only this hook,
 * so moving to one `GET /system/dashboard` changes this function alone.
 */
export async function fetchDashboard(): Promise<DashboardData> {
  const [total, online, offline, unknown, versions, trend] = await Promise.all([
    countNodes(),
    countNodes('online'),
    countNodes('offline'),
    countNodes('unknown'),
    unwrap(api.GET('/api/v1/versions', { params: { query: { page: 1, page_size: 100 } } })),
    unwrap(api.GET('/api/v1/metrics/trend')),
  ]);
  return {
    nodes: { total, online, offline, unknown },
    latestVersions: versions.items.filter((version) => version.is_latest),
    trend,
  };
}

export function useDashboard() {
  return useQuery({ queryKey: keys.dashboard, queryFn: fetchDashboard, refetchInterval: REFRESH_MS });
}
