import { EditorView } from '@codemirror/view';
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import i18n from '@/i18n';
import { TaskFormPage } from '@/features/tasks/components/TaskFormPage';
import { aNode, aTask, page } from '@/features/tasks/testing/fixtures';
import { envelope, failure, json, route, stubFetch, type Handler } from '@/testing/fetch';
import { renderRoutes, signInAs } from '@/testing/render';

const group = { id: 3, name: 'edge', description: null, parent_id: null, sort_order: 0, created_at: null, updated_at: null };
const lookups: Handler[] = [
  route('GET', '/api/v1/nodes', () => envelope(page([aNode(7, 'web-01'), aNode(8, 'web-02')]))),
  route('GET', /^\/api\/v1\/nodes\/\d+$/, (_r, url) => envelope(aNode(Number(url.pathname.split('/').at(-1)), 'web-01'))),
  route('GET', '/api/v1/groups', () => envelope([group])),
];

function renderForm(path: string, ...handlers: Handler[]) {
  const stub = stubFetch(...handlers, ...lookups);
  const view = renderRoutes(
    [
      { path: '/tasks/new', element: <TaskFormPage /> },
      { path: '/tasks/:id/edit', element: <TaskFormPage /> },
      { path: '/tasks/:id', element: <p>task page</p> },
    ],
    path,
  );
  return { ...stub, ...view };
}

/** Types into the CodeMirror editor named `label` as a user would (jsdom cannot type in a contenteditable). */
async function typeScript(label: string, text: string) {
  const content = await screen.findByRole('textbox', { name: label }, { timeout: 10_000 }); // the editor loads lazily
  const view = EditorView.findFromDOM(content);
  if (!view) throw new Error(`no editor named ${label}`);
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
}

/** Puts `text` into a field at once (typing key by key re-renders the whole form each time). */
async function fill(field: HTMLElement, text: string) {
  await userEvent.clear(field);
  await userEvent.click(field);
  await userEvent.paste(text);
}

async function choose(label: string, option: string) {
  await userEvent.click(screen.getByRole('combobox', { name: label }));
  await userEvent.click(await screen.findByRole('option', { name: option }));
}

const posted = async (calls: Request[], method = 'POST') =>
  (await calls.find((c) => c.method === method && c.url.includes('/api/v1/tasks'))?.json()) as Record<string, unknown>;

// A whole form in jsdom is slow on a busy machine.
describe('TaskFormPage', { timeout: 60_000 }, () => {
  it('creates a script task on chosen nodes and opens it', async () => {
    signInAs('operator');
    const { calls, router } = renderForm('/tasks/new', route('POST', '/api/v1/tasks', () => json({ code: 0, message: 'ok', data: aTask({ id: 9 }) }, 201)));
    await fill(screen.getByRole('textbox', { name: '名称' }), 'say hello');
    await typeScript('脚本', 'echo hello\n');
    await fill(screen.getByRole('textbox', { name: '参数' }), '-e\n-x');
    await userEvent.click(screen.getByRole('button', { name: '添加变量' }));
    const env = screen.getByTestId('env-row');
    await fill(within(env).getByRole('textbox', { name: '变量名' }), 'API_KEY');
    await userEvent.click(within(env).getByRole('checkbox', { name: '保密' }));
    await fill(within(env).getByLabelText('值'), 's3cret');
    expect(within(env).getByLabelText('值')).toHaveAttribute('type', 'password');
    await userEvent.click(screen.getByRole('combobox', { name: '节点' }));
    await userEvent.click(await screen.findByRole('option', { name: 'web-02 (10.0.0.8)' }));
    const timeout = screen.getByRole('textbox', { name: '超时（秒）' });
    await fill(timeout, '60');
    await userEvent.click(screen.getByRole('button', { name: '新建任务' }));

    await waitFor(() => expect(router.state.location.pathname).toBe('/tasks/9'));
    expect(await posted(calls)).toEqual({
      name: 'say hello', description: null, type: 'script', status: 'enabled',
      content: { interpreter: '/bin/sh', script: 'echo hello\n', args: ['-e', '-x'], env: { API_KEY: { value: 's3cret', secret: true } }, workdir: null },
      timeout: 60, retry_count: 0, retry_interval: 60, target_type: 'node', target_value: ['8'], cron_expr: null, misfire: 'skip',
    });
  });

  it('names what is missing before asking', async () => {
    signInAs('operator');
    const { calls } = renderForm('/tasks/new');
    await choose('类型', '自定义');
    await fill(screen.getByRole('textbox', { name: '参数（JSON）' }), '{not json');
    await userEvent.click(screen.getByRole('button', { name: '新建任务' }));
    expect(screen.getByRole('textbox', { name: '名称' })).toHaveAccessibleDescription('必填');
    expect(screen.getByRole('textbox', { name: '处理器' })).toHaveAccessibleDescription('必填');
    expect(screen.getByRole('textbox', { name: '参数（JSON）' })).toHaveAccessibleDescription(/请输入 JSON 对象/);
    expect(screen.getByText('至少选择一项')).toBeInTheDocument();
    expect(screen.getByText('有字段需要修改')).toBeInTheDocument();
    expect(calls.filter((c) => c.method === 'POST')).toHaveLength(0);
  });

  it("shows the API's refusal on the field it names", async () => {
    signInAs('admin');
    renderForm(
      '/tasks/new',
      route('POST', '/api/v1/tasks', () =>
        json(
          {
            code: 1001,
            message: 'content.dest: must be an absolute path; content.mode: String should match pattern',
            data: { errors: [
              { field: 'content.dest', message: 'content.dest: Value error, must be an absolute path', type: 'value_error' },
              { field: 'content.mode', message: "content.mode: String should match pattern '^0?[0-7]{3,4}$'", type: 'value_error' },
            ] },
            request_id: 'r',
          },
          400,
        ),
      ),
    );
    await fill(screen.getByRole('textbox', { name: '名称' }), 'conf');
    await choose('类型', '文件');
    await fill(screen.getByRole('textbox', { name: '目标路径' }), '/etc/x');
    const mode = screen.getByRole('textbox', { name: '权限' });
    await fill(mode, '999');
    await choose('执行范围', '全部节点');
    await userEvent.click(screen.getByRole('button', { name: '新建任务' }));
    expect(await screen.findByRole('textbox', { name: '目标路径' })).toHaveAccessibleDescription('Value error, must be an absolute path');
    expect(screen.getByRole('textbox', { name: '权限' })).toHaveAccessibleDescription("String should match pattern '^0?[0-7]{3,4}$'");
    expect(screen.getByTestId('task-save-error')).toHaveTextContent('(1001)');
  });

  it('edits a task and sends a secret back masked, so the stored one is kept', async () => {
    signInAs('operator');
    const { calls, router } = renderForm(
      '/tasks/5/edit',
      route('GET', '/api/v1/tasks/5', () => envelope(aTask())),
      route('PUT', '/api/v1/tasks/5', () => envelope(aTask())),
    );
    const name = await screen.findByRole('textbox', { name: '名称' });
    expect(name).toHaveValue('disk report');
    expect(screen.getByRole('heading', { name: '编辑任务 disk report' })).toBeInTheDocument();
    expect(await screen.findByRole('button', { name: 'web-01 (10.0.0.7)' })).toBeInTheDocument();
    await fill(name, 'disk report v2');
    await userEvent.click(screen.getByRole('button', { name: '保存' }));
    await waitFor(() => expect(router.state.location.pathname).toBe('/tasks/5'));
    expect(await posted(calls, 'PUT')).toMatchObject({
      name: 'disk report v2',
      content: {
        interpreter: '/bin/bash',
        script: 'df -h\n',
        args: ['-x', 'tmpfs'],
        env: { REGION: { value: 'eu', secret: false }, TOKEN: { value: '******', secret: true } },
        workdir: '/tmp',
      },
      target_type: 'node',
      target_value: ['7'],
      cron_expr: '0 2 * * *',
      retry_count: 2,
    });
  });

  it('shows the next runs of a cron expression, and a refused one on its field', async () => {
    signInAs('operator');
    const { calls } = renderForm(
      '/tasks/new',
      route('GET', '/api/v1/tasks/schedule/next', (_r, url) =>
        url.searchParams.get('cron_expr') === '0 2 * * *'
          ? envelope({ cron_expr: '0 2 * * *', next_runs: ['2026-12-06T02:00:00Z', '2026-12-07T02:00:00Z'] })
          : failure(400, 1001, "cron_expr: '61 * * * *' is not a valid cron expression"),
      ),
    );
    await userEvent.click(screen.getByRole('button', { name: '每天 02:00' }));
    const runs = await screen.findByTestId('cron-next-runs');
    expect(within(runs).getAllByRole('listitem')).toHaveLength(2);
    expect(runs).toHaveTextContent(new Date('2026-12-06T02:00:00Z').toLocaleString('zh-CN', { hour12: false }));
    const asked = calls.filter((c) => c.url.includes('/schedule/next'));
    expect(new URL(asked[0]?.url ?? '').searchParams.get('count')).toBe('5');

    const cron = screen.getByRole('textbox', { name: 'Cron 表达式' });
    await fill(cron, '61 * * * *');
    await waitFor(() => expect(cron).toHaveAccessibleDescription("cron_expr: '61 * * * *' is not a valid cron expression"));
    expect(screen.queryByTestId('cron-next-runs')).not.toBeInTheDocument();
    // An emptied field asks nothing; each expression is asked for once.
    const crons = calls.filter((c) => c.url.includes('/schedule/next')).map((c) => new URL(c.url).searchParams.get('cron_expr'));
    expect(crons).toEqual(['0 2 * * *', '61 * * * *']);
  });

  it('is refused to a viewer, and speaks English', async () => {
    await i18n.changeLanguage('en');
    signInAs('viewer');
    renderForm('/tasks/new');
    expect(screen.getByText('Your role cannot see this page')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'New task' })).not.toBeInTheDocument();
  });
});
