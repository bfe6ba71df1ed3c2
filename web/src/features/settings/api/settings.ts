import { queryOptions } from '@tanstack/react-query';

import { api, unwrap, type Schemas } from '@/api/client';
import { keys } from '@/api/keys';

export type SystemSettings = Schemas['SystemSettingsRead'];

export const systemSettingsQuery = queryOptions({
  queryKey: keys.systemSettings,
  queryFn: () => unwrap(api.GET('/api/v1/system/settings')),
  staleTime: 60_000,
});
