import { python } from '@codemirror/lang-python';
import { StreamLanguage } from '@codemirror/language';
import { shell } from '@codemirror/legacy-modes/mode/shell';
import { useTheme } from '@mui/material';
import CodeMirror, { EditorView } from '@uiw/react-codemirror';
import { useMemo } from 'react';

import type { ScriptLanguage } from '@/features/tasks/components/ScriptEditor';

const shellLanguage = StreamLanguage.define(shell);

/** CodeMirror 6 with shell or Python highlighting; loaded only by the pages that show a script. */
export default function CodeEditor({
  value,
  onChange,
  language,
  label,
  readOnly = false,
  minHeight = '240px',
}: {
  value: string;
  onChange?: (value: string) => void;
  language: ScriptLanguage;
  label: string;
  readOnly?: boolean;
  minHeight?: string;
}) {
  const theme = useTheme();
  const extensions = useMemo(
    () => [
      language === 'python' ? python() : shellLanguage,
      // The editable area itself carries the name, as a textbox would.
      EditorView.contentAttributes.of({ 'aria-label': label, role: 'textbox', 'aria-multiline': 'true' }),
    ],
    [language, label],
  );
  return (
    <CodeMirror
      value={value}
      onChange={onChange}
      extensions={extensions}
      theme={theme.palette.mode}
      readOnly={readOnly}
      editable={!readOnly}
      minHeight={minHeight}
      maxHeight="520px"
      basicSetup={{ foldGutter: false, highlightActiveLine: !readOnly, highlightActiveLineGutter: !readOnly }}
      data-testid="code-editor"
      style={{ fontSize: 13, border: `1px solid ${theme.palette.divider}`, borderRadius: theme.shape.borderRadius }}
    />
  );
}
