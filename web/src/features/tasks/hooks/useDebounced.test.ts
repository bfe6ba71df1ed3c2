import { act, renderHook } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { useDebounced } from '@/features/tasks/hooks/useDebounced';

afterEach(() => {
  vi.useRealTimers();
});

describe('useDebounced', () => {
  it('gives a value only once it has stayed unchanged for the delay', () => {
    vi.useFakeTimers();
    const { result, rerender } = renderHook(({ value }) => useDebounced(value, 400), { initialProps: { value: '0' } });
    rerender({ value: '0 2' });
    act(() => vi.advanceTimersByTime(300));
    rerender({ value: '0 2 *' });
    act(() => vi.advanceTimersByTime(300));
    expect(result.current).toBe('0'); // each keystroke restarts the wait
    act(() => vi.advanceTimersByTime(100));
    expect(result.current).toBe('0 2 *');
  });
});
