import { describe, expect, it } from 'vitest';

import { ApiError, fieldErrors } from '@/api/client';
import type { Task } from '@/features/tasks/api/tasks';
import { emptyForm, fromTask, problemAt, toBody } from '@/features/tasks/components/taskForm';
import { aTask } from '@/features/tasks/testing/fixtures';

describe('the task form', () => {
  it('sends each type its own content', () => {
    const base = { ...emptyForm(), name: ' conf ', target_type: 'all' as const };
    expect(toBody({ ...base, type: 'file', file: { content: 'x=1\n', dest: ' /etc/x.conf ', mode: '', owner: '', overwrite: false } }).body).toMatchObject({
      name: 'conf',
      content: { content: 'x=1\n', dest: '/etc/x.conf', mode: '0644', owner: null, overwrite: false },
      target_value: [],
    });
    expect(toBody({ ...base, type: 'service', service: { name: 'nginx', action: 'reload' } }).body.content).toEqual({ name: 'nginx', action: 'reload' });
    expect(toBody({ ...base, type: 'custom', custom: { handler: 'cache.flush', params: '{"ttl": 5}' } }).body.content).toEqual({
      handler: 'cache.flush',
      params: { ttl: 5 },
    });
  });

  it('names what is wrong before asking', () => {
    const { problems } = toBody({
      ...emptyForm(),
      timeout: '1.5',
      retry_count: '-1',
      script: { interpreter: 'sh', script: ' ', args: '', env: [{ name: '', value: 'x', secret: false }], workdir: 'tmp' },
    });
    expect(problems).toEqual({
      name: 'required',
      timeout: 'wholeNumber',
      retry_count: 'wholeNumber',
      target_value: 'needTarget',
      'content.script': 'required',
      'content.interpreter': 'absolutePath',
      'content.workdir': 'absolutePath',
      'content.env.0': 'required',
    });
    const custom = toBody({ ...emptyForm(), type: 'custom', custom: { handler: 'x', params: '[1]' } });
    expect(custom.problems['content.params']).toBe('jsonObject');
  });

  it('reads a task back into the form it came from', () => {
    const task = aTask() as unknown as Task;
    const form = fromTask(task);
    expect(form.script).toEqual({
      interpreter: '/bin/bash',
      script: 'df -h\n',
      args: '-x\ntmpfs',
      env: [
        { name: 'REGION', value: 'eu', secret: false },
        { name: 'TOKEN', value: '******', secret: true },
      ],
      workdir: '/tmp',
    });
    expect(toBody(form).body).toMatchObject({ content: task.content, cron_expr: '0 2 * * *', timeout: 120, target_value: ['7'] });
  });

  it("places the API's refusal on its field", () => {
    const refused = new ApiError(400, 1001, 'invalid request: body.timeout', 'r', [
      { field: 'body.timeout', message: 'Input should be less than or equal to 86400', type: 'less_than_equal' },
      { field: 'content.env.A B', message: "content.env.A B: 'A B' is not an environment variable name", type: 'value_error' },
    ]);
    const problems = fieldErrors(refused);
    expect(problems).toEqual({
      timeout: 'Input should be less than or equal to 86400',
      'content.env.A B': "'A B' is not an environment variable name",
    });
    expect(problemAt(problems, 'content.env')).toBe("'A B' is not an environment variable name");
    // A refusal without a list names its field in its message.
    expect(fieldErrors(new ApiError(400, 1001, 'target_value: a group target needs at least one value'))).toEqual({
      target_value: 'a group target needs at least one value',
    });
    expect(fieldErrors(new ApiError(409, 4003, 'busy'))).toEqual({});
  });
});
