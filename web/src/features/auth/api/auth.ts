import { api, unwrap } from '@/api/client';

export function login(username: string, password: string) {
  return unwrap(api.POST('/api/v1/auth/login', { body: { username, password } }));
}
