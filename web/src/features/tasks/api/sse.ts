/** One server-sent event: its type (`message` when unnamed), its data lines joined, its id. */
export interface SseEvent {
  event: string;
  data: string;
  id: string | null;
}

/**
 * The text/event-stream format, fed in chunks as they arrive (a line or an event may be split
 * anywhere). Comments (`: ping`) and unknown fields are skipped; an event with no data line is
 * not dispatched, as the HTML standard says.
 */
export class SseParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];
  private id: string | null = null;
  private pendingCr = false;

  push(chunk: string): SseEvent[] {
    let text = chunk;
    // A CRLF split between two chunks: the LF belongs to the line the CR already ended.
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.pendingCr = text.endsWith('\r');
    this.buffer += text;
    const out: SseEvent[] = [];
    const lines = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = lines.pop() ?? '';
    for (const line of lines) {
      const event = this.line(line);
      if (event) out.push(event);
    }
    return out;
  }

  private line(line: string): SseEvent | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    return null;
  }

  private dispatch(): SseEvent | null {
    const event = this.data.length > 0 ? { event: this.event || 'message', data: this.data.join('\n'), id: this.id } : null;
    this.event = '';
    this.data = [];
    return event;
  }
}
