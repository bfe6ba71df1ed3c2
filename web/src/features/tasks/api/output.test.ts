import { describe, expect, it } from 'vitest';

import { followOutput, type OutputEnd, type OutputMode } from '@/features/tasks/api/output';
import { envelope, failure, route, stubFetch } from '@/testing/fetch';
import { signInAs } from '@/testing/render';
import { sseEvent, streamResponse } from '@/testing/stream';

const EXECUTION = '0c1d2e3f-0000-4000-8000-000000000001';
const STREAM = `/api/v1/executions/${EXECUTION}/nodes/7/output/stream`;
const OUTPUT = `/api/v1/executions/${EXECUTION}/nodes/7/output`;

function recorder() {
  const seen = { text: '', modes: [] as OutputMode[], end: null as OutputEnd | null, reconnects: 0 };
  const handlers = {
    onText: (text: string, replace: boolean) => {
      seen.text = replace ? text : seen.text + text;
    },
    onMode: (mode: OutputMode) => seen.modes.push(mode),
    onEnd: (end: OutputEnd) => {
      seen.end = end;
    },
    onReconnect: () => {
      seen.reconnects += 1;
    },
  };
  return { seen, handlers };
}

const fast = { retryDelayMs: 1, pollMs: 1 };

describe('followOutput', () => {
  it('shows the streamed chunks and the end, with the Bearer token', async () => {
    signInAs('operator');
    const { calls } = stubFetch(
      route('GET', STREAM, () =>
        streamResponse([
          ': ping\n\n',
          sseEvent('output', { offset: 0, data: 'hel' }, 3),
          sseEvent('output', { offset: 3, data: 'lo\n' }, 6),
          sseEvent('end', { status: 'success', exit_code: 0, truncated: false }),
        ]),
      ),
    );
    const { seen, handlers } = recorder();
    await followOutput(EXECUTION, 7, handlers, { signal: new AbortController().signal, ...fast });
    expect(seen).toMatchObject({ text: 'hello\n', modes: ['stream'], end: { status: 'success', exit_code: 0, truncated: false } });
    expect(calls[0]?.headers.get('Authorization')).toBe('Bearer access-token');
    expect(new URL(calls[0]?.url ?? '').searchParams.get('offset')).toBe('0');
  });

  it('resumes from the last id after a drop, without repeating a chunk', async () => {
    signInAs('operator');
    const offsets: string[] = [];
    // The first connection drops; the second replays a chunk already shown and closes without
    // an end; the third finishes.
    let third = false;
    stubFetch(
      route('GET', STREAM, (_request, url) => {
        const offset = url.searchParams.get('offset') ?? '';
        offsets.push(offset);
        if (offset === '0') return streamResponse([sseEvent('output', { offset: 0, data: 'one\n' }, 4)], { drop: true });
        if (!third) {
          third = true;
          return streamResponse([sseEvent('output', { offset: 0, data: 'one\n' }, 4)]);
        }
        return streamResponse([sseEvent('output', { offset: 4, data: 'two\n' }, 8), sseEvent('end', { status: 'failed', exit_code: 2, truncated: true })]);
      }),
    );
    const { seen, handlers } = recorder();
    await followOutput(EXECUTION, 7, handlers, { signal: new AbortController().signal, ...fast });
    expect(offsets).toEqual(['0', '4', '4']);
    expect(seen.text).toBe('one\ntwo\n');
    expect(seen.reconnects).toBe(2);
    expect(seen.end).toEqual({ status: 'failed', exit_code: 2, truncated: true });
  });

  it('falls back to polling the output route where the stream route is missing', async () => {
    signInAs('operator');
    let reads = 0;
    stubFetch(
      route('GET', STREAM, () => failure(404, 1004, 'no route')),
      route('GET', OUTPUT, () => {
        reads += 1;
        const done = reads >= 2;
        return envelope({
          execution_id: EXECUTION, node_id: 7, status: done ? 'success' : 'running', exit_code: done ? 0 : null,
          output: done ? 'a\nb\n' : 'a\n', truncated: false, error: null,
        });
      }),
    );
    const { seen, handlers } = recorder();
    await followOutput(EXECUTION, 7, handlers, { signal: new AbortController().signal, ...fast });
    expect(seen.modes).toEqual(['stream', 'poll']);
    expect(seen.text).toBe('a\nb\n');
    expect(seen.end).toMatchObject({ status: 'success', exit_code: 0 });
  });

  it('rejects with the API error when reading the output is refused', async () => {
    signInAs('viewer');
    stubFetch(route('GET', STREAM, () => failure(403, 1003, 'permission denied')));
    const { handlers } = recorder();
    await expect(followOutput(EXECUTION, 7, handlers, { signal: new AbortController().signal, ...fast })).rejects.toMatchObject({ status: 403, code: 1003 });
  });

  it('stops when aborted while the stream is open', async () => {
    signInAs('operator');
    const controller = new AbortController();
    stubFetch(route('GET', STREAM, (request) => streamResponse([sseEvent('output', { offset: 0, data: 'x' }, 1)], { hold: true, signal: request.signal })));
    const { seen, handlers } = recorder();
    const following = followOutput(EXECUTION, 7, handlers, { signal: controller.signal, ...fast });
    await expect.poll(() => seen.text).toBe('x');
    controller.abort();
    await following;
    expect(seen.end).toBeNull();
  });
});
