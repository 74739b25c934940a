// Server-sent events (the WHATWG event-stream format) as OpenAI-compatible servers stream them: events split on
// blank lines, any line ending (\n, \r\n, \r), comment lines (": ping") ignored, several `data:` lines joined by
// "\n", an event or a line split anywhere across network chunks.

export interface SseEvent {
  /** The `event:` field; "message" when absent. */
  event: string;
  data: string;
}

export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  /** A chunk ended on "\r": a "\n" starting the next chunk belongs to the same line ending. */
  private skipLf = false;

  /** Feeds decoded text; returns the events it completed. */
  push(text: string): SseEvent[] {
    const out: SseEvent[] = [];
    if (text === '') return [];
    if (this.skipLf && text.startsWith('\n')) text = text.slice(1);
    this.skipLf = false;
    this.buffer += text;
    for (;;) {
      const end = this.buffer.search(/\r\n|\r|\n/);
      if (end < 0) break;
      const crAtEnd = this.buffer[end] === '\r' && end === this.buffer.length - 1;
      const width = this.buffer.startsWith('\r\n', end) ? 2 : 1;
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + width);
      if (crAtEnd) this.skipLf = true;
      const event = this.line(line);
      if (event) out.push(event);
    }
    return out;
  }

  /** The stream ended: an event without its closing blank line is dropped, as the format says. */
  end(): void {
    this.buffer = '';
    this.data = [];
    this.event = '';
  }

  private line(line: string): SseEvent | null {
    if (line === '') {
      if (this.data.length === 0) {
        this.event = '';
        return null;
      }
      const event = { event: this.event || 'message', data: this.data.join('\n') };
      this.data = [];
      this.event = '';
      return event;
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    return null;
  }
}

/** One SSE event in its wire form (what `llava serve` writes). */
export function sseData(data: string): string {
  return (
    data
      .split('\n')
      .map((l) => `data: ${l}\n`)
      .join('') + '\n'
  );
}
