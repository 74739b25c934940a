// Stop strings, matched on decoded text (so a stop string may span several tokens).

export class StopStringMatcher {
  constructor(private readonly stops: readonly string[]) {}

  get active(): boolean {
    return this.stops.length > 0;
  }

  /** Index where the earliest stop string starts in text, or -1. */
  firstMatch(text: string): number {
    let first = -1;
    for (const stop of this.stops) {
      const at = text.indexOf(stop);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    return first;
  }

  /** Length of the longest end of text that is the start of some stop string (text a later token may complete). */
  pendingLength(text: string): number {
    let longest = 0;
    for (const stop of this.stops) {
      for (let n = Math.min(stop.length - 1, text.length); n > longest; n--) {
        if (text.endsWith(stop.slice(0, n))) {
          longest = n;
          break;
        }
      }
    }
    return longest;
  }
}
