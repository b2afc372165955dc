// A FIFO of byte chunks from a stream: append chunks, look at or take the
// first n bytes, find a pattern near the front. Copies each byte at most
// once (when taken), so a 400 MB multipart body streams in linear time.
export class ByteQueue {
  private chunks: Uint8Array[] = [];
  private head = 0; // read offset into chunks[0]
  length = 0;

  push(chunk: Uint8Array) {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** Copies out the first n bytes (n ≤ length) without consuming them. */
  peek(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    let offset = this.head;
    for (const c of this.chunks) {
      if (filled >= n) break;
      const part = c.subarray(offset, Math.min(c.length, offset + n - filled));
      out.set(part, filled);
      filled += part.length;
      offset = 0;
    }
    return out;
  }

  /** Removes and returns the first n bytes (n ≤ length). */
  take(n: number): Uint8Array {
    const out = this.peek(n);
    this.skip(n);
    return out;
  }

  skip(n: number) {
    this.length -= n;
    while (n > 0) {
      const c = this.chunks[0];
      const left = c.length - this.head;
      if (n < left) {
        this.head += n;
        return;
      }
      n -= left;
      this.chunks.shift();
      this.head = 0;
    }
  }

  /** Index of pattern within the first `limit` bytes, or -1. */
  indexOf(pattern: Uint8Array, limit: number): number {
    const hay = this.peek(Math.min(this.length, limit));
    outer: for (let i = 0; i + pattern.length <= hay.length; i++) {
      for (let j = 0; j < pattern.length; j++) if (hay[i + j] !== pattern[j]) continue outer;
      return i;
    }
    return -1;
  }
}
