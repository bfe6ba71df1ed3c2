import type { RouteObject } from 'react-router';

import { NotFoundPage } from '@/app/NotFoundPage';
import { AppLayout } from '@/components/layout/AppLayout';
import { RequireAuth } from '@/components/RequireAuth';
import { AuditLogsPage } from '@/features/audit/components/AuditLogsPage';
import { LoginPage } from '@/features/auth/components/LoginPage';
import { DashboardPage } from '@/features/dashboard/components/DashboardPage';
import { EnrollmentTokensPage } from '@/features/enrollment/components/EnrollmentTokensPage';
import { GroupsPage } from '@/features/groups/components/GroupsPage';
import { NodeDetailPage } from '@/features/nodes/components/NodeDetailPage';
import { NodeListPage } from '@/features/nodes/components/NodeListPage';
import { UsersPage } from '@/features/users/components/UsersPage';
import { VersionsPage } from '@/features/versions/components/VersionsPage';

export const routes: RouteObject[] = [
  { path: '/login', element: <LoginPage /> },
  {
    path: '/',
    element: (
      <RequireAuth>
        <AppLayout />
      </RequireAuth>
    ),
    children: [
      { index: true, element: <DashboardPage /> },
      { path: 'nodes', element: <NodeListPage /> },
      { path: 'nodes/:id', element: <NodeDetailPage /> },
      { path: 'groups', element: <GroupsPage /> },
      { path: 'versions', element: <VersionsPage /> },
      { path: 'users', element: <UsersPage /> },
      { path: 'audit-logs', element: <AuditLogsPage /> },
      { path: 'enrollment-tokens', element: <EnrollmentTokensPage /> },
      { path: '*', element: <NotFoundPage /> },
    ],
  },
];
