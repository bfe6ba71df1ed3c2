import type { RouteObject } from 'react-router';

import { NotFoundPage } from '@/app/NotFoundPage';
import { RouteError } from '@/app/RouteError';
import { AppLayout } from '@/components/layout/AppLayout';
import { RequireAuth } from '@/components/RequireAuth';
import { LoginPage } from '@/features/auth/components/LoginPage';
import { DashboardPage } from '@/features/dashboard/components/DashboardPage';

// The first pages a user sees load with the app; the rest load when first opened.
export const routes: RouteObject[] = [
  { path: '/login', element: <LoginPage />, errorElement: <RouteError /> },
  {
    path: '/',
    element: (
      <RequireAuth>
        <AppLayout />
      </RequireAuth>
    ),
    errorElement: <RouteError />,
    children: [
      { index: true, element: <DashboardPage /> },
      {
        path: 'nodes',
        lazy: async () => ({ Component: (await import('@/features/nodes/components/NodeListPage')).NodeListPage }),
      },
      {
        path: 'nodes/:id',
        lazy: async () => ({ Component: (await import('@/features/nodes/components/NodeDetailPage')).NodeDetailPage }),
      },
      {
        path: 'groups',
        lazy: async () => ({ Component: (await import('@/features/groups/components/GroupsPage')).GroupsPage }),
      },
      {
        path: 'versions',
        lazy: async () => ({ Component: (await import('@/features/versions/components/VersionsPage')).VersionsPage }),
      },
      {
        path: 'rollouts',
        lazy: async () => ({ Component: (await import('@/features/rollouts/components/RolloutsPage')).RolloutsPage }),
      },
      {
        path: 'rollouts/:batchId',
        lazy: async () => ({ Component: (await import('@/features/rollouts/components/RolloutDetailPage')).RolloutDetailPage }),
      },
      // tasks and their executions
      {
        path: 'tasks',
        lazy: async () => ({ Component: (await import('@/features/tasks/components/TasksPage')).TasksPage }),
      },
      {
        path: 'tasks/new',
        lazy: async () => ({ Component: (await import('@/features/tasks/components/TaskFormPage')).TaskFormPage }),
      },
      {
        path: 'tasks/:id',
        lazy: async () => ({ Component: (await import('@/features/tasks/components/TaskDetailPage')).TaskDetailPage }),
      },
      {
        path: 'tasks/:id/edit',
        lazy: async () => ({ Component: (await import('@/features/tasks/components/TaskFormPage')).TaskFormPage }),
      },
      {
        path: 'executions/:executionId',
        lazy: async () => ({ Component: (await import('@/features/tasks/components/ExecutionPage')).ExecutionPage }),
      },
      {
        path: 'users',
        lazy: async () => ({ Component: (await import('@/features/users/components/UsersPage')).UsersPage }),
      },
      {
        path: 'audit-logs',
        lazy: async () => ({ Component: (await import('@/features/audit/components/AuditLogsPage')).AuditLogsPage }),
      },
      {
        path: 'enrollment-tokens',
        lazy: async () => ({
          Component: (await import('@/features/enrollment/components/EnrollmentTokensPage')).EnrollmentTokensPage,
        }),
      },
      // alerts, notification channels and the Manager's settings
      {
        path: 'alerts',
        lazy: async () => ({ Component: (await import('@/features/alerts/components/AlertListPage')).AlertListPage }),
      },
      {
        path: 'alerts/rules',
        lazy: async () => ({ Component: (await import('@/features/alerts/components/RulesPage')).RulesPage }),
      },
      {
        path: 'alerts/silences',
        lazy: async () => ({ Component: (await import('@/features/alerts/components/SilencesPage')).SilencesPage }),
      },
      {
        path: 'alerts/channels',
        lazy: async () => ({ Component: (await import('@/features/alerts/components/ChannelsPage')).ChannelsPage }),
      },
      {
        path: 'alerts/:id',
        lazy: async () => ({ Component: (await import('@/features/alerts/components/AlertDetailPage')).AlertDetailPage }),
      },
      {
        path: 'settings',
        lazy: async () => ({ Component: (await import('@/features/settings/components/SettingsPage')).SettingsPage }),
      },
      { path: '*', element: <NotFoundPage /> },
    ],
  },
];
