import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import i18n from '@/i18n';
import { TasksPage } from '@/features/tasks/components/TasksPage';
import { aTask, page } from '@/features/tasks/testing/fixtures';
import { envelope, failure, route, stubFetch } from '@/testing/fetch';
import { renderRoutes, signInAs } from '@/testing/render';

function renderList(path = '/tasks') {
  return renderRoutes(
    [
      { path: '/tasks', element: <TasksPage /> },
      { path: '/tasks/:id', element: <p>detail</p> },
      { path: '/tasks/new', element: <p>new task</p> },
    ],
    path,
  );
}

describe('TasksPage', { timeout: 60_000 }, () => {
  it('lists tasks with their schedule, and keeps the filters in the URL and the request', async () => {
    signInAs('operator');
    const { calls } = stubFetch(route('GET', '/api/v1/tasks', () => envelope(page([aTask()], 41))));
    const { router } = renderList('/tasks?type=script&page=2');
    expect(await screen.findByText('disk report')).toBeInTheDocument();
    const first = new URL(calls[0]?.url ?? '').searchParams;
    expect(Object.fromEntries(first)).toEqual({ type: 'script', page: '2', page_size: '20' });
    const row = screen.getByRole('row', { name: /disk report/ });
    expect(row).toHaveTextContent('脚本');
    expect(row).toHaveTextContent('启用');
    expect(row).toHaveTextContent('节点 · 1');
    expect(row).toHaveTextContent('0 2 * * *');
    expect(row).toHaveTextContent('120 秒');
    expect(within(row).getByText(/^下次 /)).toBeInTheDocument();

    await userEvent.click(screen.getByRole('combobox', { name: '状态' }));
    await userEvent.click(await screen.findByRole('option', { name: '停用' }));
    await waitFor(() => expect(router.state.location.search).toBe('?type=script&status=disabled'));
    await userEvent.type(screen.getByRole('textbox', { name: '名称包含' }), 'disk');
    await waitFor(() => expect(router.state.location.search).toBe('?type=script&status=disabled&name=disk'));
    await waitFor(() => expect(new URL(calls.at(-1)?.url ?? '').searchParams.get('name')).toBe('disk'));
    expect(new URL(calls.at(-1)?.url ?? '').searchParams.get('status')).toBe('disabled');

    await userEvent.click(screen.getByText('disk report'));
    expect(router.state.location.pathname).toBe('/tasks/5');
  });

  it('offers a new task to an operator, not to a viewer', async () => {
    signInAs('operator');
    stubFetch(route('GET', '/api/v1/tasks', () => envelope(page([]))));
    const { router, unmount } = renderList();
    await userEvent.click(await screen.findByRole('link', { name: '新建任务' }));
    expect(router.state.location.pathname).toBe('/tasks/new');
    unmount();

    signInAs('viewer');
    renderList();
    expect(await screen.findByText('没有符合条件的任务')).toBeInTheDocument();
    expect(screen.queryByRole('link', { name: '新建任务' })).not.toBeInTheDocument();
  });

  it('shows a failure with a retry', async () => {
    signInAs('viewer');
    let calls = 0;
    stubFetch(
      route('GET', '/api/v1/tasks', () => {
        calls += 1;
        return calls === 1 ? failure(503, 5001, 'database unavailable') : envelope(page([aTask()]));
      }),
    );
    renderList();
    expect(await screen.findByText('加载失败: database unavailable (5001)', { exact: false })).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: '重试' }));
    expect(await screen.findByText('disk report')).toBeInTheDocument();
  });

  it('speaks English', async () => {
    await i18n.changeLanguage('en');
    signInAs('admin');
    stubFetch(route('GET', '/api/v1/tasks', () => envelope(page([aTask({ status: 'disabled', cron_expr: null })]))));
    renderList();
    const row = await screen.findByRole('row', { name: /disk report/ });
    expect(row).toHaveTextContent('Script');
    expect(row).toHaveTextContent('Disabled');
    expect(row).toHaveTextContent('120 s');
    expect(screen.getByRole('heading', { name: 'Tasks' })).toBeInTheDocument();
    expect(screen.getByRole('link', { name: 'New task' })).toBeInTheDocument();
  });
});
