import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import i18n from '@/i18n';
import { duration, ExecutionPage } from '@/features/tasks/components/ExecutionPage';
import { aRow, aTask, anExecution, EXECUTION_ID } from '@/features/tasks/testing/fixtures';
import { envelope, failure, route, stubFetch, type Handler } from '@/testing/fetch';
import { renderRoutes, signInAs } from '@/testing/render';
import { sseEvent, streamResponse } from '@/testing/stream';

const PATH = `/api/v1/executions/${EXECUTION_ID}`;
const running = anExecution({
  nodes: [
    aRow({ status: 'running', exit_code: null, finished_at: null }),
    aRow({ id: 12, node_id: 8, node_name: 'web-02', status: 'failed', exit_code: 3, error: 'exit status 3' }),
  ],
});
const finished = anExecution({
  nodes: [aRow(), aRow({ id: 12, node_id: 8, node_name: 'web-02', status: 'failed', exit_code: 3, error: 'exit status 3' })],
});

function streamOf(node: number, text: string, status = 'success', exitCode = 0): Handler {
  return route('GET', `${PATH}/nodes/${node}/output/stream`, () =>
    streamResponse([sseEvent('output', { offset: 0, data: text }, text.length), sseEvent('end', { status, exit_code: exitCode, truncated: false })]),
  );
}

function renderExecution(...handlers: Handler[]) {
  const stub = stubFetch(...handlers, route('GET', '/api/v1/tasks/5', () => envelope(aTask())));
  const view = renderRoutes(
    [
      { path: '/executions/:executionId', element: <ExecutionPage /> },
      { path: '/tasks/:id', element: <p>task page</p> },
    ],
    `/executions/${EXECUTION_ID}`,
  );
  return { ...stub, ...view };
}

describe('ExecutionPage', { timeout: 60_000 }, () => {
  it("shows each node's state, exit code and duration, polls while running, and streams a node's output", async () => {
    signInAs('operator');
    let done = false; // the run ends once the test has read it running
    renderExecution(
      route('GET', PATH, () => envelope(done ? finished : running)),
      streamOf(7, 'hello\n'),
      streamOf(8, 'oops\n', 'failed', 3),
    );
    expect(await screen.findByRole('link', { name: 'disk report' }, { timeout: 5000 })).toBeInTheDocument();
    expect(screen.getByTestId('execution-status')).toHaveTextContent('运行中');
    expect(screen.getByTestId('execution-progress')).toHaveTextContent('已结束 1 / 2');
    const failed = screen.getByRole('row', { name: /web-02/ });
    expect(failed).toHaveTextContent('失败');
    expect(failed).toHaveTextContent('3');
    expect(failed).toHaveTextContent('2.5 s');
    expect(failed).toHaveTextContent('exit status 3');

    // The first node's output is shown; its stream ends with the exit code.
    const output = await screen.findByTestId('node-output');
    expect(within(output).getByRole('heading', { name: 'web-01 的输出' })).toBeInTheDocument();
    await waitFor(() => expect(within(output).getByTestId('output-text')).toHaveTextContent('hello'));
    expect(await within(output).findByTestId('output-exit-code')).toHaveTextContent('退出码 0');

    // Polling brings the end of the run.
    done = true;
    await waitFor(() => expect(screen.getByTestId('execution-status')).toHaveTextContent('失败'), { timeout: 10_000 });
    expect(screen.getByTestId('execution-progress')).toHaveTextContent('已结束 2 / 2');
    expect(screen.queryByRole('button', { name: '取消执行' })).not.toBeInTheDocument();

    await userEvent.click(within(failed).getByText('exit status 3'));
    await waitFor(() => expect(within(screen.getByTestId('node-output')).getByTestId('output-text')).toHaveTextContent('oops'));
    expect(screen.getByRole('heading', { name: 'web-02 的输出' })).toBeInTheDocument();
  });

  it('cancels after a confirmation', async () => {
    signInAs('operator');
    const { calls } = renderExecution(
      route('GET', PATH, () => envelope(running)),
      route('POST', `${PATH}/cancel`, () => envelope({ execution_id: EXECUTION_ID, cancelled: 0, signalled: 1 })),
      streamOf(7, 'hello\n'),
    );
    await userEvent.click(await screen.findByRole('button', { name: '取消执行' }));
    const dialog = screen.getByRole('dialog');
    expect(dialog).toHaveTextContent('停止这次执行？');
    expect(calls.filter((c) => c.method === 'POST')).toHaveLength(0);
    await userEvent.click(within(dialog).getByRole('button', { name: '取消执行' }));
    expect(await screen.findByText('已取消 0 个未开始的节点，已通知 1 个运行中的节点停止')).toBeInTheDocument();
    expect(calls.filter((c) => c.method === 'POST').map((c) => new URL(c.url).pathname)).toEqual([`${PATH}/cancel`]);
  });

  it('shows a viewer the nodes but neither cancel nor output', async () => {
    signInAs('viewer');
    const { calls } = renderExecution(route('GET', PATH, () => envelope(running)));
    expect(await screen.findByRole('row', { name: /web-02/ })).toBeInTheDocument();
    expect(screen.getByText('你的角色不能查看任务输出。')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: '取消执行' })).not.toBeInTheDocument();
    expect(calls.some((c) => c.url.includes('/output'))).toBe(false);
  });

  it('shows a load failure, and a missing execution, in English', async () => {
    await i18n.changeLanguage('en');
    signInAs('admin');
    let reads = 0;
    renderExecution(
      route('GET', PATH, () => {
        reads += 1;
        return reads === 1 ? failure(503, 5001, 'database unavailable') : failure(404, 4002, 'no execution');
      }),
    );
    expect(await screen.findByText(/Could not load the data: database unavailable \(5001\)/)).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'Retry' }));
    expect(await screen.findByText('No such execution')).toBeInTheDocument();
  });
});

describe('duration', () => {
  it('reads milliseconds, seconds and minutes, and runs on while not finished', () => {
    expect(duration({ started_at: '2026-12-02T10:00:00Z', finished_at: '2026-12-02T10:00:00.850Z' })).toBe('850 ms');
    expect(duration({ started_at: '2026-12-02T10:00:00Z', finished_at: '2026-12-02T10:04:05Z' })).toBe('4 m 05 s');
    expect(duration({ started_at: '2026-12-02T10:00:00Z', finished_at: null }, Date.parse('2026-12-02T10:00:12.300Z'))).toBe('12.3 s');
    expect(duration({ started_at: null, finished_at: null })).toBe('-');
  });
});
