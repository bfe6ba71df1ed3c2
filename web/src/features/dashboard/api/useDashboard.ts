import { useQuery } from '@tanstack/react-query';

import { api, unwrap, type Schemas } from '@/api/client';
import { keys } from '@/api/keys';

export type DashboardData = Schemas['Dashboard'];

const REFRESH_MS = 30_000;

/** The fleet at a glance, computed by the Manager in one call (`generated_at` says when). */
export function fetchDashboard(): Promise<DashboardData> {
  return unwrap(api.GET('/api/v1/system/dashboard'));
}

export function useDashboard() {
  return useQuery({ queryKey: keys.dashboard, queryFn: fetchDashboard, refetchInterval: REFRESH_MS });
}
