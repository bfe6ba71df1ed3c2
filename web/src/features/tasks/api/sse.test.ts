import { describe, expect, it } from 'vitest';

import { SseParser } from '@/features/tasks/api/sse';

describe('SseParser', () => {
  it('reads named events with their id and skips comments', () => {
    const parser = new SseParser();
    const events = parser.push(': ping\n\nevent: output\nid: 6\ndata: {"offset": 0, "data": "hello\\n"}\n\nevent: end\ndata: {"status": "success"}\n\n');
    expect(events).toEqual([
      { event: 'output', id: '6', data: '{"offset": 0, "data": "hello\\n"}' },
      { event: 'end', id: '6', data: '{"status": "success"}' },
    ]);
  });

  it('joins events split anywhere across chunks, CRLF included', () => {
    const parser = new SseParser();
    const text = 'event: output\r\nid: 3\r\ndata: {"a":\r\ndata: 1}\r\n\r\n';
    const events = [...text].flatMap((char) => parser.push(char));
    expect(events).toEqual([{ event: 'output', id: '3', data: '{"a":\n1}' }]);
  });

  it('names an unnamed event "message", keeps a value without the space, drops an event with no data', () => {
    const parser = new SseParser();
    expect(parser.push('event: output\n\ndata:x\n\n')).toEqual([{ event: 'message', id: null, data: 'x' }]);
  });

  it('holds an unfinished event until its blank line', () => {
    const parser = new SseParser();
    expect(parser.push('event: output\ndata: 1')).toEqual([]);
    expect(parser.push('\n')).toEqual([]);
    expect(parser.push('\n')).toEqual([{ event: 'output', id: null, data: '1' }]);
  });
});
