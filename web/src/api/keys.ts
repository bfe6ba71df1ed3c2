/** Query keys of every resource, in one place so a mutation knows what to invalidate. */
export const keys = {
  me: ['auth', 'me'] as const,
  dashboard: ['dashboard'] as const,
  nodes: ['nodes'] as const,
  nodeList: (params: object) => ['nodes', 'list', params] as const,
  node: (id: number) => ['nodes', id] as const,
  nodeAgent: (id: number) => ['nodes', id, 'agent'] as const,
  nodeMetrics: (id: number, range: string) => ['nodes', id, 'metrics', range] as const,
  nodeEvents: (id: number) => ['nodes', id, 'events'] as const,
  command: (id: string) => ['commands', id] as const,
  groups: ['groups'] as const,
  groupTree: ['groups', 'tree'] as const,
  versions: (params: object) => ['versions', params] as const,
  users: (params: object) => ['users', params] as const,
  auditLogs: (params: object) => ['audit-logs', params] as const,
  enrollmentTokens: ['enrollment-tokens'] as const,
};
