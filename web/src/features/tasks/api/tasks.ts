import { queryOptions } from '@tanstack/react-query';

import { api, ApiError, apiError, unwrap, type Schemas } from '@/api/client';
import { keys } from '@/api/keys';

/** A task as read; `next_run_at` comes with scheduling (older Managers leave it out). */
export type Task = Schemas['TaskRead'];
export type Misfire = Task['misfire'];
export type TaskType = Task['type'];
export type TaskStatus = Task['status'];
export type TargetType = Task['target_type'];
export type TaskCreate = Schemas['TaskCreate'];
export type TaskUpdate = Schemas['TaskUpdate'];
export type ExecutionSummary = Schemas['ExecutionSummary'];
export type Execution = Schemas['ExecutionDetail'];
export type ExecutionRow = Schemas['ExecutionRow'];
export type ExecutionState = ExecutionRow['status'];
export type ExecutionOutput = Schemas['ExecutionOutput'];
export type Trigger = ExecutionSummary['triggered_by'];

// The value sets of the API (task/schemas.py, protocol/task.py); selects offer exactly these.
export const TASK_TYPES: readonly TaskType[] = ['script', 'file', 'service', 'custom'];
export const TASK_STATUSES: readonly TaskStatus[] = ['enabled', 'disabled'];
export const TARGET_TYPES: readonly TargetType[] = ['node', 'group', 'tag', 'all'];
export const SERVICE_ACTIONS = ['start', 'stop', 'restart', 'status', 'enable', 'disable'] as const;
export const EXECUTION_STATES: readonly ExecutionState[] = ['pending', 'running', 'success', 'failed', 'timeout', 'cancelled'];
/** What a secret environment value reads as; sent back unchanged it keeps the stored value. */
export const SECRET_MASK = '******';
export const POLL_MS = 2000;

export function isFinal(state: ExecutionState): boolean {
  return state !== 'pending' && state !== 'running';
}

export interface TaskListParams {
  name?: string;
  type?: TaskType;
  status?: TaskStatus;
  target_type?: TargetType;
  page: number;
  page_size: number;
}

export const taskListQuery = (params: TaskListParams) =>
  queryOptions({
    queryKey: keys.taskList(params),
    queryFn: () => unwrap(api.GET('/api/v1/tasks', { params: { query: params } })) as Promise<{ total: number; items: Task[] }>,
  });

export const taskQuery = (id: number) =>
  queryOptions({
    queryKey: keys.task(id),
    queryFn: () => unwrap(api.GET('/api/v1/tasks/{id}', { params: { path: { id } } })) as Promise<Task>,
  });

export interface PageParams {
  page: number;
  page_size: number;
}

/** A task's executions, newest first; followed while one of them is still running. */
export const taskExecutionsQuery = (id: number, params: PageParams) =>
  queryOptions({
    queryKey: keys.taskExecutions(id, params),
    queryFn: () => unwrap(api.GET('/api/v1/tasks/{id}/executions', { params: { path: { id }, query: params } })),
    refetchInterval: (query) => (query.state.data?.items.some((e) => e.status === 'running') ? 5000 : false),
  });

/** One execution and its nodes, polled every 2 s until every node is final. */
export const executionQuery = (executionId: string) =>
  queryOptions({
    queryKey: keys.execution(executionId),
    queryFn: () =>
      unwrap(api.GET('/api/v1/executions/{execution_id}', { params: { path: { execution_id: executionId } } })),
    refetchInterval: (query) => (query.state.data?.status === 'finished' ? false : POLL_MS),
  });

export function createTask(body: TaskCreate) {
  return unwrap(api.POST('/api/v1/tasks', { body })) as Promise<Task>;
}

export function updateTask(id: number, body: TaskUpdate) {
  return unwrap(api.PUT('/api/v1/tasks/{id}', { params: { path: { id } }, body })) as Promise<Task>;
}

export function deleteTask(id: number) {
  return unwrap(api.DELETE('/api/v1/tasks/{id}', { params: { path: { id } } }));
}

/** Run the task on its own target, or on `nodeIds` instead. */
export function executeTask(id: number, nodeIds?: number[]) {
  const body = nodeIds && nodeIds.length > 0 ? { target_nodes: nodeIds } : null;
  return unwrap(api.POST('/api/v1/tasks/{id}/execute', { params: { path: { id } }, body }));
}

export function cancelExecution(executionId: string) {
  return unwrap(api.POST('/api/v1/executions/{execution_id}/cancel', { params: { path: { execution_id: executionId } } }));
}

export function fetchOutput(executionId: string, nodeId: number, signal?: AbortSignal) {
  return unwrap(
    api.GET('/api/v1/executions/{execution_id}/nodes/{node_id}/output', {
      params: { path: { execution_id: executionId, node_id: nodeId } },
      signal,
    }),
  );
}

/** Nodes whose hostname or IP contains `keyword`, for the node pickers. */
export const nodeSearchQuery = (keyword: string) =>
  queryOptions({
    queryKey: keys.nodeSearch(keyword),
    queryFn: () =>
      unwrap(api.GET('/api/v1/nodes', { params: { query: { keyword: keyword || undefined, page: 1, page_size: 20 } } })),
    staleTime: 30_000,
  });

/** One node, to name a node a task targets. */
export const nodeNameQuery = (id: number) =>
  queryOptions({
    queryKey: keys.node(id),
    queryFn: () => unwrap(api.GET('/api/v1/nodes/{id}', { params: { path: { id } } })),
    staleTime: 60_000,
  });

export type Schedule = Schemas['ScheduleRuns'];
export const NEXT_RUNS = 5;

/** The next times a cron expression fires, as the Manager computes them (400/1001 when bad). */
export const scheduleQuery = (cronExpr: string) =>
  queryOptions({
    queryKey: keys.taskSchedule(cronExpr),
    queryFn: ({ signal }) =>
      unwrap(api.GET('/api/v1/tasks/schedule/next', { params: { query: { cron_expr: cronExpr, count: NEXT_RUNS } }, signal })),
    staleTime: 60_000,
    retry: false,
  });

/** The ApiError of a refused stream request (its body is the usual JSON envelope). */
export async function errorFrom(response: Response): Promise<ApiError> {
  return apiError(response, (await response.json().catch(() => undefined)) as Parameters<typeof apiError>[1]);
}

// The output stream is Server-Sent Events, read with fetch rather than the JSON client.
function apiUrl(path: string, query: Record<string, string>): string {
  const base = typeof window === 'undefined' ? 'http://localhost' : window.location.origin;
  const url = new URL(path, base);
  for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
  return url.toString();
}

export function streamUrl(executionId: string, nodeId: number, offset: number): string {
  return apiUrl(`/api/v1/executions/${executionId}/nodes/${nodeId}/output/stream`, { offset: String(offset) });
}
