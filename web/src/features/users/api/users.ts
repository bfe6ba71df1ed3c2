import { api, unwrap, type Schemas } from '@/api/client';

export type User = Schemas['UserRead'];

export function createUser(body: Schemas['UserCreate']) {
  return unwrap(api.POST('/api/v1/system/users', { body }));
}

export function updateUser(id: number, body: Schemas['UserUpdate']) {
  return unwrap(api.PUT('/api/v1/system/users/{id}', { params: { path: { id } }, body }));
}

export function deleteUser(id: number) {
  return unwrap(api.DELETE('/api/v1/system/users/{id}', { params: { path: { id } } }));
}
