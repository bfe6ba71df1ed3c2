import { useEffect, useState } from 'react';

import { followOutput, type OutputEnd, type OutputMode } from '@/features/tasks/api/output';

export interface NodeOutputState {
  text: string;
  mode: OutputMode | null;
  end: OutputEnd | null;
  reconnecting: boolean;
  error: unknown;
}

const START: NodeOutputState = { text: '', mode: null, end: null, reconnecting: false, error: null };

/** One node's output as it arrives, followed until its run ends or the component goes. */
export function useNodeOutput(executionId: string, nodeId: number): NodeOutputState {
  const [state, setState] = useState<NodeOutputState>(START);
  useEffect(() => {
    const controller = new AbortController();
    setState(START);
    followOutput(
      executionId,
      nodeId,
      {
        onText: (text, replace) => setState((s) => ({ ...s, text: replace ? text : s.text + text, reconnecting: false })),
        onMode: (mode) => setState((s) => ({ ...s, mode })),
        onEnd: (end) => setState((s) => ({ ...s, end, reconnecting: false })),
        onReconnect: () => setState((s) => ({ ...s, reconnecting: true })),
      },
      { signal: controller.signal },
    ).catch((error: unknown) => {
      if (!controller.signal.aborted) setState((s) => ({ ...s, error }));
    });
    return () => controller.abort();
  }, [executionId, nodeId]);
  return state;
}
