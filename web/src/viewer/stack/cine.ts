// Cine over a chosen range: a timer that steps a stack viewport from the
// start image to the end image (inclusive, 0-based) and loops, at a given
// frame rate. Cornerstone's playClip has no range, so this replaces it.
import { stackViewport } from './engine';

export type CineRange = { start: number; end: number; fps: number };

export class CinePlayer {
  private timer: number | undefined;
  private busy = false;

  constructor(private viewportId: string, private range: CineRange) {}

  get playing() {
    return this.timer !== undefined;
  }

  play() {
    this.stop();
    const vp = stackViewport(this.viewportId);
    if (!vp) return;
    const { start, end } = this.range;
    const cur = vp.getCurrentImageIdIndex();
    if (cur < start || cur > end) void vp.setImageIdIndex(start);
    this.timer = window.setInterval(() => this.tick(), 1000 / Math.max(1, this.range.fps));
  }

  /** Changes the range or speed; a running clip continues with the new values. */
  update(range: CineRange) {
    this.range = range;
    if (this.playing) this.play();
  }

  stop() {
    if (this.timer !== undefined) window.clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick() {
    if (this.busy) return; // the previous frame is still loading: drop this tick
    const vp = stackViewport(this.viewportId);
    if (!vp) return this.stop();
    const { start, end } = this.range;
    const cur = vp.getCurrentImageIdIndex();
    const next = cur < start || cur >= end ? start : cur + 1;
    this.busy = true;
    vp.setImageIdIndex(next).finally(() => {
      this.busy = false;
    });
  }
}
