import { screen, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';

import { NodeOutput } from '@/features/tasks/components/NodeOutput';
import { EXECUTION_ID } from '@/features/tasks/testing/fixtures';
import { envelope, failure, route, stubFetch } from '@/testing/fetch';
import { renderPage, signInAs } from '@/testing/render';
import { sseEvent } from '@/testing/stream';

const BASE = `/api/v1/executions/${EXECUTION_ID}/nodes/7/output`;

describe('NodeOutput', { timeout: 30_000 }, () => {
  it('shows the stream live, then the end with its warnings', async () => {
    signInAs('operator');
    let release: () => void = () => undefined;
    const ended = new Promise<void>((resolve) => {
      release = resolve;
    });
    stubFetch(
      route('GET', `${BASE}/stream`, () => {
        const chunks = [sseEvent('output', { offset: 0, data: 'step 1\n' }, 7)];
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            const next = chunks.shift();
            if (next) return controller.enqueue(new TextEncoder().encode(next));
            await ended;
            controller.enqueue(new TextEncoder().encode(sseEvent('end', { status: 'timeout', exit_code: null, truncated: true, error: 'ran past 60 s' })));
            controller.close();
          },
        });
        return new Response(body, { headers: { 'Content-Type': 'text/event-stream' } });
      }),
    );
    renderPage(<NodeOutput executionId={EXECUTION_ID} nodeId={7} nodeName="web-01" />);
    await waitFor(() => expect(screen.getByTestId('output-text')).toHaveTextContent('step 1'));
    expect(screen.getByText('实时')).toBeInTheDocument();
    release();
    expect(await screen.findByText('输出过长，只保留了前面的部分。')).toBeInTheDocument();
    expect(screen.getByText('ran past 60 s')).toBeInTheDocument();
    expect(screen.getByTestId('execution-state')).toHaveTextContent('超时');
    expect(screen.queryByText('实时')).not.toBeInTheDocument();
    expect(screen.queryByTestId('output-exit-code')).not.toBeInTheDocument();
  });

  it('reads the plain output route where the Manager has no stream', async () => {
    signInAs('operator');
    stubFetch(
      route('GET', `${BASE}/stream`, () => failure(405, 1006, 'GET is not allowed')),
      route('GET', BASE, () =>
        envelope({ execution_id: EXECUTION_ID, node_id: 7, status: 'success', exit_code: 0, output: 'all done\n', truncated: false, error: null }),
      ),
    );
    renderPage(<NodeOutput executionId={EXECUTION_ID} nodeId={7} nodeName="web-01" />);
    expect(await screen.findByTestId('output-exit-code')).toHaveTextContent('退出码 0');
    expect(screen.getByTestId('output-text')).toHaveTextContent('all done');
  });

  it('says so when the role may not read output', async () => {
    signInAs('viewer');
    stubFetch(route('GET', `${BASE}/stream`, () => failure(403, 1003, 'permission denied')));
    renderPage(<NodeOutput executionId={EXECUTION_ID} nodeId={7} nodeName="web-01" />);
    expect(await screen.findByText('你的角色不能查看任务输出。')).toBeInTheDocument();
  });
});
