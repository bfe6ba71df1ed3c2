import { queryOptions } from '@tanstack/react-query';

import { api, unwrap, type Schemas } from '@/api/client';
import { keys } from '@/api/keys';

export type Node = Schemas['NodeRead'];
export type NodeStatus = Node['status'];

export interface NodeListParams {
  keyword?: string;
  status?: NodeStatus;
  group_id?: number;
  tags?: string;
  label?: string[];
  sort?:
    | 'id' | '-id' | 'hostname' | '-hostname' | 'ip' | '-ip' | 'status' | '-status'
    | 'last_heartbeat' | '-last_heartbeat' | 'created_at' | '-created_at';
  page: number;
  page_size: number;
}

export const nodeListQuery = (params: NodeListParams) =>
  queryOptions({
    queryKey: keys.nodeList(params),
    queryFn: () => unwrap(api.GET('/api/v1/nodes', { params: { query: params } })),
    refetchInterval: 30_000,
  });

export const nodeQuery = (id: number) =>
  queryOptions({
    queryKey: keys.node(id),
    queryFn: () => unwrap(api.GET('/api/v1/nodes/{id}', { params: { path: { id } } })),
    refetchInterval: 30_000,
  });

export const METRIC_RANGES = { '1h': 3600, '6h': 6 * 3600, '24h': 24 * 3600, '7d': 7 * 86400 } as const;
export type MetricRange = keyof typeof METRIC_RANGES;

export const nodeMetricsQuery = (id: number, range: MetricRange) =>
  queryOptions({
    queryKey: keys.nodeMetrics(id, range),
    queryFn: () => {
      const start = new Date(Date.now() - METRIC_RANGES[range] * 1000).toISOString();
      return unwrap(api.GET('/api/v1/nodes/{id}/metrics', { params: { path: { id }, query: { start } } }));
    },
    refetchInterval: 60_000,
  });

export type TimelineEvent = Schemas['Timeline']['events'][number];
export type UpdateEvent = Extract<TimelineEvent, { kind: 'update' }>;

/** How far back the update history reaches (the timeline allows 31 days). */
export const UPDATE_HISTORY_SECONDS = 30 * 86400;

/** What happened to a node over the last `seconds`: status changes, alerts, updates, task runs. */
export const nodeTimelineQuery = (id: number, seconds: number) =>
  queryOptions({
    queryKey: keys.nodeTimeline(id, String(seconds)),
    queryFn: () => {
      const start = new Date(Date.now() - seconds * 1000).toISOString();
      return unwrap(api.GET('/api/v1/nodes/{id}/timeline', { params: { path: { id }, query: { start, limit: 500 } } }));
    },
    refetchInterval: 60_000,
  });

export type CommandType = 'ping' | 'restart';

export function sendCommand(nodeId: number, type: CommandType) {
  return unwrap(api.POST('/api/v1/commands', { body: { node_ids: [nodeId], type, ttl_seconds: 600 } }));
}

const FINAL_STATES = new Set(['done', 'failed', 'expired']);

export const commandQuery = (id: string) =>
  queryOptions({
    queryKey: keys.command(id),
    queryFn: () => unwrap(api.GET('/api/v1/commands/{id}', { params: { path: { id } } })),
    refetchInterval: (query) => (query.state.data && FINAL_STATES.has(query.state.data.state) ? false : 2000),
  });

export function deleteNode(id: number) {
  return unwrap(api.DELETE('/api/v1/nodes/{id}', { params: { path: { id } } }));
}

export function updateNode(id: number, body: Schemas['NodeUpdate']) {
  return unwrap(api.PUT('/api/v1/nodes/{id}', { params: { path: { id } }, body }));
}

export type EffectiveConfig = Schemas['EffectiveConfigRead'];
export type ConfigDelivery = NonNullable<EffectiveConfig['delivery']>;
const CONFIG_IN_FLIGHT = new Set<ConfigDelivery['state']>(['pending', 'sent']);

export const nodeConfigQuery = (id: number) =>
  queryOptions({
    queryKey: keys.nodeConfig(id),
    queryFn: () => unwrap(api.GET('/api/v1/nodes/{id}/config', { params: { path: { id } } })),
  });

/** What the node runs with and whether its daemon applied it: followed while on its way. */
export const effectiveConfigQuery = (id: number) =>
  queryOptions({
    queryKey: keys.nodeEffectiveConfig(id),
    queryFn: () => unwrap(api.GET('/api/v1/nodes/{id}/config/effective', { params: { path: { id } } })),
    refetchInterval: (query) => {
      const state = query.state.data?.delivery?.state;
      return state && CONFIG_IN_FLIGHT.has(state) ? 2000 : false;
    },
  });

export function setNodeConfig(id: number, config: Record<string, string>) {
  return unwrap(api.PUT('/api/v1/nodes/{id}/config', { params: { path: { id } }, body: { config } }));
}
