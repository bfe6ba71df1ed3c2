import { vi } from 'vitest';

export type Handler = (request: Request, url: URL) => Response | Promise<Response> | undefined;

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

export function envelope(data: unknown): Response {
  return json({ code: 0, message: 'ok', data, request_id: 'test' });
}

export function failure(status: number, code: number, message: string): Response {
  return json({ code, message, data: null, request_id: 'test' }, status);
}

/**
 * Stands in for the network (the browser's fetch): each request goes to the first handler
 * that answers it; the calls are recorded for assertions. An unexpected request fails loudly.
 */
export function stubFetch(...handlers: Handler[]) {
  const calls: Request[] = [];
  const fetchMock = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init);
    calls.push(request.clone());
    const url = new URL(request.url);
    for (const handler of handlers) {
      const response = await handler(request, url);
      if (response) return response;
    }
    throw new Error(`unexpected request ${request.method} ${url.pathname}${url.search}`);
  });
  vi.stubGlobal('fetch', fetchMock);
  return { calls, fetchMock };
}

export function route(method: string, path: string | RegExp, answer: (request: Request, url: URL) => Response | Promise<Response>): Handler {
  return (request, url) => {
    const matches = typeof path === 'string' ? url.pathname === path : path.test(url.pathname);
    return request.method === method && matches ? answer(request, url) : undefined;
  };
}
