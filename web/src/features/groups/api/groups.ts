import { queryOptions } from '@tanstack/react-query';

import { api, unwrap, type Schemas } from '@/api/client';
import { keys } from '@/api/keys';

export type GroupNode = Schemas['GroupRead'];

export const groupTreeQuery = queryOptions({
  queryKey: keys.groupTree,
  queryFn: () => unwrap(api.GET('/api/v1/groups', { params: { query: { tree: true } } })),
});

export function createGroup(body: { name: string; parent_id: number | null }) {
  return unwrap(api.POST('/api/v1/groups', { body: { ...body, sort_order: 0 } }));
}

export function updateGroup(id: number, body: Schemas['GroupUpdate']) {
  return unwrap(api.PUT('/api/v1/groups/{id}', { params: { path: { id } }, body }));
}

export function deleteGroup(id: number) {
  return unwrap(api.DELETE('/api/v1/groups/{id}', { params: { path: { id } } }));
}

export const groupConfigQuery = (id: number) =>
  queryOptions({
    queryKey: keys.groupConfig(id),
    queryFn: () => unwrap(api.GET('/api/v1/groups/{id}/config', { params: { path: { id } } })),
  });

export function setGroupConfig(id: number, config: Record<string, string>) {
  return unwrap(api.PUT('/api/v1/groups/{id}/config', { params: { path: { id } }, body: { config } }));
}
