import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import i18n from '@/i18n';
import { ChannelsPage } from '@/features/alerts/components/ChannelsPage';
import type { Role } from '@/stores/auth';
import { envelope, json, route, stubFetch } from '@/testing/fetch';
import { renderRoutes, signInAs } from '@/testing/render';

const hook = { id: 4, name: 'ops hook', type: 'webhook', enabled: true, config: { url: 'https://hooks.example.com/x', secret_set: true, header_names: [] }, created_by: 1, created_at: null, updated_at: null };
const mail = { id: 5, name: 'oncall mail', type: 'email', enabled: false, config: { recipients: ['a@example.com', 'b@example.com'] }, created_by: 1, created_at: null, updated_at: null };

function renderChannels(role: Role, items: object[] = [hook, mail]) {
  signInAs(role);
  const stub = stubFetch(
    route('GET', '/api/v1/alerts/channels', () => envelope(items)),
    route('POST', '/api/v1/alerts/channels/4/test', () => envelope({ delivery_id: 1, status: 'sent', error: null })),
    route('POST', '/api/v1/alerts/channels/5/test', () => envelope({ delivery_id: 2, status: 'failed', error: 'smtp.host is not set' })),
    route('POST', '/api/v1/alerts/channels', async (request) => {
      const body = (await request.json()) as { config: { url?: string } };
      if (body.config.url?.includes('127.0.0.1'))
        return json({ code: 1001, message: 'invalid request: body.config.url', data: { errors: [{ field: 'body.config.url', message: 'must reach a public address', type: 'value_error' }] }, request_id: 't' }, 400);
      return envelope({ ...hook, ...body, id: 9 });
    }),
    route('PUT', '/api/v1/alerts/channels/4', async (request) => envelope({ ...hook, ...((await request.json()) as object) })),
    route('DELETE', '/api/v1/alerts/channels/5', () => envelope(mail)),
  );
  renderRoutes([{ path: '/alerts/channels', element: <ChannelsPage /> }], '/alerts/channels');
  return stub;
}

describe('ChannelsPage', () => {
  it('lists channels with where they send', async () => {
    renderChannels('admin');
    expect(await screen.findByText('hooks.example.com')).toBeInTheDocument();
    expect(screen.getByText('a@example.com, b@example.com')).toBeInTheDocument();
    expect(screen.getByText('邮件')).toBeInTheDocument();
  });

  it('sends a test and shows how it went', async () => {
    renderChannels('admin');
    await userEvent.click(await screen.findByRole('button', { name: '发送测试 ops hook' }));
    expect(await screen.findByTestId('channel-test-result')).toHaveTextContent('已通过 ops hook 发送测试消息');
    await userEvent.click(screen.getByRole('button', { name: '发送测试 oncall mail' }));
    await waitFor(() => expect(screen.getByTestId('channel-test-result')).toHaveTextContent('通过 oncall mail 发送测试失败：smtp.host is not set'));
  });

  it('adds a webhook with its secret, showing a refused URL beside the field', async () => {
    const { calls } = renderChannels('admin');
    await userEvent.click(await screen.findByRole('button', { name: '新建渠道' }));
    const dialog = screen.getByRole('dialog', { name: '新建渠道' });
    await userEvent.type(within(dialog).getByRole('textbox', { name: '名称' }), 'pager');
    await userEvent.type(within(dialog).getByRole('textbox', { name: '地址' }), 'http://127.0.0.1/hook');
    await userEvent.type(within(dialog).getByLabelText(/密钥/), 'a-secret-of-sixteen+');
    await userEvent.click(within(dialog).getByRole('button', { name: '保存' }));
    expect(await within(dialog).findByText('must reach a public address')).toBeInTheDocument();
    const url = within(dialog).getByRole('textbox', { name: '地址' });
    await userEvent.clear(url);
    await userEvent.type(url, 'https://pager.example.com/in');
    await userEvent.click(within(dialog).getByRole('button', { name: '保存' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    const posts = calls.filter((c) => c.method === 'POST' && c.url.endsWith('/channels'));
    expect(await posts.at(-1)?.json()).toEqual({
      name: 'pager', type: 'webhook', enabled: true, config: { url: 'https://pager.example.com/in', secret: 'a-secret-of-sixteen+' },
    });
  });

  it('keeps a stored secret when the field is left empty, and asks recipients of an email channel', async () => {
    const { calls } = renderChannels('admin');
    await userEvent.click(await screen.findByRole('button', { name: '编辑渠道 ops hook' }));
    const dialog = screen.getByRole('dialog', { name: '编辑渠道' });
    expect(within(dialog).getByText('已设置：留空则保留原密钥')).toBeInTheDocument();
    await userEvent.click(within(dialog).getByRole('button', { name: '保存' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'PUT')).toBe(true));
    expect(await calls.find((c) => c.method === 'PUT')?.json()).toEqual({ name: 'ops hook', enabled: true, config: { url: 'https://hooks.example.com/x' } });

    await userEvent.click(screen.getByRole('button', { name: '新建渠道' }));
    const adding = screen.getByRole('dialog', { name: '新建渠道' });
    await userEvent.click(within(adding).getByRole('combobox', { name: '类型' }));
    await userEvent.click(await screen.findByRole('option', { name: '邮件' }));
    expect(within(adding).queryByRole('textbox', { name: '地址' })).not.toBeInTheDocument();
    expect(within(adding).getByRole('textbox', { name: '收件人' })).toBeInTheDocument();
  });

  it('deletes a channel after a confirmation', async () => {
    const { calls } = renderChannels('admin');
    await userEvent.click(await screen.findByRole('button', { name: '删除渠道 oncall mail' }));
    await userEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: '删除渠道' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'DELETE')).toBe(true));
  });

  it('is for admins only', async () => {
    const { calls } = renderChannels('operator');
    expect(await screen.findByText('您的角色无权查看此页面')).toBeInTheDocument();
    expect(calls).toHaveLength(0);
  });

  it('says when there is none, in English too', async () => {
    await i18n.changeLanguage('en');
    renderChannels('admin', []);
    expect(await screen.findByText('No notification channels yet')).toBeInTheDocument();
  });
});
