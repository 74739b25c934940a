// The SSE parser on the shapes OpenAI-compatible servers send, split at every possible byte.
import { strict as assert } from 'assert';
import { SseParser, sseData } from '../../lib/engine/sse';

function parseAll(chunks: string[]) {
  const p = new SseParser();
  const events = chunks.flatMap((c) => p.push(c));
  p.end();
  return events;
}

describe('SSE parser', () => {
  const stream =
    ': llama-server ping\n\n' +
    'data: {"a":1}\n\n' +
    'event: note\r\ndata: line one\r\ndata: line two\r\n\r\n' +
    'data:no-space\r\rdata: [DONE]\n\n' +
    'data: unterminated';

  const expected = [
    { event: 'message', data: '{"a":1}' },
    { event: 'note', data: 'line one\nline two' },
    { event: 'message', data: 'no-space' },
    { event: 'message', data: '[DONE]' },
  ];

  it('reads comments, CRLF and CR endings, multi-line data, and drops an event without its blank line', () => {
    assert.deepEqual(parseAll([stream]), expected);
  });

  it('gives the same events however the stream is split across chunks', () => {
    for (let i = 0; i <= stream.length; i++) {
      for (const j of [i, Math.min(stream.length, i + 1), Math.min(stream.length, i + 7)]) {
        assert.deepEqual(parseAll([stream.slice(0, i), stream.slice(i, j), stream.slice(j)]), expected, `split at ${i}/${j}`);
      }
    }
  });

  it('writes what it reads (data with newlines round-trips)', () => {
    assert.deepEqual(parseAll([sseData('x\ny'), sseData('[DONE]')]), [
      { event: 'message', data: 'x\ny' },
      { event: 'message', data: '[DONE]' },
    ]);
  });
});
