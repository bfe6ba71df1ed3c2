import { ApiError, authFetch } from '@/api/client';
import { SseParser, type SseEvent } from '@/features/tasks/api/sse';
import { errorFrom, fetchOutput, isFinal, POLL_MS, streamUrl, type ExecutionState } from '@/features/tasks/api/tasks';

/** How a node's run ended, as the stream's `end` event (or the output route) tells it. */
export interface OutputEnd {
  status: ExecutionState;
  exit_code: number | null;
  truncated: boolean;
  error?: string | null;
}

export type OutputMode = 'stream' | 'poll';

export interface OutputHandlers {
  /** New text: appended to what came before, or (`replace`) the whole output so far. */
  onText: (text: string, replace: boolean) => void;
  onMode: (mode: OutputMode) => void;
  onEnd: (end: OutputEnd) => void;
  /** The stream dropped; it is opened again from the last offset after `delayMs`. */
  onReconnect?: (delayMs: number) => void;
}

export interface FollowOptions {
  signal: AbortSignal;
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  pollMs?: number;
}

interface OutputChunk {
  offset: number;
  data: string;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

/** Where the stream goes on after this chunk: its id (the server's offset), else by length. */
function offsetAfter(event: SseEvent, chunk: OutputChunk): number {
  const id = event.id === null ? NaN : Number(event.id);
  return Number.isFinite(id) ? id : chunk.offset + chunk.data.length;
}

type StreamEnd = { ended: true } | { ended: false; offset: number; progressed: boolean };

async function readStream(body: ReadableStream<Uint8Array>, start: number, handlers: OutputHandlers): Promise<StreamEnd> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  let offset = start;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      const text = done ? decoder.decode() : decoder.decode(value, { stream: true });
      for (const event of parser.push(text)) {
        if (event.event === 'output') {
          const chunk = JSON.parse(event.data) as OutputChunk;
          const next = offsetAfter(event, chunk);
          if (next <= offset) continue; // already shown before a reconnect
          handlers.onText(chunk.data, false);
          offset = next;
        } else if (event.event === 'end') {
          handlers.onEnd(JSON.parse(event.data) as OutputEnd);
          return { ended: true };
        }
      }
      if (done) break;
    }
  } catch (error) {
    if (error instanceof SyntaxError) throw error; // a malformed event will not parse next time either
  } finally {
    reader.releaseLock();
  }
  return { ended: false, offset, progressed: offset > start };
}

/** The non-streaming route, read every `pollMs` until the node's run is final. */
async function pollOutput(executionId: string, nodeId: number, handlers: OutputHandlers, options: FollowOptions): Promise<void> {
  const { signal, pollMs = POLL_MS, retryDelayMs = 1000 } = options;
  handlers.onMode('poll');
  while (!signal.aborted) {
    let wait = pollMs;
    try {
      const output = await fetchOutput(executionId, nodeId, signal);
      handlers.onText(output.output, true);
      if (isFinal(output.status)) {
        handlers.onEnd({ status: output.status, exit_code: output.exit_code, truncated: output.truncated, error: output.error });
        return;
      }
    } catch (error) {
      if (error instanceof ApiError || signal.aborted) throw error;
      wait = retryDelayMs; // the network: try again
    }
    await sleep(wait, signal);
  }
}

/**
 * Follows one node's output: the SSE stream, opened again from the last offset when it drops
 * (with a growing pause), or the plain output route, polled, where the Manager has no stream
 * (404/405). Read with fetch, not EventSource, so the Bearer token goes along and an expired
 * one is refreshed. Resolves when the run has ended or `signal` aborts; rejects on a refusal.
 */
export async function followOutput(executionId: string, nodeId: number, handlers: OutputHandlers, options: FollowOptions): Promise<void> {
  const { signal, retryDelayMs = 1000, maxRetryDelayMs = 10_000 } = options;
  let offset = 0;
  let failures = 0;
  handlers.onMode('stream');
  while (!signal.aborted) {
    let response: Response | null = null;
    try {
      const request = new Request(streamUrl(executionId, nodeId, offset), { headers: { Accept: 'text/event-stream' }, signal });
      response = await authFetch(request);
    } catch (error) {
      if (signal.aborted) return;
      if (!(error instanceof TypeError)) throw error;
    }
    if (response && (response.status === 404 || response.status === 405)) {
      await response.body?.cancel();
      return pollOutput(executionId, nodeId, handlers, options);
    }
    if (response && !response.ok) throw await errorFrom(response);
    if (response?.body) {
      const result = await readStream(response.body, offset, handlers);
      if (result.ended) return;
      if (result.progressed) failures = 0;
      offset = result.offset;
    }
    if (signal.aborted) return;
    const delay = Math.min(retryDelayMs * 2 ** failures, maxRetryDelayMs);
    failures += 1;
    handlers.onReconnect?.(delay);
    await sleep(delay, signal);
  }
}
