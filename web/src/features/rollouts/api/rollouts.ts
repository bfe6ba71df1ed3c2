import { queryOptions } from '@tanstack/react-query';

import { api, unwrap, type Schemas } from '@/api/client';
import type { paths } from '@/api/generated/schema';
import { keys } from '@/api/keys';

export type Rollout = Schemas['RolloutRead'];
export type RolloutStatus = Rollout['status'];
export type DeployStatus = Schemas['DeployStatus'];
export type UpdateRecord = Schemas['UpdateRecordRead'];

export const ROLLOUT_STATUSES: RolloutStatus[] = ['running', 'paused', 'cancelled', 'completed', 'failed'];
const ACTIVE = new Set<RolloutStatus>(['running', 'paused']);
export const POLL_MS = 2000;

export function isActive(status: RolloutStatus | undefined): boolean {
  return status !== undefined && ACTIVE.has(status);
}

export interface RolloutListParams {
  status?: RolloutStatus;
  page: number;
  page_size: number;
}

export const rolloutListQuery = (params: RolloutListParams) =>
  queryOptions({
    queryKey: keys.rolloutList(params),
    queryFn: () => unwrap(api.GET('/api/v1/updates', { params: { query: params } })),
    // The list follows active rollouts too, less often than a rollout's own page.
    refetchInterval: (query) => (query.state.data?.items.some((r) => isActive(r.status)) ? 5000 : false),
  });

export type UpdateState = NonNullable<NonNullable<NonNullable<paths['/api/v1/updates/{batch_id}/status']['get']['parameters']['query']>['record_status']>>;
export const UPDATE_STATES: UpdateState[] = ['pending', 'downloading', 'installing', 'verifying', 'success', 'failed', 'rollback'];

export interface RecordPage {
  page: number;
  page_size: number;
  record_status?: UpdateState;
}

/** A rollout's progress, polled every 2 s while it can still change (running or paused:
 * orders already sent are carried out during a pause). One page of its records: a rollout
 * may hold tens of thousands. */
export const rolloutStatusQuery = (batchId: string, records: RecordPage = { page: 1, page_size: 50 }) =>
  queryOptions({
    queryKey: keys.rollout(batchId, records),
    queryFn: () =>
      unwrap(api.GET('/api/v1/updates/{batch_id}/status', { params: { path: { batch_id: batchId }, query: records } })),
    refetchInterval: (query) => (query.state.data && !isActive(query.state.data.status) ? false : POLL_MS),
  });

export type RolloutAction = 'pause' | 'resume' | 'cancel';

export function controlRollout(batchId: string, action: RolloutAction) {
  const params = { params: { path: { batch_id: batchId } } };
  if (action === 'pause') return unwrap(api.POST('/api/v1/updates/{batch_id}/pause', params));
  if (action === 'resume') return unwrap(api.POST('/api/v1/updates/{batch_id}/resume', params));
  return unwrap(api.POST('/api/v1/updates/{batch_id}/cancel', params));
}

export function rollbackRollout(batchId: string) {
  return unwrap(api.POST('/api/v1/updates/{batch_id}/rollback', { params: { path: { batch_id: batchId } }, body: null }));
}
