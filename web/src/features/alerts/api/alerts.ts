import { queryOptions } from '@tanstack/react-query';

import { api, unwrap, type Schemas } from '@/api/client';
import { keys } from '@/api/keys';

export type Alert = Schemas['AlertRead'];
export type AlertStatus = Alert['status'];
export type Severity = Alert['severity'];
export type Delivery = Schemas['DeliveryRead'];
export type Rule = Schemas['AlertRuleRead'];
export type RuleCreate = Schemas['AlertRuleCreate'];
export type Metric = RuleCreate['metric'];
export type Operator = NonNullable<Rule['operator']>;
export type RuleTarget = Rule['target_type'];
export type Silence = Schemas['AlertSilenceRead'];
export type SilenceTarget = Silence['target_type'];
export type Channel = Schemas['ChannelRead'];
export type ChannelType = Channel['type'];
export type ChannelTestResult = Schemas['ChannelTestResult'];

export const ALERT_STATUSES: AlertStatus[] = ['firing', 'resolved'];
export const SEVERITIES: Severity[] = ['critical', 'warning', 'info'];
export const METRICS: Metric[] = [
  'cpu_usage', 'memory_usage', 'memory_used', 'disk_usage', 'disk_used', 'network_rx', 'network_tx',
  'load_avg_1', 'load_avg_5', 'load_avg_15', 'process_count', 'tcp_connections', 'node_offline', 'agent_not_running',
];
/** Conditions about a node's state: they hold or not, with no operator or threshold. */
export const BOOLEAN_METRICS = new Set<Metric>(['node_offline', 'agent_not_running']);
export const OPERATORS: Record<Operator, string> = { gt: '>', gte: '≥', lt: '<', lte: '≤', eq: '=', ne: '≠' };
export const RULE_TARGETS: RuleTarget[] = ['all', 'group', 'tag', 'node'];
export const SILENCE_TARGETS: SilenceTarget[] = ['rule', 'node', 'group', 'tag'];
export const CHANNEL_TYPES: ChannelType[] = ['webhook', 'email', 'dingtalk', 'wecom', 'feishu'];

export interface AlertListParams {
  status?: AlertStatus;
  severity?: Severity;
  node_id?: number;
  rule_id?: number;
  page: number;
  page_size: number;
}

export const alertListQuery = (params: AlertListParams) =>
  queryOptions({
    queryKey: keys.alertList(params),
    queryFn: () => unwrap(api.GET('/api/v1/alerts', { params: { query: params } })),
    refetchInterval: 15_000,
  });

export const alertQuery = (id: number) =>
  queryOptions({
    queryKey: keys.alert(id),
    queryFn: () => unwrap(api.GET('/api/v1/alerts/{id}', { params: { path: { id } } })),
    refetchInterval: 15_000,
  });

const UNSETTLED = new Set<Delivery['status']>(['pending', 'sending']);

/** An alert's notifications: followed every few seconds while one is still being tried. */
export const alertNotificationsQuery = (id: number) =>
  queryOptions({
    queryKey: keys.alertNotifications(id),
    queryFn: () => unwrap(api.GET('/api/v1/alerts/{id}/notifications', { params: { path: { id } } })),
    refetchInterval: (query) => (query.state.data?.some((d) => UNSETTLED.has(d.status)) ? 5000 : false),
  });

export function acknowledgeAlert(id: number) {
  return unwrap(api.POST('/api/v1/alerts/{id}/acknowledge', { params: { path: { id } } }));
}

/** Nodes by hostname or address, for the node filter. */
export const nodeSearchQuery = (keyword: string) =>
  queryOptions({
    queryKey: keys.alertNodeSearch(keyword),
    queryFn: () =>
      unwrap(api.GET('/api/v1/nodes', { params: { query: { keyword: keyword || undefined, page: 1, page_size: 20 } } })),
    staleTime: 30_000,
  });

// -- rules ---------------------------------------------------------------------------------
export const ruleListQuery = (params: { page: number; page_size: number }) =>
  queryOptions({
    queryKey: keys.alertRuleList(params),
    queryFn: () => unwrap(api.GET('/api/v1/alerts/rules', { params: { query: params } })),
  });

/** Every rule (at most 100), to name the rules of silences. */
export const allRulesQuery = ruleListQuery({ page: 1, page_size: 100 });

export function createRule(body: RuleCreate) {
  return unwrap(api.POST('/api/v1/alerts/rules', { body }));
}

export function updateRule(id: number, body: Schemas['AlertRuleUpdate']) {
  return unwrap(api.PUT('/api/v1/alerts/rules/{id}', { params: { path: { id } }, body }));
}

export function deleteRule(id: number) {
  return unwrap(api.DELETE('/api/v1/alerts/rules/{id}', { params: { path: { id } } }));
}

// -- silences ------------------------------------------------------------------------------
export const silenceListQuery = (params: { active: boolean; page: number; page_size: number }) =>
  queryOptions({
    queryKey: keys.alertSilenceList(params),
    queryFn: () => unwrap(api.GET('/api/v1/alerts/silences', { params: { query: params } })),
  });

export function createSilence(body: Schemas['AlertSilenceCreate']) {
  return unwrap(api.POST('/api/v1/alerts/silences', { body }));
}

export function deleteSilence(id: number) {
  return unwrap(api.DELETE('/api/v1/alerts/silences/{id}', { params: { path: { id } } }));
}

// -- channels ------------------------------------------------------------------------------
export const channelsQuery = queryOptions({
  queryKey: keys.alertChannels,
  queryFn: () => unwrap(api.GET('/api/v1/alerts/channels')),
});

export function createChannel(body: Schemas['ChannelCreate']) {
  return unwrap(api.POST('/api/v1/alerts/channels', { body }));
}

export function updateChannel(id: number, body: Schemas['ChannelUpdate']) {
  return unwrap(api.PUT('/api/v1/alerts/channels/{id}', { params: { path: { id } }, body }));
}

export function deleteChannel(id: number) {
  return unwrap(api.DELETE('/api/v1/alerts/channels/{id}', { params: { path: { id } } }));
}

export function testChannel(id: number) {
  return unwrap(api.POST('/api/v1/alerts/channels/{id}/test', { params: { path: { id } } }));
}
