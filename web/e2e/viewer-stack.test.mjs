// Browser tests of the viewer's stack mode on the demo CT chest (desktop):
// opening a study, window/level, a length measured against the phantom's
// known vertebral body, sharpening, cine over a range, synchronised scrolling,
// and the tag/report panels.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startYunying, artifact, viewportPixels, viewportSnapshot, viewportDiff, watchErrors } from './lib/harness.mjs';
import {
  findCtChest, radiologistContext, openViewer, waitCellReady, imageToClient, imageIndex, measurementValues,
  seriesMetadata, nativeFrame,
} from './lib/viewer.mjs';

let server, browser, context, ct;

before(async () => {
  server = await startYunying({ demoStudies: 2, demoSlices: 120 });
  ({ browser, context } = await radiologistContext(server));
  ct = await findCtChest(context, server.base);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A new page on the CT chest, once the displayed series is fully loaded (drawing then competes with nothing). */
async function freshViewer(extra = '') {
  const page = await context.newPage();
  const errors = watchErrors(page);
  await openViewer(page, server.base, ct.studyUID, extra);
  await page.waitForFunction(() => performance.getEntriesByName('yunying:series-loaded').length === 1, null, { timeout: 60_000 });
  return { page, errors };
}

/** A left-button drag that rests at its end before releasing (the tools take the last move's position). */
async function mouseDrag(page, from, to, steps = 12) {
  await page.mouse.move(from[0], from[1]);
  await page.mouse.down();
  await page.mouse.move(to[0], to[1], { steps });
  await page.waitForTimeout(100);
  await page.mouse.move(to[0], to[1]);
  await page.mouse.up();
  await page.waitForTimeout(250);
}

test('opens the CT chest: first image on screen, then the whole series loaded', async () => {
  const { page, errors } = await freshViewer();
  const px = await viewportPixels(page, 'viewport-stack-0');
  assert.ok(px.nonBlank > 0.15, `first image is blank: ${JSON.stringify(px)}`);
  assert.ok(px.std > 20, `first image has no contrast: ${JSON.stringify(px)}`);
  // The main (largest) series is shown, first image first.
  assert.equal(await page.getAttribute('[data-testid="cell-stack-0"]', 'data-series-uid'), ct.series[0].uid);
  assert.equal(await imageIndex(page, 'stack-0'), 0);
  await page.waitForFunction(() => performance.getEntriesByName('yunying:series-loaded').length === 1, null, { timeout: 30_000 });
  const marks = await page.evaluate(() => Object.fromEntries(performance.getEntriesByType('mark').map((m) => [m.name, m.startTime])));
  assert.ok(marks['yunying:first-image'] > 0 && marks['yunying:first-image'] < marks['yunying:series-loaded']);
  console.log(`first-image ${marks['yunying:first-image'].toFixed(0)} ms, series-loaded ${marks['yunying:series-loaded'].toFixed(0)} ms (${ct.series[0].count} images)`);
  // The overlay shows the patient and the image number.
  assert.match(await page.textContent('[data-testid="overlay-image"]'), /1 \/ 120/);
  const patient = (await page.textContent('[data-testid="overlay-patient"]')).trim();
  assert.ok(patient.length > 0 && !patient.includes('^'), `the patient's name as people write it: ${patient}`);
  // Series thumbnails come from the server.
  const thumbs = await page.$$('[data-testid^="series-thumb-"] img');
  assert.equal(thumbs.length, 3);
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid^="series-thumb-"] img')].every((i) => i.complete && i.naturalWidth > 0));
  await page.screenshot({ path: artifact('viewer-stack-open') });
  assert.deepEqual(errors, []);
  await page.close();
});

test('a left-button drag changes window/level and the pixels', async () => {
  const { page } = await freshViewer();
  const before = await viewportSnapshot(page, 'viewport-stack-0');
  const ww0 = Number(await page.getAttribute('[data-testid="cell-stack-0"]', 'data-ww'));
  const box = await page.locator('[data-testid="viewport-stack-0"]').boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 150, box.y + box.height / 2 + 60, { steps: 12 });
  await page.mouse.up();
  await page.waitForTimeout(300);
  const ww1 = Number(await page.getAttribute('[data-testid="cell-stack-0"]', 'data-ww'));
  assert.notEqual(ww1, ww0, 'window width did not change');
  const diff = await viewportDiff(page, 'viewport-stack-0', before);
  assert.ok(diff > 2, `pixels barely changed (${diff})`);
  // A preset sets the lung window exactly.
  await page.selectOption('[data-testid="preset-select"]', 'lung');
  await page.waitForFunction(() => document.querySelector('[data-testid="cell-stack-0"]').getAttribute('data-ww') === '1500');
  assert.equal(await page.getAttribute('[data-testid="cell-stack-0"]', 'data-wc'), '-600');
  await page.screenshot({ path: artifact('viewer-stack-wl') });
  await page.close();
});

/**
 * The vertebral body's width on one native frame: the phantom's body is an
 * elliptic cylinder at x = 0, y = +50·s mm, semi-axes 18·s × 15·s (cortical
 * shell 1150 HU, cancellous core), s ∈ [0.9, 1.06]. Over the rows through
 * y ∈ [40, 56] mm the widest run of bone within |x| < 30 mm is the centre row.
 * Returns null on a slice through a disc.
 */
function vertebralBodyWidth(f) {
  const [rowSpacing, colSpacing] = f.spacing;
  const colOf = (x) => Math.round((x - f.ipp[0]) / colSpacing);
  const rowOf = (y) => Math.round((y - f.ipp[1]) / rowSpacing);
  const BONE = 600; // HU, half way from soft tissue to cortical bone
  let best = null;
  for (let row = rowOf(40); row <= rowOf(56); row++) {
    let left = -1, right = -1;
    for (let col = colOf(-30); col <= colOf(30); col++) {
      if (f.values[row * f.cols + col] >= BONE) { if (left < 0) left = col; right = col; }
    }
    if (left >= 0 && (!best || right - left + 1 > best.pixels)) best = { pixels: right - left + 1, left, right, row };
  }
  if (!best || best.pixels * colSpacing < 0.9 * 36 - 2) return null;
  return { ...best, mm: best.pixels * colSpacing };
}

test('a length across the vertebral body matches the native pixels (±1 mm)', async () => {
  const { page } = await freshViewer();
  const meta = await seriesMetadata(context, server.base, ct.studyUID, ct.series[0].uid);
  // The first image (reading order) that cuts through a vertebral body, not a disc.
  let index = -1, body = null;
  for (let i = 0; i < Math.min(meta.length, 20) && !body; i++) {
    const f = await nativeFrame(context, server.base, ct.studyUID, ct.series[0].uid, meta[i]);
    assert.deepEqual(f.iop, [1, 0, 0, 0, 1, 0], 'test assumes axial images');
    body = vertebralBodyWidth(f);
    if (body) body.colSpacing = f.spacing[1];
    index = i;
  }
  assert.ok(body, 'no slice through a vertebral body among the first 20');
  assert.ok(body.mm > 0.9 * 36 - 1.5 && body.mm < 1.06 * 36 + 1.5, `phantom width ${body.mm} mm is not 36·s`);
  // Scroll the viewer to that image (one wheel step per image).
  const box = await page.locator('[data-testid="viewport-stack-0"]').boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  for (let i = 0; i < index; i++) { await page.mouse.wheel(0, 100); await page.waitForTimeout(60); }
  await page.waitForFunction((i) => document.querySelector('[data-testid="cell-stack-0"]').getAttribute('data-image-index') === String(i), index);
  const shownSop = /instances\/([^/]+)\/frames/.exec(await page.getAttribute('[data-testid="cell-stack-0"]', 'data-image-id'))[1];
  assert.equal(shownSop, meta[index]['00080018'].Value[0]);
  // Draw the Length with real mouse drags from the left edge of the first bone pixel to the right edge of the last.
  await page.click('[data-testid="tool-length"]');
  // Cornerstone image coordinates put pixel edges on integers: pixel c spans [c, c + 1].
  const p1 = await imageToClient(page, 'stack-0', body.left, body.row + 0.5);
  const p2 = await imageToClient(page, 'stack-0', body.right + 1, body.row + 0.5);
  await mouseDrag(page, p1, p2, 15);
  await page.waitForSelector('[data-testid="measurement-value-0"]');
  await page.waitForFunction(() => /\d/.test(document.querySelector('[data-testid="measurement-value-0"]').textContent));
  const [text] = await measurementValues(page);
  const measured = parseFloat(text);
  console.log(`length on image ${index + 1}: tool ${text}, native pixels ${body.mm.toFixed(2)} mm (${body.pixels} px × ${body.colSpacing} mm)`);
  assert.match(text, /mm/);
  assert.ok(Math.abs(measured - body.mm) <= 1, `tool ${measured} mm vs expected ${body.mm} mm`);
  assert.equal(await page.getAttribute('[data-testid="measurement-row-0"]', 'data-tool'), 'Length');
  await page.screenshot({ path: artifact('viewer-stack-length') });
  await page.close();
});

test('angle, Cobb angle, rectangle ROI, probe and arrow report their values in the measurement list', async () => {
  const { page } = await freshViewer();
  const meta = await seriesMetadata(context, server.base, ct.studyUID, ct.series[0].uid);
  const f = await nativeFrame(context, server.base, ct.studyUID, ct.series[0].uid, meta[0]);
  const at = (c, r) => imageToClient(page, 'stack-0', c, r);
  const drag = (a, b) => mouseDrag(page, a, b);
  const valueOf = async (i) => {
    try {
      await page.waitForFunction((k) => /\d/.test(document.querySelector(`[data-testid="measurement-value-${k}"]`)?.textContent ?? ''), i, { timeout: 10_000 });
    } catch (e) {
      await page.screenshot({ path: artifact('viewer-stack-measurements-failed') });
      throw new Error(`measurement ${i} has no value: ${JSON.stringify(await measurementValues(page))}`, { cause: e });
    }
    return page.textContent(`[data-testid="measurement-value-${i}"]`);
  };
  // Angle: a right angle (vertex at image (256, 200)).
  await page.click('[data-testid="tool-angle"]');
  await drag(await at(156, 200), await at(256, 200));
  // The third point: Cornerstone's Angle tool completes on a release after movement (as a hand does).
  await drag(await at(256, 99), await at(256, 100));
  const angle = parseFloat(await valueOf(0));
  assert.ok(Math.abs(angle - 90) < 1, `angle ${angle}`);
  // Cobb angle: a horizontal line and one at 45°.
  await page.click('[data-testid="tool-cobb"]');
  await drag(await at(100, 420), await at(200, 420));
  await drag(await at(300, 420), await at(400, 320));
  const cobb = parseFloat(await valueOf(1));
  assert.ok(Math.abs(Math.min(cobb, 180 - cobb) - 45) < 1, `Cobb angle ${cobb} (lines at 45°)`);
  // Rectangle ROI: 60 × 40 pixels of 0.7 mm → 1176 mm²; mean/SD in HU.
  await page.click('[data-testid="tool-rect"]');
  await drag(await at(100, 250), await at(160, 290));
  const rect = await valueOf(2);
  const area = parseFloat(/,\s*([\d.]+)/.exec(rect)[1]);
  assert.match(rect, /HU/);
  assert.ok(Math.abs(area - 60 * 40 * f.spacing[0] * f.spacing[1]) / area < 0.03, `rectangle ROI ${rect}`);
  // Probe: the HU of one pixel, as stored.
  await page.click('[data-testid="tool-probe"]');
  // Probe: the HU of the pixel it reports (within a pixel of the click), exactly as stored.
  await page.click('[data-testid="tool-probe"]');
  await page.mouse.click(...(await at(256.5, 300.5)));
  await page.waitForTimeout(250);
  const probeText = await valueOf(3);
  const m = /(-?\d+)\s*HU @ \((\d+), (\d+)\)/.exec(probeText);
  assert.ok(m, `probe text ${probeText}`);
  const [hu, col, row] = m.slice(1).map(Number);
  assert.ok(Math.abs(col - 256) <= 1 && Math.abs(row - 300) <= 1, `probe at (${col}, ${row})`);
  assert.equal(hu, Math.round(f.values[row * f.cols + col]), `probe ${probeText}`);
  // Arrow: the label text comes from the prompt.
  page.once('dialog', (d) => d.accept('结节?'));
  await page.click('[data-testid="tool-arrow"]');
  await drag(await at(300, 150), await at(340, 190));
  await page.waitForFunction(() => document.querySelector('[data-testid="measurement-value-4"]')?.textContent === '结节?');
  const tools = await page.$$eval('[data-testid^="measurement-row-"]', (els) => els.map((e) => e.getAttribute('data-tool')));
  assert.deepEqual(tools, ['Angle', 'CobbAngle', 'RectangleROI', 'Probe', 'ArrowAnnotate']);
  await page.screenshot({ path: artifact('viewer-stack-measurements') });
  // Deleting a row removes the measurement.
  await page.click('[data-testid="measurement-delete-0"]');
  assert.equal((await page.$$('[data-testid^="measurement-row-"]')).length, 4);
  await page.close();
});

test('sharpening changes the pixels and off restores them', async () => {
  const { page } = await freshViewer();
  const before = await viewportSnapshot(page, 'viewport-stack-0');
  await page.click('[data-testid="sharpen-toggle"]');
  await page.waitForTimeout(500);
  const on = await viewportDiff(page, 'viewport-stack-0', before);
  assert.ok(on > 0.3, `sharpening changed nothing (${on})`);
  await page.screenshot({ path: artifact('viewer-stack-sharpen') });
  await page.click('[data-testid="sharpen-toggle"]');
  await page.waitForTimeout(500);
  const off = await viewportDiff(page, 'viewport-stack-0', before);
  assert.ok(off < on / 4, `sharpening off did not restore (${off} vs ${on})`);
  await page.close();
});

test('cine plays only within the chosen range', async () => {
  const { page } = await freshViewer();
  await page.click('[data-testid="panel-cine"]');
  await page.fill('[data-testid="cine-start"]', '10');
  await page.fill('[data-testid="cine-end"]', '15');
  await page.locator('[data-testid="cine-fps"]').fill('20');
  await page.click('[data-testid="cine-play"]');
  await page.waitForTimeout(400);
  const seen = [];
  const until = Date.now() + 3000;
  while (Date.now() < until) {
    seen.push(await imageIndex(page, 'stack-0'));
    await page.waitForTimeout(40);
  }
  await page.click('[data-testid="cine-play"]');
  const distinct = [...new Set(seen)].sort((a, b) => a - b);
  console.log(`cine saw images ${distinct.map((i) => i + 1).join(',')}`);
  assert.ok(distinct.every((i) => i >= 9 && i <= 14), `left the range: ${distinct}`);
  assert.ok(distinct.length >= 4, `did not advance: ${distinct}`);
  await page.screenshot({ path: artifact('viewer-stack-cine') });
  const stopped = await imageIndex(page, 'stack-0');
  await page.waitForTimeout(400);
  assert.equal(await imageIndex(page, 'stack-0'), stopped, 'cine did not stop');
  await page.close();
});

test('scrolling one series scrolls the other series of the same frame of reference', async () => {
  const { page } = await freshViewer();
  await page.selectOption('[data-testid="layout-select"]', '1x2');
  await waitCellReady(page, 'stack-1');
  assert.equal(await page.getAttribute('[data-testid="cell-stack-1"]', 'data-series-uid'), ct.series[1].uid);
  const box = await page.locator('[data-testid="viewport-stack-0"]').boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  for (let i = 0; i < 20; i++) { await page.mouse.wheel(0, 100); await page.waitForTimeout(40); }
  await page.waitForTimeout(600);
  const a = await imageIndex(page, 'stack-0');
  const b = await imageIndex(page, 'stack-1');
  console.log(`sync: soft tissue at ${a}, lung at ${b}`);
  assert.ok(a >= 10, `the first series did not scroll (${a})`);
  // 2 mm vs 4 mm slices over the same range: the lung series follows at half the index.
  assert.ok(Math.abs(b - a / 2) <= 1.01, `lung series at ${b}, expected about ${a / 2}`);
  await page.screenshot({ path: artifact('viewer-stack-sync') });
  // Sync off: the second series stays.
  await page.click('[data-testid="sync-toggle"]');
  await page.mouse.move(box.x + box.width / 4, box.y + box.height / 2);
  for (let i = 0; i < 10; i++) { await page.mouse.wheel(0, 100); await page.waitForTimeout(40); }
  await page.waitForTimeout(400);
  assert.ok((await imageIndex(page, 'stack-0')) > a);
  assert.equal(await imageIndex(page, 'stack-1'), b);
  await page.close();
});

test('double-click enlarges a viewport and back; tags and report panels show the study', async () => {
  const { page } = await freshViewer();
  await page.selectOption('[data-testid="layout-select"]', '2x2');
  await waitCellReady(page, 'stack-3');
  // The localizer (third cell) shows the active axial slice as a reference line, which follows scrolling.
  assert.equal(await page.getAttribute('[data-testid="cell-stack-2"]', 'data-series-uid'), ct.series[2].uid);
  const refLine = () => page.evaluate(() => {
    const l = document.querySelector('[data-testid="viewport-stack-2"] svg line');
    return l ? Number(l.getAttribute('y1')) : null;
  });
  await page.waitForFunction(() => !!document.querySelector('[data-testid="viewport-stack-2"] svg line'), null, { timeout: 10_000 });
  const y1 = await refLine();
  const vb = await page.locator('[data-testid="viewport-stack-0"]').boundingBox();
  await page.mouse.move(vb.x + vb.width / 2, vb.y + vb.height / 2);
  for (let i = 0; i < 30; i++) { await page.mouse.wheel(0, 100); await page.waitForTimeout(30); }
  await page.waitForTimeout(500);
  const y2 = await refLine();
  assert.ok(y2 !== null && Math.abs(y2 - y1) > 3, `reference line did not move (${y1} → ${y2})`);
  const small = await page.locator('[data-testid="viewport-stack-1"]').boundingBox();
  await page.dblclick('[data-testid="viewport-stack-1"]');
  await page.waitForFunction(() => document.querySelector('[data-testid="viewport-grid"]').getAttribute('data-enlarged') === '1');
  const big = await page.locator('[data-testid="viewport-stack-1"]').boundingBox();
  assert.ok(big.width > small.width * 1.8 && big.height > small.height * 1.8);
  assert.ok(!(await page.isVisible('[data-testid="viewport-stack-0"]')));
  await page.waitForTimeout(300);
  const px = await viewportPixels(page, 'viewport-stack-1');
  assert.ok(px.nonBlank > 0.1, 'enlarged viewport is blank');
  await page.dblclick('[data-testid="viewport-stack-1"]');
  await page.waitForFunction(() => document.querySelector('[data-testid="viewport-grid"]').getAttribute('data-enlarged') === '');
  await page.click('[data-testid="panel-tags"]');
  await page.waitForSelector('[data-testid="tag-00100010"]');
  await page.fill('[data-testid="tag-filter"]', '0028');
  assert.ok(await page.isVisible('[data-testid="tag-00280030"]'));
  assert.ok(!(await page.isVisible('[data-testid="tag-00100010"]')));
  await page.click('[data-testid="panel-report"]');
  assert.match(await page.textContent('[data-testid="report-panel"]'), /报告 \(待开发\)/);
  assert.ok((await page.textContent('[data-testid="report-patient"]')).trim().length > 0);
  await page.screenshot({ path: artifact('viewer-stack-panels') });
  await page.close();
});
