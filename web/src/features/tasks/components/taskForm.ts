import type { Misfire, TargetType, Task, TaskCreate, TaskStatus, TaskType } from '@/features/tasks/api/tasks';

export interface EnvRow {
  name: string;
  value: string;
  secret: boolean;
}

/** The form's state: every field as typed (numbers too), the content of each type kept apart
 * so switching the type back and forth loses nothing. */
export interface TaskForm {
  name: string;
  description: string;
  type: TaskType;
  status: TaskStatus;
  script: { interpreter: string; script: string; args: string; env: EnvRow[]; workdir: string };
  file: { content: string; dest: string; mode: string; owner: string; overwrite: boolean };
  service: { name: string; action: string };
  custom: { handler: string; params: string };
  timeout: string;
  retry_count: string;
  retry_interval: string;
  target_type: TargetType;
  target_value: string[];
  cron_expr: string;
  misfire: Misfire;
}

export const INTERPRETERS = ['/bin/sh', '/bin/bash', '/usr/bin/python3'];

export function emptyForm(): TaskForm {
  return {
    name: '',
    description: '',
    type: 'script',
    status: 'enabled',
    script: { interpreter: '/bin/sh', script: '', args: '', env: [], workdir: '' },
    file: { content: '', dest: '', mode: '0644', owner: '', overwrite: true },
    service: { name: '', action: 'restart' },
    custom: { handler: '', params: '{}' },
    timeout: '300',
    retry_count: '0',
    retry_interval: '60',
    target_type: 'node',
    target_value: [],
    cron_expr: '',
    misfire: 'skip',
  };
}

type Content = Record<string, unknown>;
const text = (value: unknown, fallback = '') => (typeof value === 'string' ? value : fallback);

function envRows(env: unknown): EnvRow[] {
  if (!env || typeof env !== 'object') return [];
  return Object.entries(env as Record<string, { value?: unknown; secret?: unknown }>).map(([name, item]) => ({
    name,
    value: text(item?.value),
    secret: item?.secret === true,
  }));
}

/** The form of a task as read (a secret value stays masked: sent back so, it is kept). */
export function fromTask(task: Task): TaskForm {
  const form = emptyForm();
  const content = task.content as Content;
  if (task.type === 'script') {
    form.script = {
      interpreter: text(content.interpreter, '/bin/sh'),
      script: text(content.script),
      args: Array.isArray(content.args) ? content.args.map(String).join('\n') : '',
      env: envRows(content.env),
      workdir: text(content.workdir),
    };
  } else if (task.type === 'file') {
    form.file = {
      content: text(content.content),
      dest: text(content.dest),
      mode: text(content.mode, '0644'),
      owner: text(content.owner),
      overwrite: content.overwrite !== false,
    };
  } else if (task.type === 'service') {
    form.service = { name: text(content.name), action: text(content.action, 'restart') };
  } else {
    form.custom = { handler: text(content.handler), params: JSON.stringify(content.params ?? {}, null, 2) };
  }
  return {
    ...form,
    name: task.name,
    description: task.description ?? '',
    type: task.type,
    status: task.status,
    timeout: String(task.timeout),
    retry_count: String(task.retry_count),
    retry_interval: String(task.retry_interval),
    target_type: task.target_type,
    target_value: task.target_value ?? [],
    cron_expr: task.cron_expr ?? '',
    misfire: task.misfire,
  };
}

/** Problems found before asking, by field name as the API names them. */
export type Problem = 'required' | 'wholeNumber' | 'absolutePath' | 'jsonObject' | 'needTarget';
export type Problems = Record<string, Problem>;

function wholeNumber(value: string): number {
  return /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
}

function contentOf(form: TaskForm, problems: Problems): Content {
  if (form.type === 'script') {
    const { interpreter, script, args, env, workdir } = form.script;
    if (!script.trim()) problems['content.script'] = 'required';
    if (!interpreter.startsWith('/')) problems['content.interpreter'] = 'absolutePath';
    if (workdir.trim() && !workdir.trim().startsWith('/')) problems['content.workdir'] = 'absolutePath';
    env.forEach((row, index) => {
      if (!row.name.trim()) problems[`content.env.${index}`] = 'required';
    });
    return {
      interpreter: interpreter.trim(),
      script,
      args: args.split('\n').filter((line) => line.trim() !== ''),
      env: Object.fromEntries(env.map((row) => [row.name.trim(), { value: row.value, secret: row.secret }])),
      workdir: workdir.trim() || null,
    };
  }
  if (form.type === 'file') {
    const { content, dest, mode, owner, overwrite } = form.file;
    if (!dest.trim().startsWith('/')) problems['content.dest'] = 'absolutePath';
    return { content, dest: dest.trim(), mode: mode.trim() || '0644', owner: owner.trim() || null, overwrite };
  }
  if (form.type === 'service') {
    if (!form.service.name.trim()) problems['content.name'] = 'required';
    return { name: form.service.name.trim(), action: form.service.action };
  }
  if (!form.custom.handler.trim()) problems['content.handler'] = 'required';
  let params: unknown = null;
  try {
    params = JSON.parse(form.custom.params.trim() || '{}');
  } catch {
    params = null;
  }
  if (!params || typeof params !== 'object' || Array.isArray(params)) problems['content.params'] = 'jsonObject';
  return { handler: form.custom.handler.trim(), params: params ?? {} };
}

/** The request body for the form, and what is wrong with it before asking (empty: nothing). */
export function toBody(form: TaskForm): { body: TaskCreate; problems: Problems } {
  const problems: Problems = {};
  if (!form.name.trim()) problems.name = 'required';
  const numbers = { timeout: wholeNumber(form.timeout), retry_count: wholeNumber(form.retry_count), retry_interval: wholeNumber(form.retry_interval) };
  for (const [field, value] of Object.entries(numbers)) if (Number.isNaN(value)) problems[field] = 'wholeNumber';
  if (form.target_type !== 'all' && form.target_value.length === 0) problems.target_value = 'needTarget';
  const body: TaskCreate = {
    name: form.name.trim(),
    description: form.description.trim() || null,
    type: form.type,
    status: form.status,
    content: contentOf(form, problems),
    timeout: numbers.timeout,
    retry_count: numbers.retry_count,
    retry_interval: numbers.retry_interval,
    target_type: form.target_type,
    target_value: form.target_type === 'all' ? [] : form.target_value,
    cron_expr: form.cron_expr.trim() || null,
    misfire: form.misfire,
  };
  return { body, problems };
}

/** The message for `field` or for something inside it (`content.env` holds `content.env.X.value`). */
export function problemAt(problems: Record<string, string>, field: string): string | undefined {
  if (problems[field]) return problems[field];
  const inside = Object.keys(problems).find((key) => key.startsWith(`${field}.`));
  return inside ? problems[inside] : undefined;
}
