// Helpers of the viewer's browser tests: find the demo CT chest study and its
// series over QIDO, open the viewer signed in as the radiologist, wait for
// viewports to show images, and map image pixels to page coordinates.
import { launchBrowser, newContext, qido, signIn, tag } from './harness.mjs';

/** The demo CT chest study (first with ModalitiesInStudy=CT whose series include a multi-image axial series). */
export async function findCtChest(context, base) {
  const studies = await qido(context, base, 'studies?ModalitiesInStudy=CT&includefield=00081030');
  for (const s of studies) {
    const studyUID = tag(s, '0020000D');
    const series = await qido(context, base, `studies/${studyUID}/series?includefield=0008103E,00201209,00200011`);
    const multi = series
      .map((x) => ({ uid: tag(x, '0020000E'), count: Number(tag(x, '00201209') ?? 0), number: Number(tag(x, '00200011') ?? 0), desc: tag(x, '0008103E') ?? '' }))
      .filter((x) => x.count > 1)
      .sort((a, b) => b.count - a.count);
    if (multi.length >= 2) return { studyUID, series: multi, description: tag(s, '00081030') };
  }
  throw new Error('no CT chest study with two multi-image series found');
}

/** A signed-in browser context (desktop or phone) for the radiologist. */
export async function radiologistContext(server, { phone = false, viewport } = {}) {
  const browser = await launchBrowser();
  const context = await newContext(browser, { phone, viewport });
  await signIn(context, server.base, 'radiologist', server.accounts.radiologist);
  return { browser, context };
}

/** Opens the viewer on a study and waits until viewport stack-0 has rendered its first image. */
export async function openViewer(page, base, studyUID, extra = '') {
  await page.goto(`${base}/viewer?StudyInstanceUIDs=${studyUID}${extra}`);
  await page.waitForSelector('[data-testid="cell-stack-0"][data-ready="1"]', { timeout: 60_000 });
}

/** Waits for a cell to be ready (data-ready=1). */
export async function waitCellReady(page, viewportId, timeout = 60_000) {
  await page.waitForSelector(`[data-testid="cell-${viewportId}"][data-ready="1"]`, { timeout });
}

/** Page coordinates of image pixel (col, row) in a viewport. */
export async function imageToClient(page, viewportId, col, row) {
  return page.evaluate(([id, c, r]) => window.__yyViewer.imageToClient(id, c, r), [viewportId, col, row]);
}

/** The current image index shown by a cell. */
export async function imageIndex(page, viewportId) {
  return Number(await page.getAttribute(`[data-testid="cell-${viewportId}"]`, 'data-image-index'));
}

/** Texts of the measurement list, in order. */
export async function measurementValues(page) {
  return page.$$eval('[data-testid^="measurement-value-"]', (els) => els.map((e) => e.textContent ?? ''));
}

/**
 * Bounding boxes of visible, on-screen controls inside a container, clipped
 * by their scrolling ancestors (a control scrolled out of a toolbar is not
 * visible where its box would be).
 */
export async function visibleControlBoxes(page, containerTestId) {
  return page.evaluate((id) => {
    const root = document.querySelector(`[data-testid="${id}"]`);
    const out = [];
    for (const el of root.querySelectorAll('button, select, input')) {
      const style = getComputedStyle(el);
      if (style.visibility === 'hidden' || style.display === 'none') continue;
      const r = el.getBoundingClientRect();
      let [x0, y0, x1, y1] = [r.left, r.top, r.right, r.bottom];
      for (let p = el.parentElement; p; p = p.parentElement) {
        const ps = getComputedStyle(p);
        if (ps.overflowX !== 'visible' || ps.overflowY !== 'visible') {
          const pr = p.getBoundingClientRect();
          x0 = Math.max(x0, pr.left); y0 = Math.max(y0, pr.top); x1 = Math.min(x1, pr.right); y1 = Math.min(y1, pr.bottom);
        }
      }
      x0 = Math.max(x0, 0); y0 = Math.max(y0, 0); x1 = Math.min(x1, innerWidth); y1 = Math.min(y1, innerHeight);
      if (x1 - x0 < 1 || y1 - y0 < 1) continue;
      out.push({ id: el.getAttribute('data-testid') ?? el.tagName, x: x0, y: y0, w: x1 - x0, h: y1 - y0 });
    }
    return out;
  }, containerTestId);
}

/** Pairs of boxes that overlap by more than 1 px in both directions. */
export function overlappingPairs(boxes) {
  const pairs = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      const ox = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
      const oy = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
      if (ox > 1 && oy > 1) pairs.push([a.id, b.id]);
    }
  }
  return pairs;
}

/** Series metadata (WADO-RS) sorted by InstanceNumber. */
export async function seriesMetadata(context, base, studyUID, seriesUID) {
  const r = await context.request.get(`${base}/dicom-web/studies/${studyUID}/series/${seriesUID}/metadata`, { headers: { accept: 'application/dicom+json' } });
  if (!r.ok()) throw new Error(`metadata: ${r.status()}`);
  const list = await r.json();
  return list.sort((a, b) => Number(tag(a, '00200013')) - Number(tag(b, '00200013')));
}

/**
 * The stored (native) pixels of one frame as modality values (HU for CT):
 * WADO-RS frames with transfer-syntax=*, which must be uncompressed little endian.
 */
export async function nativeFrame(context, base, studyUID, seriesUID, instance) {
  const sop = tag(instance, '00080018');
  const r = await context.request.get(`${base}/dicom-web/studies/${studyUID}/series/${seriesUID}/instances/${sop}/frames/1`, {
    headers: { accept: 'multipart/related; type=application/octet-stream; transfer-syntax=*' },
  });
  if (!r.ok()) throw new Error(`frame: ${r.status()}`);
  const ct = r.headers()['content-type'];
  const ts = /transfer-syntax=([0-9.]+)/.exec(ct)?.[1];
  if (ts !== '1.2.840.10008.1.2.1' && ts !== '1.2.840.10008.1.2') throw new Error(`frame is not uncompressed LE: ${ct}`);
  const boundary = /boundary=("?)([^";]+)\1/.exec(ct)[2];
  const body = await r.body();
  const headerEnd = body.indexOf('\r\n\r\n') + 4;
  const end = body.indexOf(Buffer.from(`\r\n--${boundary}`), headerEnd);
  const bytes = body.subarray(headerEnd, end);
  const rows = Number(tag(instance, '00280010'));
  const cols = Number(tag(instance, '00280011'));
  const signed = Number(tag(instance, '00280103')) === 1;
  const slope = Number(tag(instance, '00281053') ?? 1);
  const intercept = Number(tag(instance, '00281052') ?? 0);
  if (bytes.length !== rows * cols * 2) throw new Error(`unexpected frame size ${bytes.length}`);
  const values = new Float32Array(rows * cols);
  for (let i = 0; i < rows * cols; i++) {
    const raw = signed ? bytes.readInt16LE(i * 2) : bytes.readUInt16LE(i * 2);
    values[i] = raw * slope + intercept;
  }
  const spacing = (instance['00280030']?.Value ?? []).map(Number); // [row spacing, column spacing]
  const ipp = (instance['00200032']?.Value ?? []).map(Number);
  const iop = (instance['00200037']?.Value ?? []).map(Number);
  return { rows, cols, values, spacing, ipp, iop };
}

/** Page coordinates of a viewport's camera focal point (MPR crosshairs centre). */
export async function focalPointClient(page, viewportId) {
  return page.evaluate((id) => window.__yyViewer.focalPointClient(id), viewportId);
}

/** A one- or two-finger touch drag through CDP (Playwright only taps). fingers: [[x0,y0,x1,y1], …]. */
export async function touchDrag(page, fingers, steps = 10) {
  const cdp = await page.context().newCDPSession(page);
  const at = (t) => fingers.map(([x0, y0, x1, y1], id) => ({ x: x0 + (x1 - x0) * t, y: y0 + (y1 - y0) * t, id }));
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: at(0) });
  for (let i = 1; i <= steps; i++) {
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: at(i / steps) });
    await page.waitForTimeout(16);
  }
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await cdp.detach();
}
