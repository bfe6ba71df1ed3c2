import { useCallback, useMemo } from 'react';
import { useSearchParams } from 'react-router';

import type { NodeListParams, NodeStatus } from '@/features/nodes/api/nodes';

const STATUSES: NodeStatus[] = ['online', 'offline', 'unknown'];
export const PAGE_SIZES = [10, 20, 50, 100];
const SORTS = new Set<string>([
  'id', 'hostname', 'ip', 'status', 'last_heartbeat', 'created_at',
].flatMap((field) => [field, `-${field}`]));

export interface NodeFilters {
  keyword: string;
  status: NodeStatus | '';
  groupId: string;
  tags: string;
  labels: string[];
  sort: string;
  page: number;
  pageSize: number;
}

function positive(value: string | null, fallback: number): number {
  const number = Number(value);
  return Number.isInteger(number) && number > 0 ? number : fallback;
}

/** The list's filters, sort and page live in the URL: shareable, and kept on Back. */
export function useNodeFilters() {
  const [params, setParams] = useSearchParams();

  const filters: NodeFilters = useMemo(() => {
    const status = params.get('status') ?? '';
    const pageSize = positive(params.get('page_size'), 20);
    const sort = params.get('sort') ?? '';
    return {
      keyword: params.get('keyword') ?? '',
      status: (STATUSES as string[]).includes(status) ? (status as NodeStatus) : '',
      groupId: /^\d+$/.test(params.get('group_id') ?? '') ? (params.get('group_id') as string) : '',
      tags: params.get('tags') ?? '',
      labels: params.getAll('label').filter((label) => label.includes('=')),
      sort: SORTS.has(sort) ? sort : '',
      page: positive(params.get('page'), 1),
      pageSize: PAGE_SIZES.includes(pageSize) ? pageSize : 20,
    };
  }, [params]);

  const setFilters = useCallback(
    (patch: Partial<NodeFilters>) => {
      const next = { ...filters, page: 1, ...patch };
      const search = new URLSearchParams();
      if (next.keyword) search.set('keyword', next.keyword);
      if (next.status) search.set('status', next.status);
      if (next.groupId) search.set('group_id', next.groupId);
      if (next.tags) search.set('tags', next.tags);
      for (const label of next.labels) search.append('label', label);
      if (next.sort) search.set('sort', next.sort);
      if (next.page > 1) search.set('page', String(next.page));
      if (next.pageSize !== 20) search.set('page_size', String(next.pageSize));
      setParams(search);
    },
    [filters, setParams],
  );

  const query: NodeListParams = useMemo(
    () => ({
      keyword: filters.keyword || undefined,
      status: filters.status || undefined,
      group_id: filters.groupId ? Number(filters.groupId) : undefined,
      tags: filters.tags || undefined,
      label: filters.labels.length ? filters.labels : undefined,
      sort: (filters.sort || undefined) as NodeListParams['sort'],
      page: filters.page,
      page_size: filters.pageSize,
    }),
    [filters],
  );

  return { filters, setFilters, query };
}
