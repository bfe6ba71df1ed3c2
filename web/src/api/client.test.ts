import { describe, expect, it } from 'vitest';

import { api, ApiError, fieldErrors, unwrap } from '@/api/client';
import { useAuthStore } from '@/stores/auth';
import { envelope, failure, json, route, stubFetch } from '@/testing/fetch';
import { signInAs } from '@/testing/render';

const me = { id: 1, username: 'tester', role: 'admin' };

describe('authFetch', () => {
  it('sends the access token', async () => {
    signInAs('admin');
    const { calls } = stubFetch(route('GET', '/api/v1/auth/me', () => envelope(me)));
    await expect(unwrap(api.GET('/api/v1/auth/me'))).resolves.toMatchObject({ username: 'tester' });
    expect(calls[0]?.headers.get('Authorization')).toBe('Bearer access-token');
  });

  it('refreshes once on a 401 and retries with the new token', async () => {
    signInAs('admin');
    const { calls } = stubFetch(
      route('GET', '/api/v1/auth/me', (request) =>
        request.headers.get('Authorization') === 'Bearer fresh' ? envelope(me) : failure(401, 1002, 'expired'),
      ),
      route('POST', '/api/v1/auth/refresh', async (request) => {
        expect(await request.json()).toEqual({ refresh_token: 'refresh-token' });
        return envelope({ token: 'fresh', refresh_token: 'rotated', token_type: 'Bearer', expires_in: 1, refresh_expires_in: 2 });
      }),
    );
    // Two calls fail at once: one refresh serves both (the refresh token rotates).
    await Promise.all([unwrap(api.GET('/api/v1/auth/me')), unwrap(api.GET('/api/v1/auth/me'))]);
    expect(calls.filter((c) => c.url.endsWith('/auth/refresh'))).toHaveLength(1);
    expect(useAuthStore.getState()).toMatchObject({ token: 'fresh', refreshToken: 'rotated' });
  });

  it('signs out when the refresh is refused', async () => {
    signInAs('admin');
    stubFetch(
      route('GET', '/api/v1/auth/me', () => failure(401, 1002, 'expired')),
      route('POST', '/api/v1/auth/refresh', () => failure(401, 1002, 'refresh token revoked')),
    );
    const error = await unwrap(api.GET('/api/v1/auth/me')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 401, code: 1002 });
    expect(useAuthStore.getState().token).toBeNull();
  });

  it('signs out when the retried call is refused again, without a second refresh', async () => {
    signInAs('admin');
    const { calls } = stubFetch(
      route('GET', '/api/v1/auth/me', () => failure(401, 1002, 'expired')),
      route('POST', '/api/v1/auth/refresh', () =>
        envelope({ token: 'fresh', refresh_token: 'rotated', token_type: 'Bearer', expires_in: 1, refresh_expires_in: 2 }),
      ),
    );
    await expect(unwrap(api.GET('/api/v1/auth/me'))).rejects.toBeInstanceOf(ApiError);
    expect(calls.map((c) => new URL(c.url).pathname)).toEqual(['/api/v1/auth/me', '/api/v1/auth/refresh', '/api/v1/auth/me']);
    expect(useAuthStore.getState().token).toBeNull();
  });

  it('does not try to refresh a refused login', async () => {
    const { calls } = stubFetch(route('POST', '/api/v1/auth/login', () => failure(401, 1002, 'wrong password')));
    await expect(
      unwrap(api.POST('/api/v1/auth/login', { body: { username: 'a', password: 'b' } })),
    ).rejects.toMatchObject({ status: 401, message: 'wrong password' });
    expect(calls).toHaveLength(1);
  });

  it("keeps the fields a refused input names", async () => {
    signInAs('admin');
    const problem = { field: 'body.timeout', message: 'Input should be less than or equal to 86400', type: 'less_than_equal' };
    stubFetch(
      route('POST', '/api/v1/tasks', () =>
        json({ code: 1001, message: 'invalid request: body.timeout', data: { errors: [problem] }, request_id: 'r' }, 400),
      ),
    );
    const body = { name: 'a', type: 'script', content: {}, timeout: 0, retry_count: 0, retry_interval: 0, target_type: 'all', status: 'enabled', misfire: 'skip' } as const;
    const error = await unwrap(api.POST('/api/v1/tasks', { body })).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 400, code: 1001, fields: [problem] });
  });
});

describe('fieldErrors', () => {
  it("names the fields of a refused request, from the envelope's errors or its message", () => {
    const listed = new ApiError(400, 1001, 'invalid request: body.config.url, body.name', 't', [
      { field: 'body.config.url', message: 'must be an http:// or https:// URL', type: 'value_error' },
      { field: 'body.name', message: 'too long', type: 'string_too_long' },
    ]);
    expect(fieldErrors(listed)).toEqual({ 'config.url': 'must be an http:// or https:// URL', name: 'too long' });
    const named = new ApiError(400, 1001, 'threshold: required for a rule on cpu_usage');
    expect(fieldErrors(named)).toEqual({ threshold: 'required for a rule on cpu_usage' });
    expect(fieldErrors(new ApiError(409, 3001, 'channel already exists'))).toEqual({});
    expect(fieldErrors(new Error('network'))).toEqual({});
  });

  it('keeps the errors an API refusal carries', async () => {
    signInAs('admin');
    stubFetch(
      route('GET', '/api/v1/auth/me', () =>
        failure(400, 1001, 'invalid request: body.name'),
      ),
    );
    const error = await unwrap(api.GET('/api/v1/auth/me')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).fields).toEqual([]);
  });
});
