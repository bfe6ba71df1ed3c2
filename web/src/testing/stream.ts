/**
 * A streaming HTTP answer for stubFetch: the chunks are sent one by one; with `drop` the
 * connection then fails (as a network drop does) instead of ending cleanly; with `hold` it
 * stays open until the request is aborted.
 */
export function streamResponse(chunks: string[], { drop = false, hold = false, signal }: { drop?: boolean; hold?: boolean; signal?: AbortSignal } = {}): Response {
  const encoder = new TextEncoder();
  let index = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks[index];
      index += 1;
      if (chunk !== undefined) {
        controller.enqueue(encoder.encode(chunk));
        return;
      }
      if (drop) {
        controller.error(new TypeError('network error'));
        return;
      }
      if (!hold) {
        controller.close();
        return;
      }
      return new Promise<void>((resolve) => {
        signal?.addEventListener('abort', () => {
          controller.error(new DOMException('aborted', 'AbortError'));
          resolve();
        });
      });
    },
  });
  return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
}

export function sseEvent(event: string, data: unknown, id?: number): string {
  return `event: ${event}\n${id === undefined ? '' : `id: ${id}\n`}data: ${JSON.stringify(data)}\n\n`;
}
