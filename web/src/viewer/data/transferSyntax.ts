// Which transfer syntax the viewer asks for when it retrieves frames.
// Measured on loopback (800 × 512² CT, 2 cores, headless Chromium): the
// stored native syntax (`transfer-syntax=*`, uncompressed here) loads the
// series fastest because nothing has to be decoded; the server's HTJ2K RPCL
// copy (.202, ~⅓ of the bytes) pays a wasm decode per frame and only wins on
// slow links. `?ts=htj2k` selects HTJ2K; a 406/404 (no progressive copy yet,
// e.g. just-ingested data) falls back to native for the rest of the session.
export type FrameSyntax = 'native' | 'htj2k';

const ACCEPT: Record<FrameSyntax, string> = {
  native: 'multipart/related; type=application/octet-stream; transfer-syntax=*',
  htj2k: 'multipart/related; type=application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.202',
};

let syntax: FrameSyntax = new URLSearchParams(location.search).get('ts') === 'htj2k' ? 'htj2k' : 'native';

export function frameSyntax(): FrameSyntax {
  return syntax;
}

/** Accept header of frame requests (the loader's beforeSend). */
export function frameHeaders(): Record<string, string> {
  return { Accept: ACCEPT[syntax] };
}

/** A frame request failed: without an HTJ2K copy, use the stored syntax from now on. Returns true when it switched. */
export function onFrameError(status: number): boolean {
  if (syntax === 'htj2k' && (status === 406 || status === 404)) {
    syntax = 'native';
    return true;
  }
  return false;
}

/** An HTJ2K frame could not be decoded here (e.g. wasm blocked): use the stored syntax from now on. */
export function abandonHtj2k(): boolean {
  if (syntax !== 'htj2k') return false;
  syntax = 'native';
  return true;
}
