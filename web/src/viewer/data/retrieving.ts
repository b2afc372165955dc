// Objects being restored from an archive storage class: the server answers
// 503 with `"retrieving": true` and Retry-After (docs/api.md). The viewer
// says so ("retrieving", not "failed") and asks again after the wait.

/** The event the viewer shows as a notice: detail = seconds until the next try. */
export const RETRIEVING_EVENT = 'yunying:retrieving';

/** Seconds to wait when `r` is a "retrieving" answer, else undefined. */
export async function retrievingDelay(r: Response): Promise<number | undefined> {
  if (r.status !== 503) return undefined;
  let retrieving = false;
  try {
    retrieving = (await r.clone().json())?.retrieving === true;
  } catch {
    return undefined;
  }
  if (!retrieving) return undefined;
  const after = Number(r.headers.get('Retry-After'));
  return Math.min(60, Math.max(5, Number.isFinite(after) && after > 0 ? after : 30));
}

/** Tells the viewer that images are being retrieved (a frame request saw 503). */
export function announceRetrieving(seconds: number) {
  window.dispatchEvent(new CustomEvent(RETRIEVING_EVENT, { detail: seconds }));
}

/**
 * Fetches, waiting out "retrieving" answers (announced to the viewer) for up
 * to `budgetSeconds` (the archive's 2-minute promise, with margin).
 */
export async function fetchWaitingForRetrieval(
  url: string,
  init: RequestInit,
  budgetSeconds = 180,
): Promise<Response> {
  const started = Date.now();
  for (;;) {
    const r = await fetch(url, init);
    const wait = await retrievingDelay(r);
    if (wait === undefined || (Date.now() - started) / 1000 + wait > budgetSeconds) return r;
    announceRetrieving(wait);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, wait * 1000);
      init.signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(new DOMException('aborted', 'AbortError'));
      });
    });
  }
}
