import { queryOptions } from '@tanstack/react-query';

import { api, unwrap, type Schemas } from '@/api/client';
import { keys } from '@/api/keys';

export type Group = Schemas['GroupRead'];

/** Every group, flat (the node filters and pickers of several pages use it). */
export const groupsQuery = queryOptions({
  queryKey: keys.groups,
  queryFn: () => unwrap(api.GET('/api/v1/groups')),
  staleTime: 60_000,
});
