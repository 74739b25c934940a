// The preview under a node in the editor (image load, llm generate): the last picture as the model saw it and the
// latest answer, with its time. Opt-in per node (frames can be private): the node's `preview` property, switched by
// its button through POST /llava-preview/:id/enable|disable (permission llava-preview.write), as the debug node's
// button switches it. While off nothing is made or sent. While on, at most one preview a second per node goes to
// the open editors over RED.comms (topic llava-preview/<node id>, not retained); the latest offered wins, and its
// thumbnail is made only when it is sent. Nothing is kept: not on disk, not on the message.
import type { Node, NodeAPI } from 'node-red';
import { PixelScale, thumbnailOf } from '../../lib/engine/thumbnail';
import { errorMessage } from './status';

export const PREVIEW_TOPIC = 'llava-preview';
export const PREVIEW_INTERVAL_MS = 1000;
/** Longer answers are cut to this many characters (and an ellipsis). */
export const PREVIEW_TEXT_CHARS = 80;

/** What a node offers: the image value the model got (pixels, or the encoded image of a remote engine), its text. */
export interface PreviewFrame {
  image?: unknown;
  /** The pixels' normalisation (the model's preprocess options); without it pixels show no thumbnail. */
  scale?: PixelScale;
  /** The answer. */
  text?: string;
  /** How long the node took. */
  ms?: number;
}

/** What an editor gets. */
export interface PreviewMessage {
  /** When the frame was offered (ms since the epoch). */
  at: number;
  ms?: number;
  /** data:image/jpeg;base64,… */
  image?: string;
  width?: number;
  height?: number;
  text?: string;
}

export function truncated(text: string, chars = PREVIEW_TEXT_CHARS): string {
  const all = Array.from(text.trim().replace(/\s+/g, ' '));
  return all.length > chars ? `${all.slice(0, chars).join('')}…` : all.join('');
}

/** What an offered frame becomes when it is sent. */
export async function previewMessage(frame: PreviewFrame, at: number): Promise<PreviewMessage> {
  const thumbnail = frame.image === undefined ? null : await thumbnailOf(frame.image, frame.scale);
  return {
    at,
    ...(frame.ms === undefined ? {} : { ms: Math.round(frame.ms) }),
    ...(thumbnail ? { image: `data:image/jpeg;base64,${thumbnail.jpeg.toString('base64')}`, width: thumbnail.width, height: thumbnail.height } : {}),
    ...(frame.text === undefined ? {} : { text: truncated(frame.text) }),
  };
}

/**
 * One node's preview: on or off, and at most one message per `intervalMs` (the first at once, later ones at the
 * end of the interval, the latest offered winning).
 */
export class Preview {
  private pending: { frame: PreviewFrame; at: number } | null = null;
  private last = -Infinity;
  private timer: NodeJS.Timeout | null = null;
  private sending = false;

  constructor(
    private on: boolean,
    private readonly send: (message: PreviewMessage) => void,
    private readonly onError: (err: unknown) => void,
    private readonly intervalMs = PREVIEW_INTERVAL_MS,
  ) {}

  get enabled(): boolean {
    return this.on;
  }

  set enabled(on: boolean) {
    this.on = on;
    if (!on) this.clear();
  }

  /** Offers the latest frame; ignored while off. */
  offer(frame: PreviewFrame): void {
    if (!this.on) return;
    this.pending = { frame, at: Date.now() };
    this.schedule();
  }

  close(): void {
    this.on = false;
    this.clear();
  }

  private clear(): void {
    this.pending = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.timer || this.sending || !this.pending) return;
    const wait = this.last + this.intervalMs - Date.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flush();
      }, wait);
      this.timer.unref();
    } else {
      this.flush();
    }
  }

  private flush(): void {
    const next = this.pending;
    if (!next || !this.on) return;
    this.pending = null;
    this.sending = true;
    this.last = Date.now();
    previewMessage(next.frame, next.at)
      .then((message) => {
        if (this.on) this.send(message);
      })
      .catch(this.onError)
      .finally(() => {
        this.sending = false;
        this.schedule();
      });
  }
}

/** The previews of the running nodes, by node id, for the admin endpoint. */
const previews = new Map<string, Preview>();
const routed = new WeakSet<object>();

/** A node's preview, switched on by its `preview` property, reachable from the endpoint until the node closes. */
export function startPreview(RED: NodeAPI, node: Node, on: boolean): Preview {
  const preview = new Preview(
    on,
    (message) => RED.comms.publish(`${PREVIEW_TOPIC}/${node.id}`, message, false),
    (err) => node.debug(`preview: ${errorMessage(err)}`),
  );
  previews.set(node.id, preview);
  node.on('close', () => {
    preview.close();
    if (previews.get(node.id) === preview) previews.delete(node.id);
  });
  return preview;
}

/** POST /llava-preview/:id/enable|disable: 200 on, 201 off (as the debug node answers), 404 no such running node. */
export function registerPreviewAdmin(RED: NodeAPI): void {
  if (routed.has(RED.httpAdmin)) return;
  routed.add(RED.httpAdmin);
  RED.httpAdmin.post(`/${PREVIEW_TOPIC}/:id/:state`, RED.auth.needsPermission(`${PREVIEW_TOPIC}.write`), (req, res) => {
    const state = req.params.state;
    const preview = previews.get(String(req.params.id));
    if ((state !== 'enable' && state !== 'disable') || !preview) {
      res.sendStatus(404);
      return;
    }
    preview.enabled = state === 'enable';
    res.sendStatus(preview.enabled ? 200 : 201);
  });
}
