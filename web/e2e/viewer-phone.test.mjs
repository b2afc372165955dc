// Browser tests of the viewer on a phone (390×844, touch): no overlapping
// controls, the phone layouts (side by side, stacked, 3:1), double-tap to
// enlarge, one-finger scroll / W/L toggle, pinch zoom, the size of the
// JavaScript a phone loads for the stack view, and the fallback when volume
// rendering cannot work.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startYunying, artifact, viewportPixels, watchErrors } from './lib/harness.mjs';
import {
  findCtChest, radiologistContext, openViewer, waitCellReady, imageIndex, visibleControlBoxes, overlappingPairs, touchDrag,
} from './lib/viewer.mjs';

let server, browser, context, ct;

before(async () => {
  server = await startYunying({ demoStudies: 2, demoSlices: 120 });
  ({ browser, context } = await radiologistContext(server, { phone: true }));
  ct = await findCtChest(context, server.base);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

function overlaps(a, b) {
  return Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x) > 1 && Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y) > 1;
}

test('phone: the stack view loads under 1.5 MB of gzipped JavaScript and no controls overlap', async () => {
  const page = await context.newPage();
  const errors = watchErrors(page);
  await openViewer(page, server.base, ct.studyUID);
  const px = await viewportPixels(page, 'viewport-stack-0');
  assert.ok(px.nonBlank > 0.1, 'first image is blank on the phone');
  // Each script once (the decode worker runs twice from one download).
  const js = await page.evaluate(() => [...new Map(performance.getEntriesByType('resource')
    .filter((e) => /\.js(\?|$)/.test(e.name))
    .map((e) => [e.name, { name: e.name.replace(location.origin, ''), bytes: e.encodedBodySize }])).values()]);
  const total = js.reduce((s, e) => s + e.bytes, 0);
  console.log(`phone stack view JavaScript: ${(total / 1024 / 1024).toFixed(3)} MB over the wire (${js.map((e) => `${e.name} ${(e.bytes / 1024).toFixed(0)} KB`).join(', ')})`);
  assert.ok(total > 100_000 && total < 1.5 * 1024 * 1024, `phone JS ${total} bytes`);
  assert.ok(!js.some((e) => e.name.includes('VolumeWorkspace')), 'the volume chunk was loaded for the stack view');
  const boxes = await visibleControlBoxes(page, 'viewer');
  assert.ok(boxes.length >= 8, `only ${boxes.length} controls visible`);
  assert.deepEqual(overlappingPairs(boxes), []);
  const grid = await page.locator('[data-testid="viewport-grid"]').boundingBox();
  const toolbar = await visibleControlBoxes(page, 'viewer-toolbar');
  for (const b of toolbar) assert.ok(!overlaps({ x: b.x, y: b.y, width: b.w, height: b.h }, grid), `${b.id} overlaps the viewport`);
  assert.ok(grid.height > 400 && grid.width >= 380, `viewport too small: ${JSON.stringify(grid)}`);
  await page.screenshot({ path: artifact('viewer-phone-stack') });
  // Side panels open as a bottom sheet that does not cover the toolbar.
  await page.click('[data-testid="panel-report"]');
  const sheet = await page.locator('[data-testid="side-panel"]').boundingBox();
  for (const b of toolbar) assert.ok(!overlaps({ x: b.x, y: b.y, width: b.w, height: b.h }, sheet), `${b.id} is under the panel`);
  assert.deepEqual(overlappingPairs(await visibleControlBoxes(page, 'viewer')), []);
  await page.screenshot({ path: artifact('viewer-phone-report') });
  assert.deepEqual(errors, []);
  await page.close();
});

test('phone layouts: side by side, stacked and 3:1 fill the screen without overlap; double-tap enlarges', async () => {
  const page = await context.newPage();
  await openViewer(page, server.base, ct.studyUID);
  for (const [layout, cells] of [['1x2', 2], ['2x1', 2], ['3to1', 4]]) {
    await page.selectOption('[data-testid="layout-select"]', layout);
    for (let i = 0; i < cells; i++) await waitCellReady(page, `stack-${i}`);
    const boxes = [];
    for (let i = 0; i < cells; i++) boxes.push(await page.locator(`[data-testid="viewport-stack-${i}"]`).boundingBox());
    for (let i = 0; i < cells; i++) {
      assert.ok(boxes[i].width > 60 && boxes[i].height > 60, `${layout} cell ${i} too small`);
      for (let j = i + 1; j < cells; j++) assert.ok(!overlaps(boxes[i], boxes[j]), `${layout}: cells ${i} and ${j} overlap`);
    }
    if (layout === '1x2') assert.ok(Math.abs(boxes[0].y - boxes[1].y) < 2 && boxes[1].x > boxes[0].x, 'not side by side');
    if (layout === '2x1') assert.ok(Math.abs(boxes[0].x - boxes[1].x) < 2 && boxes[1].y > boxes[0].y, 'not stacked');
    if (layout === '3to1') assert.ok(boxes[0].height > 2.5 * boxes[1].height && boxes[0].width > 2.5 * boxes[1].width, 'not 3:1');
    await page.screenshot({ path: artifact(`viewer-phone-${layout}`) });
  }
  // Double-tap the large viewport of the 3:1 layout: it fills the grid, and again restores.
  const small = await page.locator('[data-testid="viewport-stack-0"]').boundingBox();
  const tapAt = [small.x + small.width / 2, small.y + small.height / 2];
  await page.touchscreen.tap(...tapAt);
  await page.waitForTimeout(80);
  await page.touchscreen.tap(...tapAt);
  await page.waitForFunction(() => document.querySelector('[data-testid="viewport-grid"]').getAttribute('data-enlarged') === '0', null, { timeout: 5000 });
  const big = await page.locator('[data-testid="viewport-stack-0"]').boundingBox();
  assert.ok(big.height > small.height * 1.2, 'double-tap did not enlarge');
  await page.screenshot({ path: artifact('viewer-phone-enlarged') });
  await page.waitForTimeout(600);
  await page.touchscreen.tap(...tapAt);
  await page.waitForTimeout(80);
  await page.touchscreen.tap(...tapAt);
  await page.waitForFunction(() => document.querySelector('[data-testid="viewport-grid"]').getAttribute('data-enlarged') === '', null, { timeout: 5000 });
  await page.close();
});

test('phone touch: one finger scrolls (or does W/L after the toggle), two fingers pinch-zoom', async () => {
  const page = await context.newPage();
  await openViewer(page, server.base, ct.studyUID);
  const box = await page.locator('[data-testid="viewport-stack-0"]').boundingBox();
  const cx = box.x + box.width / 2, cy = box.y + box.height / 2;
  await touchDrag(page, [[cx, cy - 100, cx, cy + 150]], 20);
  await page.waitForTimeout(300);
  const idx = await imageIndex(page, 'stack-0');
  assert.ok(idx > 0, 'one-finger drag did not scroll');
  await page.click('[data-testid="touch-mode"]');
  const ww0 = await page.getAttribute('[data-testid="cell-stack-0"]', 'data-ww');
  await touchDrag(page, [[cx - 80, cy, cx + 80, cy + 60]], 15);
  await page.waitForTimeout(300);
  assert.notEqual(await page.getAttribute('[data-testid="cell-stack-0"]', 'data-ww'), ww0, 'one-finger W/L did nothing');
  assert.equal(await imageIndex(page, 'stack-0'), idx, 'W/L mode still scrolled');
  const zoom0 = Number(await page.getAttribute('[data-testid="cell-stack-0"]', 'data-zoom'));
  await touchDrag(page, [[cx - 30, cy - 30, cx - 120, cy - 120], [cx + 30, cy + 30, cx + 120, cy + 120]], 15);
  await page.waitForTimeout(300);
  const zoom1 = Number(await page.getAttribute('[data-testid="cell-stack-0"]', 'data-zoom'));
  assert.ok(zoom1 > zoom0 * 1.3, `pinch did not zoom in (${zoom0} → ${zoom1})`);
  await page.screenshot({ path: artifact('viewer-phone-touch') });
  await page.close();
});

test('phone: without volume rendering, MPR/3D fall back to the stack view with a message', async () => {
  const page = await context.newPage();
  await openViewer(page, server.base, ct.studyUID, '&forceNoVolume=1');
  await page.click('[data-testid="mode-mpr"]');
  await page.waitForSelector('[data-testid="viewer-notice"]');
  assert.match(await page.textContent('[data-testid="viewer-notice"]'), /二维/);
  assert.equal(await page.getAttribute('[data-testid="viewer"]', 'data-mode'), 'stack');
  const px = await viewportPixels(page, 'viewport-stack-0');
  assert.ok(px.nonBlank > 0.1, 'stack view is blank after the fallback');
  await page.screenshot({ path: artifact('viewer-phone-fallback') });
  await page.close();
});
