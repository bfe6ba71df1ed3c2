import { create } from 'zustand';
import { persist } from 'zustand/middleware';

import type { components } from '@/api/generated/schema';

export type User = components['schemas']['UserRead'];
export type Role = User['role'];

interface AuthState {
  token: string | null;
  refreshToken: string | null;
  user: User | null;
  signIn: (token: string, refreshToken: string, user: User) => void;
  setTokens: (token: string, refreshToken: string) => void;
  setUser: (user: User) => void;
  signOut: () => void;
}

const empty = { token: null, refreshToken: null, user: null };

/** The session only: who is signed in and their tokens. Server data lives in TanStack Query. */
export const useAuthStore = create<AuthState>()(
  persist(
    (set) => ({
      ...empty,
      signIn: (token, refreshToken, user) => set({ token, refreshToken, user }),
      setTokens: (token, refreshToken) => set({ token, refreshToken }),
      setUser: (user) => set({ user }),
      signOut: () => set(empty),
    }),
    {
      name: 'ops-auth',
      partialize: ({ token, refreshToken, user }) => ({ token, refreshToken, user }),
    },
  ),
);

export function resetAuthStore(): void {
  useAuthStore.setState(empty);
}

/** What each role may do, after the design's RBAC matrix; the server checks again. */
const abilities = {
  'node.edit': ['admin', 'operator'],
  'node.delete': ['admin'],
  'node.command': ['admin', 'operator'],
  'group.manage': ['admin', 'operator'],
  'version.upload': ['admin', 'operator'],
  'version.delete': ['admin'],
  'rollout.deploy': ['admin', 'operator'],
  'rollout.control': ['admin', 'operator'],
  // tasks: everyone reads; editors create, change, run and cancel, and read output; admin deletes
  'task.edit': ['admin', 'operator'],
  'task.execute': ['admin', 'operator'],
  'task.output': ['admin', 'operator'],
  'task.delete': ['admin'],
  'user.manage': ['admin'],
  'audit.read': ['admin'],
  'enrollment.manage': ['admin'],
  'alert.acknowledge': ['admin', 'operator'],
  'alert.silence': ['admin', 'operator'],
  'alert.manage': ['admin'],
  'config.manage': ['admin', 'operator'],
  'settings.read': ['admin'],
} as const satisfies Record<string, readonly Role[]>;

export type Ability = keyof typeof abilities;

export function can(role: Role | undefined, ability: Ability): boolean {
  return role !== undefined && (abilities[ability] as readonly Role[]).includes(role);
}

export function useCan(ability: Ability): boolean {
  return useAuthStore((state) => can(state.user?.role, ability));
}
