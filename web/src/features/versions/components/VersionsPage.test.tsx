import { act, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';

import { VersionsPage } from '@/features/versions/components/VersionsPage';
import type { Role } from '@/stores/auth';
import { envelope, failure, route, stubFetch } from '@/testing/fetch';
import { renderRoutes, signInAs } from '@/testing/render';
import { stubXhr } from '@/testing/xhr';

const version = {
  id: 7, component: 'agent', version: '2.0.0', os: 'linux', arch: 'amd64', file_name: 'agent.tgz', file_size: 2048,
  hash_sha256: 'abc', release_notes: 'faster', is_latest: true, key_fingerprint: null, created_by: 1, created_at: null,
};

const old = { ...version, id: 6, version: '1.0.0', is_latest: false };

function renderVersions(role: Role, path = '/versions') {
  signInAs(role);
  const stub = stubFetch(
    route('GET', '/api/v1/versions', () => envelope({ total: 2, items: [version, old], page: 1, page_size: 20 })),
    route('DELETE', '/api/v1/versions/7', () => failure(409, 4004, 'version 7 is used by the running rollout b-1')),
    route('DELETE', '/api/v1/versions/6', () => envelope(old)),
  );
  const view = renderRoutes(
    [
      { path: '/versions', element: <VersionsPage /> },
      { path: '/rollouts/:id', element: <p>rollout page</p> },
    ],
    path,
  );
  return { ...stub, ...view };
}

async function openUpload() {
  await userEvent.click(await screen.findByRole('button', { name: '上传版本' }));
  const dialog = screen.getByRole('dialog');
  await userEvent.type(within(dialog).getByTestId('upload-version'), '2.1.0');
  await userEvent.type(within(dialog).getByLabelText('发布说明'), 'new agent');
  const file = new File(['x'.repeat(1000)], 'agent-2.1.0.tar.gz', { type: 'application/gzip' });
  await userEvent.upload(within(dialog).getByTestId('upload-file'), file);
  expect(within(dialog).getByTestId('upload-file-name')).toHaveTextContent('agent-2.1.0.tar.gz (1000 B)');
  return dialog;
}

describe('VersionsPage', () => {
  it('filters by component, os and arch in the URL and drops values the API would refuse', async () => {
    const { calls } = renderVersions('viewer', '/versions?component=agent&os=linux&arch=sparc');
    expect(await screen.findByText('2.0.0')).toBeInTheDocument();
    const query = new URL(calls[0]?.url ?? '').searchParams;
    expect(query.get('component')).toBe('agent');
    expect(query.get('os')).toBe('linux');
    expect(query.get('arch')).toBeNull();
  });

  it('shows a viewer no upload, deploy or delete', async () => {
    renderVersions('viewer');
    expect(await screen.findByText('2.0.0')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: '上传版本' })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /部署 agent/ })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /删除版本/ })).not.toBeInTheDocument();
  });

  it('lets an operator upload and deploy but only an admin delete', async () => {
    const { unmount } = renderVersions('operator');
    expect(await screen.findByRole('button', { name: '部署 agent 2.0.0' })).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: '删除版本 agent 2.0.0' })).not.toBeInTheDocument();
    unmount();
    renderVersions('admin');
    expect(await screen.findByRole('button', { name: '删除版本 agent 2.0.0' })).toBeInTheDocument();
  });

  it('uploads with a progress bar and the form fields the API expects', async () => {
    const xhr = stubXhr();
    const { calls } = renderVersions('operator');
    const dialog = await openUpload();
    await userEvent.click(within(dialog).getByRole('button', { name: '上传' }));
    const request = xhr.requests[0];
    expect(request?.method).toBe('POST');
    expect(request?.url).toMatch(/\/api\/v1\/versions$/);
    expect(request?.headers.Authorization).toBe('Bearer access-token');
    const form = request?.body as FormData;
    expect(Object.fromEntries([...form.entries()].filter(([k]) => k !== 'file'))).toEqual({
      component: 'agent', version: '2.1.0', os: 'linux', arch: 'amd64', release_notes: 'new agent',
    });
    expect((form.get('file') as File).name).toBe('agent-2.1.0.tar.gz');
    act(() => request?.progress(400, 1000));
    expect(await within(dialog).findByTestId('upload-progress')).toHaveTextContent('已上传 40%');
    expect(within(dialog).getByRole('progressbar', { name: '上传进度' })).toHaveAttribute('aria-valuenow', '40');
    act(() => request?.progress(1000, 1000));
    expect(within(dialog).getByTestId('upload-progress')).toHaveTextContent('Manager 正在校验并签名');
    const listed = calls.length;
    act(() => request?.answer(201, { code: 0, message: 'ok', data: { ...version, id: 8, version: '2.1.0' }, request_id: 'r' }));
    expect(await screen.findByText('已上传 agent 2.1.0')).toBeInTheDocument();
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
    // The list is asked again, so the new version shows.
    await waitFor(() => expect(calls.length).toBeGreaterThan(listed));
  });

  it("shows the API's message and code when the upload is refused", async () => {
    const xhr = stubXhr();
    renderVersions('operator');
    const dialog = await openUpload();
    await userEvent.click(within(dialog).getByRole('button', { name: '上传' }));
    act(() => xhr.requests[0]?.answer(409, { code: 4002, message: 'agent 2.1.0 for linux/amd64 already exists', data: null, request_id: 'r' }));
    expect(await within(dialog).findByTestId('upload-error')).toHaveTextContent('agent 2.1.0 for linux/amd64 already exists (4002)');
    // The dialog stays open with its fields, to correct and try again.
    expect(within(dialog).getByTestId('upload-version')).toHaveValue('2.1.0');
    expect(within(dialog).getByRole('button', { name: '上传' })).toBeEnabled();
  });

  it('says when the Manager cannot be reached during an upload', async () => {
    const xhr = stubXhr();
    renderVersions('operator');
    const dialog = await openUpload();
    await userEvent.click(within(dialog).getByRole('button', { name: '上传' }));
    act(() => xhr.requests[0]?.fail());
    expect(await within(dialog).findByTestId('upload-error')).toHaveTextContent('无法连接 Manager，上传未完成');
  });

  it('deletes a version after a confirmation and asks for the list again', async () => {
    const { calls } = renderVersions('admin');
    await userEvent.click(await screen.findByRole('button', { name: '删除版本 agent 1.0.0' }));
    const dialog = screen.getByRole('dialog');
    await userEvent.click(within(dialog).getByRole('button', { name: '删除版本' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    const paths = calls.map((c) => `${c.method} ${new URL(c.url).pathname}`);
    expect(paths).toEqual(['GET /api/v1/versions', 'DELETE /api/v1/versions/6', 'GET /api/v1/versions']);
  });

  it('explains why a version cannot be deleted', async () => {
    renderVersions('admin');
    await userEvent.click(await screen.findByRole('button', { name: '删除版本 agent 2.0.0' }));
    const dialog = screen.getByRole('dialog');
    expect(dialog).toHaveTextContent('删除 agent 2.0.0？');
    await userEvent.click(within(dialog).getByRole('button', { name: '删除版本' }));
    expect(await within(dialog).findByText('version 7 is used by the running rollout b-1 (4004)')).toBeInTheDocument();
  });
});
