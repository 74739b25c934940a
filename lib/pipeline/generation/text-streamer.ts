// Incremental text for streaming. Each update decodes the whole generated id list (never token by token:
// a byte-fallback character spans several tokens, and SentencePiece's decoder strips one leading space of
// the whole text) and emits only the text that can no longer change:
//   - trailing U+FFFD is held back (an unfinished multi-byte character: its remaining bytes may follow);
//   - an end that could grow into a stop string is held back, so stop strings never reach onText.
// The decode is assumed prefix-stable otherwise (true for LLaMA and byte-level BPE decoders).
import { StopStringMatcher } from './stop-strings';

const REPLACEMENT = '\uFFFD';

export class TextStreamer {
  private emitted = '';
  private text = '';

  constructor(
    private readonly decode: (ids: number[]) => string,
    private readonly stops: StopStringMatcher,
    private readonly onText?: (delta: string) => void,
  ) {}

  /** Takes the ids generated so far; returns true when a stop string has appeared in the text. */
  update(ids: number[]): boolean {
    const full = ids.length > 0 ? this.decode(ids) : '';
    const stopAt = this.stops.active ? this.stops.firstMatch(full) : -1;
    if (stopAt >= 0) {
      this.text = full.slice(0, stopAt);
      this.emitUpTo(this.text);
      return true;
    }
    this.text = full;
    let stableEnd = full.length;
    while (stableEnd > 0 && full[stableEnd - 1] === REPLACEMENT) stableEnd--;
    const stable = full.slice(0, stableEnd);
    this.emitUpTo(stable.slice(0, stable.length - this.stops.pendingLength(stable)));
    return false;
  }

  /** Emits whatever was held back and returns the final text. */
  finish(): string {
    this.emitUpTo(this.text);
    return this.text;
  }

  private emitUpTo(target: string): void {
    if (target.length <= this.emitted.length || !target.startsWith(this.emitted)) return;
    const delta = target.slice(this.emitted.length);
    this.emitted = target;
    this.onText?.(delta);
  }
}
