// Incremental text for streaming, with per-step work bounded by a small window of ids, not the answer length.
//
// Decoding is never token by token (a byte-fallback character spans several tokens, SentencePiece strips one
// leading space, a BOM at the start of a byte run is dropped): each step decodes a window ids[prefixStart..]
// whose first part, ids[prefixStart..readStart], was already turned into text (prefixText). The new text is what
// the window decodes to beyond prefixText; effects at the start of a decode (a stripped space or BOM) fall inside
// the prefix part, so the new text is what a decode of the whole list adds. Once the window's text ends in a
// whole character, the window moves on: the ids just read become the next prefix, when they decode to non-empty
// text that ends the window's text (else the prefix stays where it was, one step longer).
//
// Emitted text is held back while it could still change or turn out to be a stop string:
//   - a trailing U+FFFD (an unfinished multi-byte character: its remaining bytes may follow);
//   - an end that could grow into a stop string, so stop strings never reach onText. Stop strings are searched
//     in the new text plus that held-back end only (a match cannot start earlier).
// The final text is one decode of the whole list, cut before the first stop string.
import { StopStringMatcher } from './stop-strings';

const REPLACEMENT = '\uFFFD';

export class TextStreamer {
  private ids: readonly number[] = [];
  private emitted = '';
  /** Text passed on from the window but held back: it may be the start of a stop string. */
  private tail = '';
  private prefixStart = 0;
  private readStart = 0;
  private prefixText = '';
  /** Characters of the window's new text already passed on (while the window ends in an unfinished character). */
  private taken = 0;
  private stopped = false;
  /** The decoder's output is not prefix-stable here (e.g. clean_up_tokenization_spaces): stream no further. */
  private diverged = false;

  constructor(
    private readonly decode: (ids: number[]) => string,
    private readonly stops: StopStringMatcher,
    private readonly onText?: (delta: string) => void,
  ) {}

  /** Takes the ids generated so far (the same list, grown); returns true when a stop string has appeared in the text. */
  update(ids: readonly number[]): boolean {
    this.ids = ids;
    if (this.stopped || this.diverged || ids.length === this.readStart) return this.stopped;
    const text = this.decode(ids.slice(this.prefixStart));
    if (!text.startsWith(this.prefixText)) {
      this.diverged = true;
      return false;
    }
    let stableEnd = text.length;
    while (stableEnd > 0 && text[stableEnd - 1] === REPLACEMENT) stableEnd--;
    const from = this.prefixText.length + this.taken;
    if (stableEnd > from) {
      this.taken += stableEnd - from;
      if (this.pass(text.slice(from, stableEnd))) return true;
    }
    if (stableEnd === text.length) this.advance(text);
    return false;
  }

  /** Emits whatever was held back and returns the final text. */
  finish(): string {
    const full = this.ids.length > 0 ? this.decode([...this.ids]) : '';
    const stopAt = this.stops.active ? this.stops.firstMatch(full) : -1;
    const text = stopAt >= 0 ? full.slice(0, stopAt) : full;
    if (text.length > this.emitted.length && text.startsWith(this.emitted)) this.emit(text.slice(this.emitted.length));
    return text;
  }

  /** Runs settled text through the stop strings; returns true at a stop. */
  private pass(fresh: string): boolean {
    const text = this.tail + fresh;
    const stopAt = this.stops.active ? this.stops.firstMatch(text) : -1;
    if (stopAt >= 0) {
      this.stopped = true;
      this.emit(text.slice(0, stopAt));
      return true;
    }
    const keep = this.stops.pendingLength(text);
    this.tail = text.slice(text.length - keep);
    this.emit(text.slice(0, text.length - keep));
    return false;
  }

  /** The window's text ends in a whole character: the ids read so far become settled. */
  private advance(windowText: string): void {
    const next = this.readStart === this.prefixStart ? windowText : this.decode(this.ids.slice(this.readStart));
    if (next.length > 0 && windowText.endsWith(next)) {
      this.prefixStart = this.readStart;
      this.prefixText = next;
    } else {
      this.prefixText = windowText;
    }
    this.readStart = this.ids.length;
    this.taken = 0;
  }

  private emit(delta: string): void {
    if (delta.length === 0) return;
    this.emitted += delta;
    this.onText?.(delta);
  }
}
