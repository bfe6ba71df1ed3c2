import type { ReactNode } from 'react';
import { Navigate, useLocation } from 'react-router';

import { useAuthStore } from '@/stores/auth';

/** Signed out (or the refresh failed): to the login page, which brings the user back here. */
export function RequireAuth({ children }: { children: ReactNode }) {
  const token = useAuthStore((state) => state.token);
  const location = useLocation();
  if (!token) {
    const from = `${location.pathname}${location.search}`;
    return <Navigate to={`/login?next=${encodeURIComponent(from)}`} replace />;
  }
  return children;
}
