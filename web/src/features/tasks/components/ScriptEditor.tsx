import { Skeleton } from '@mui/material';
import { lazy, Suspense } from 'react';

export type ScriptLanguage = 'shell' | 'python';

// CodeMirror is some 150 kB of its own: it loads with the first script shown, not with the app.
const CodeEditor = lazy(() => import('@/features/tasks/components/CodeEditor'));

/** The language a script is highlighted in, from its interpreter. */
export function languageOf(interpreter: string): ScriptLanguage {
  return /python/.test(interpreter) ? 'python' : 'shell';
}

export function ScriptEditor(props: {
  value: string;
  onChange?: (value: string) => void;
  language: ScriptLanguage;
  label: string;
  readOnly?: boolean;
  minHeight?: string;
}) {
  return (
    <Suspense fallback={<Skeleton variant="rounded" height={props.minHeight ?? 240} />}>
      <CodeEditor {...props} />
    </Suspense>
  );
}
