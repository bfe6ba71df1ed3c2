/** Tasks and executions as the API sends them, for the feature's tests. */
export const EXECUTION_ID = '0c1d2e3f-0000-4000-8000-000000000001';

export function aTask(overrides: Record<string, unknown> = {}) {
  return {
    id: 5,
    name: 'disk report',
    type: 'script',
    content: {
      interpreter: '/bin/bash',
      script: 'df -h\n',
      args: ['-x', 'tmpfs'],
      env: { REGION: { value: 'eu', secret: false }, TOKEN: { value: '******', secret: true } },
      workdir: '/tmp',
    },
    cron_expr: '0 2 * * *',
    next_run_at: '2026-12-06T02:00:00Z',
    timeout: 120,
    retry_count: 2,
    retry_interval: 30,
    target_type: 'node',
    target_value: ['7'],
    status: 'enabled',
    description: 'Free space on every disk',
    created_by: 1,
    created_at: '2026-12-01T08:00:00Z',
    updated_at: '2026-12-02T09:30:00Z',
    ...overrides,
  };
}

export function aNode(id = 7, hostname = 'web-01') {
  return {
    id, uuid: `node-${id}`, hostname, ip: `10.0.0.${id}`, os: 'linux', arch: 'amd64', status: 'online', labels: {}, tags: [],
    group_id: null, daemon_version: '1.0.0', agent_version: '1.0.0', last_heartbeat: null, created_at: null, updated_at: null,
  };
}

const counts = { pending: 0, running: 0, success: 0, failed: 0, timeout: 0, cancelled: 0 };

export function aRow(overrides: Record<string, unknown> = {}) {
  return {
    id: 11, node_id: 7, node_name: 'web-01', status: 'success', exit_code: 0, error: null, output_truncated: false,
    started_at: '2026-12-02T10:00:00Z', finished_at: '2026-12-02T10:00:02.500Z', deadline_at: null, ...overrides,
  };
}

export function anExecution(overrides: Record<string, unknown> = {}) {
  const nodes = (overrides.nodes as ReturnType<typeof aRow>[] | undefined) ?? [aRow()];
  const tally = { ...counts };
  for (const node of nodes) tally[node.status as keyof typeof counts] += 1;
  return {
    execution_id: EXECUTION_ID, task_id: 5, triggered_by: 'manual', created_by: 1, created_at: '2026-12-02T10:00:00Z',
    total: nodes.length, status: nodes.every((n) => !['pending', 'running'].includes(n.status)) ? 'finished' : 'running',
    counts: tally, nodes, ...overrides,
  };
}

export function page<T>(items: T[], total = items.length) {
  return { total, items, page: 1, page_size: 20 };
}
