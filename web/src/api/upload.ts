import { ApiError, refreshOnce, type Schemas } from '@/api/client';
import { useAuthStore } from '@/stores/auth';

type ErrorEnvelope = Partial<Schemas['ErrorEnvelope']>;

/** The browser could not reach the Manager (no HTTP answer at all). */
export class NetworkError extends Error {
  constructor() {
    super('network error');
    this.name = 'NetworkError';
  }
}

interface Answer {
  status: number;
  statusText: string;
  body: unknown;
}

function send(url: string, form: FormData, token: string | null, onProgress: (fraction: number) => void, signal?: AbortSignal) {
  return new Promise<Answer>((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.responseType = 'text';
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        body = null;
      }
      resolve({ status: xhr.status, statusText: xhr.statusText, body });
    };
    xhr.onerror = () => reject(new NetworkError());
    xhr.onabort = () => reject(new DOMException('aborted', 'AbortError'));
    signal?.addEventListener('abort', () => xhr.abort());
    xhr.send(form);
  });
}

/**
 * A multipart POST that reports how much of the body has gone out (fetch cannot, XHR can),
 * with the same session rules as every other call: the access token, one refresh on a 401,
 * and the envelope's `data` or an ApiError with the API's code and message.
 */
export async function uploadWithProgress<T>(
  path: string,
  form: FormData,
  onProgress: (fraction: number) => void,
  signal?: AbortSignal,
): Promise<T> {
  const origin = window.location.origin;
  const token = useAuthStore.getState().token;
  let answer = await send(`${origin}${path}`, form, token, onProgress, signal);
  if (answer.status === 401 && token) {
    const fresh = await refreshOnce(origin);
    if (!fresh) {
      useAuthStore.getState().signOut();
    } else {
      onProgress(0);
      answer = await send(`${origin}${path}`, form, fresh, onProgress, signal);
      if (answer.status === 401) useAuthStore.getState().signOut();
    }
  }
  if (answer.status >= 200 && answer.status < 300) return (answer.body as { data: T }).data;
  const envelope = (answer.body ?? {}) as ErrorEnvelope;
  throw new ApiError(
    answer.status,
    envelope.code ?? answer.status * 10,
    envelope.message ?? answer.statusText,
    envelope.request_id,
  );
}
