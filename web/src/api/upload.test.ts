import { describe, expect, it } from 'vitest';

import { ApiError } from '@/api/client';
import { uploadWithProgress } from '@/api/upload';
import { useAuthStore } from '@/stores/auth';
import { envelope, failure, route, stubFetch } from '@/testing/fetch';
import { signInAs } from '@/testing/render';
import { stubXhr } from '@/testing/xhr';

const tokens = { token: 'fresh', refresh_token: 'rotated', token_type: 'Bearer', expires_in: 1, refresh_expires_in: 2 };

async function until(condition: () => boolean) {
  for (let i = 0; i < 100 && !condition(); i += 1) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(condition()).toBe(true);
}

describe('uploadWithProgress', () => {
  it('refreshes an expired token once and sends the upload again', async () => {
    signInAs('operator');
    const xhr = stubXhr();
    stubFetch(route('POST', '/api/v1/auth/refresh', () => envelope(tokens)));
    const progress: number[] = [];
    const done = uploadWithProgress<{ id: number }>('/api/v1/versions', new FormData(), (f) => progress.push(f));
    await until(() => xhr.requests.length === 1);
    xhr.requests[0]?.progress(50, 100);
    xhr.requests[0]?.answer(401, { code: 1002, message: 'token expired', data: null, request_id: 'r' });
    await until(() => xhr.requests.length === 2);
    expect(xhr.requests[1]?.headers.Authorization).toBe('Bearer fresh');
    xhr.requests[1]?.answer(201, { code: 0, message: 'ok', data: { id: 8 }, request_id: 'r' });
    await expect(done).resolves.toEqual({ id: 8 });
    // The bar starts again with the second attempt.
    expect(progress).toEqual([0.5, 0]);
    expect(useAuthStore.getState().refreshToken).toBe('rotated');
  });

  it('signs out when the session cannot be refreshed', async () => {
    signInAs('operator');
    const xhr = stubXhr();
    stubFetch(route('POST', '/api/v1/auth/refresh', () => failure(401, 1002, 'revoked')));
    const done = uploadWithProgress('/api/v1/versions', new FormData(), () => undefined).catch((e: unknown) => e);
    await until(() => xhr.requests.length === 1);
    xhr.requests[0]?.answer(401, { code: 1002, message: 'token expired', data: null, request_id: 'r' });
    const error = await done;
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 401, code: 1002 });
    expect(useAuthStore.getState().token).toBeNull();
    expect(xhr.requests).toHaveLength(1);
  });

  it('gives a refusal without an envelope a code from its status', async () => {
    signInAs('operator');
    const xhr = stubXhr();
    const done = uploadWithProgress('/api/v1/versions', new FormData(), () => undefined).catch((e: unknown) => e);
    await until(() => xhr.requests.length === 1);
    const request = xhr.requests[0];
    if (request) {
      request.statusText = 'Request Entity Too Large';
      request.status = 413;
      request.responseText = '<html>too large</html>';
      request.onload?.();
    }
    expect(await done).toMatchObject({ status: 413, code: 4130, message: 'Request Entity Too Large' });
  });
});
