import createClient from 'openapi-fetch';

import type { components, paths } from '@/api/generated/schema';
import { useAuthStore } from '@/stores/auth';

export type Schemas = components['schemas'];
type ErrorEnvelope = Schemas['ErrorEnvelope'];
export type FieldError = Schemas['FieldError'];

/** Every failed call becomes one of these: the HTTP status, the API's error code and, for a
 * refused input, the fields at fault. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
    readonly requestId?: string,
    readonly fields: FieldError[] = [],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * The server's complaints by field, for a form to show beside its inputs: `body.threshold` and
 * `threshold` both become `threshold`. A message that names its field first (`duration: must
 * be …`) counts too. Anything else is left to the form's general error.
 */
export function fieldErrors(error: unknown): Record<string, string> {
  if (!(error instanceof ApiError)) return {};
  const found: Record<string, string> = {};
  for (const item of error.fields) {
    const field = item.field.replace(/^body\./, '');
    // Some messages repeat their field (`timeout: must be …`): shown beside it, once is enough.
    found[field] ??= item.message.startsWith(`${field}:`) ? item.message.slice(field.length + 1).trim() : item.message;
  }
  const named = /^([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*): (.+)$/.exec(error.message);
  if (error.fields.length === 0 && named?.[1] && named[2]) found[named[1]] = named[2];
  return found;
}

const AUTH_PATHS = ['/api/v1/auth/login', '/api/v1/auth/refresh'];
let refreshing: Promise<string | null> | null = null;

/** One refresh for every request that got a 401 at the same time (the token rotates). */
export function refreshOnce(origin: string): Promise<string | null> {
  refreshing ??= (async () => {
    const { refreshToken, setTokens, signOut } = useAuthStore.getState();
    if (!refreshToken) return null;
    try {
      const response = await fetch(`${origin}/api/v1/auth/refresh`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refresh_token: refreshToken }),
      });
      if (!response.ok) {
        signOut();
        return null;
      }
      const body = (await response.json()) as Schemas['TokenPairEnvelope'];
      setTokens(body.data.token, body.data.refresh_token);
      return body.data.token;
    } catch {
      return null;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** fetch with the access token; on a 401 it refreshes once and retries, else signs out. */
export async function authFetch(request: Request): Promise<Response> {
  const retry = request.clone();
  const token = useAuthStore.getState().token;
  if (token) request.headers.set('Authorization', `Bearer ${token}`);
  const response = await fetch(request);
  const url = new URL(request.url);
  if (response.status !== 401 || AUTH_PATHS.includes(url.pathname) || !token) return response;
  const fresh = await refreshOnce(url.origin);
  if (!fresh) {
    useAuthStore.getState().signOut();
    return response;
  }
  retry.headers.set('Authorization', `Bearer ${fresh}`);
  const again = await fetch(retry);
  if (again.status === 401) useAuthStore.getState().signOut();
  return again;
}

export const api = createClient<paths>({
  baseUrl: typeof window === 'undefined' ? 'http://localhost' : window.location.origin,
  fetch: authFetch,
});

interface Result<T> {
  data?: { data: T };
  error?: unknown;
  response: Response;
}

/** The envelope's `data`, or an ApiError with the API's code and message. */
export async function unwrap<T>(call: Promise<Result<T>>): Promise<T> {
  const { data, error, response } = await call;
  if (data !== undefined && response.ok) return data.data;
  throw apiError(response, error as Partial<ErrorEnvelope> | undefined);
}

/** The ApiError of a refused response, from its error envelope when it has one. */
export function apiError(response: Response, envelope: Partial<ErrorEnvelope> | undefined): ApiError {
  return new ApiError(
    response.status,
    envelope?.code ?? response.status * 10,
    envelope?.message ?? response.statusText,
    envelope?.request_id,
    envelope?.data?.errors ?? [],
  );
}
