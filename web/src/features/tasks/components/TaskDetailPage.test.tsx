import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import i18n from '@/i18n';
import { TaskDetailPage } from '@/features/tasks/components/TaskDetailPage';
import { aNode, aRow, aTask, anExecution, EXECUTION_ID, page } from '@/features/tasks/testing/fixtures';
import { envelope, failure, route, stubFetch, type Handler } from '@/testing/fetch';
import { renderRoutes, signInAs } from '@/testing/render';

const history = anExecution({ nodes: [aRow(), aRow({ id: 12, node_id: 8, status: 'failed', exit_code: 1 })] });
const common: Handler[] = [
  route('GET', '/api/v1/tasks/5', () => envelope(aTask())),
  route('GET', '/api/v1/tasks/5/executions', () => envelope({ ...page([history], 25), page_size: 10 })),
  route('GET', /^\/api\/v1\/nodes\/\d+$/, (_r, url) => envelope(aNode(Number(url.pathname.split('/').at(-1)), 'web-01'))),
  route('GET', '/api/v1/nodes', () => envelope(page([aNode(7, 'web-01'), aNode(8, 'web-02')]))),
];

function renderDetail(...handlers: Handler[]) {
  const stub = stubFetch(...handlers, ...common);
  const view = renderRoutes(
    [
      { path: '/tasks', element: <p>task list</p> },
      { path: '/tasks/:id', element: <TaskDetailPage /> },
      { path: '/tasks/:id/edit', element: <p>edit page</p> },
      { path: '/executions/:executionId', element: <p>execution page</p> },
    ],
    '/tasks/5',
  );
  return { ...stub, ...view };
}

describe('TaskDetailPage', { timeout: 60_000 }, () => {
  it('shows what the task runs, where, when next, and its executions', async () => {
    signInAs('viewer');
    const { router, calls } = renderDetail();
    expect(await screen.findByRole('heading', { name: 'disk report' })).toBeInTheDocument();
    await waitFor(() => expect(screen.getByTestId('task-target')).toHaveTextContent('节点web-01'));
    expect(screen.getByText('最多 2 次，间隔 30 秒')).toBeInTheDocument();
    expect(screen.getByTestId('task-next-run')).toHaveTextContent(new Date('2026-12-06T02:00:00Z').toLocaleString('zh-CN', { hour12: false }));
    const content = screen.getByTestId('task-content');
    expect(content).toHaveTextContent('/bin/bash');
    expect(content).toHaveTextContent('REGION=eu');
    expect(content).toHaveTextContent('TOKEN=******');
    expect(await within(content).findByRole('textbox', { name: '脚本' }, { timeout: 10_000 })).toHaveTextContent('df -h');

    const row = await screen.findByRole('row', { name: new RegExp(EXECUTION_ID) });
    expect(row).toHaveTextContent('手动');
    expect(row).toHaveTextContent('失败');
    expect(row).toHaveTextContent('成功 1');
    expect(row).toHaveTextContent('失败 1');
    const asked = new URL(calls.find((c) => c.url.includes('/executions'))?.url ?? '');
    expect(asked.searchParams.get('page_size')).toBe('10');
    // A viewer reads only.
    for (const name of ['执行', '编辑', '删除任务']) expect(screen.queryByRole('button', { name })).not.toBeInTheDocument();
    expect(screen.queryByRole('link', { name: '编辑' })).not.toBeInTheDocument();
    await userEvent.click(within(row).getByText(EXECUTION_ID));
    expect(router.state.location.pathname).toBe(`/executions/${EXECUTION_ID}`);
  });

  it('executes the task on chosen nodes and opens the execution', async () => {
    signInAs('operator');
    const { router, calls } = renderDetail(
      route('POST', '/api/v1/tasks/5/execute', () => envelope({ execution_id: EXECUTION_ID, total_nodes: 1 })),
    );
    await userEvent.click(await screen.findByRole('button', { name: '执行' }));
    expect(screen.queryByRole('button', { name: '删除任务' })).not.toBeInTheDocument(); // admin only
    const dialog = screen.getByRole('dialog');
    await userEvent.click(within(dialog).getByRole('radio', { name: '在本次选定的节点上执行' }));
    expect(within(dialog).getByRole('button', { name: '立即执行' })).toBeDisabled();
    await userEvent.click(within(dialog).getByRole('combobox', { name: '节点' }));
    await userEvent.click(await screen.findByRole('option', { name: 'web-02 (10.0.0.8)' }));
    await userEvent.click(within(dialog).getByRole('button', { name: '立即执行' }));
    await waitFor(() => expect(router.state.location.pathname).toBe(`/executions/${EXECUTION_ID}`));
    expect(await calls.find((c) => c.method === 'POST')?.json()).toEqual({ target_nodes: [8] });
  });

  it('lets an admin delete it after confirming, and shows a refusal', async () => {
    signInAs('admin');
    let attempts = 0;
    const { router } = renderDetail(
      route('DELETE', '/api/v1/tasks/5', () => {
        attempts += 1;
        return attempts === 1 ? failure(409, 4003, 'an execution of task 5 is under way') : envelope(aTask());
      }),
    );
    await userEvent.click(await screen.findByRole('button', { name: '删除任务' }));
    await userEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: '删除任务' }));
    expect(await screen.findByText('an execution of task 5 is under way (4003)')).toBeInTheDocument();
    await userEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: '删除任务' }));
    await waitFor(() => expect(router.state.location.pathname).toBe('/tasks'));
  });

  it('says when the task does not exist, in English too', async () => {
    await i18n.changeLanguage('en');
    signInAs('admin');
    stubFetch(route('GET', '/api/v1/tasks/5', () => failure(404, 4001, 'no task 5')));
    renderRoutes([{ path: '/tasks/:id', element: <TaskDetailPage /> }], '/tasks/5');
    expect(await screen.findByText('No such task')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Execute' })).not.toBeInTheDocument();
  });
});
