// Browser tests of the viewer's volume workspace on the demo CT chest:
// MPR (three non-blank planes), MIP with a thicker slab, spine labelling
// (named in order, shown on the planes they lie on, renamed) and 3D volume
// rendering (non-blank, presets and cropping change it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startYunying, artifact, viewportPixels, viewportSnapshot, viewportDiff, watchErrors } from './lib/harness.mjs';
import { findCtChest, radiologistContext, openViewer } from './lib/viewer.mjs';

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

async function openMpr() {
  const page = await context.newPage();
  const errors = watchErrors(page);
  await openViewer(page, server.base, ct.studyUID);
  await page.click('[data-testid="panel-measurements"]'); // close the side panel: wider planes
  await page.click('[data-testid="mode-mpr"]');
  await page.waitForSelector('[data-testid="mpr-view"][data-loaded="1"]', { timeout: 120_000 });
  await page.waitForTimeout(500);
  return { page, errors };
}

const PLANES = ['mpr-axial', 'mpr-sagittal', 'mpr-coronal'];

test('MPR shows three different, non-blank planes', async () => {
  const { page, errors } = await openMpr();
  const stats = {};
  for (const id of PLANES) {
    stats[id] = await viewportPixels(page, id);
    assert.ok(stats[id].nonBlank > 0.05 && stats[id].std > 10, `${id} is blank: ${JSON.stringify(stats[id])}`);
  }
  assert.equal(new Set(PLANES.map((id) => stats[id].hash)).size, 3, 'planes are identical');
  await page.screenshot({ path: artifact('viewer-mpr') });
  assert.deepEqual(errors, []);
  await page.close();
});

test('MIP with a thicker slab changes the image; MinIP differs from MIP', async () => {
  const { page } = await openMpr();
  await page.selectOption('[data-testid="mpr-blend"]', 'mip');
  await page.locator('[data-testid="mpr-slab"]').fill('2');
  await page.waitForTimeout(800);
  const thin = await viewportSnapshot(page, 'mpr-coronal');
  const thinStats = await viewportPixels(page, 'mpr-coronal');
  await page.locator('[data-testid="mpr-slab"]').fill('60');
  await page.waitForTimeout(1200);
  const thick = await viewportPixels(page, 'mpr-coronal');
  const diff = await viewportDiff(page, 'mpr-coronal', thin);
  console.log(`coronal MIP 2 mm mean ${thinStats.mean.toFixed(1)} → 60 mm mean ${thick.mean.toFixed(1)}, diff ${diff.toFixed(2)}`);
  assert.ok(diff > 2, `a 60 mm slab looks like a 2 mm one (diff ${diff})`);
  assert.ok(thick.mean > thinStats.mean, 'a thicker MIP should be brighter');
  await page.screenshot({ path: artifact('viewer-mip') });
  const mip = await viewportSnapshot(page, 'mpr-coronal');
  await page.selectOption('[data-testid="mpr-blend"]', 'minip');
  await page.waitForTimeout(1200);
  assert.ok((await viewportDiff(page, 'mpr-coronal', mip)) > 2, 'MinIP looks like MIP');
  await page.close();
});

test('spine labels are named in order from the chosen start, shown on the planes they lie on, and renamed', async () => {
  const { page } = await openMpr();
  await page.click('[data-testid="spine-toggle"]');
  await page.selectOption('[data-testid="spine-start"]', 'T11');
  // Click down the spine on the sagittal plane: the vertebral bodies are at x = 0, y ≈ +50 mm, one every 30 mm;
  // the first click on the axial plane's level.
  const focal = await page.evaluate(() => window.__yyViewer.focalPoint('mpr-sagittal'));
  for (const dz of [0, -30, -60]) {
    const [x, y] = await page.evaluate(([w]) => window.__yyViewer.worldToClient('mpr-sagittal', w), [[0, 50, focal[2] + dz]]);
    await page.mouse.click(x, y);
    await page.waitForTimeout(200);
  }
  const names = await page.$$eval('[data-testid^="spine-label-"]', (els) => els.map((e) => e.value));
  assert.deepEqual(names, ['T11', 'T12', 'L1']);
  const marks = async (plane) => page.$$eval(`[data-testid="spine-mark-${plane}"]`, (els) => els.map((e) => e.getAttribute('data-name')));
  assert.deepEqual((await marks('mpr-sagittal')).sort(), ['L1', 'T11', 'T12']);
  assert.deepEqual(await marks('mpr-axial'), ['T11'], 'the axial plane passes only through the first label');
  // The coronal plane is at the volume's centre (y ≈ 0), 50 mm in front of the spine: it shows none of them.
  assert.deepEqual(await marks('mpr-coronal'), []);
  // Scrolling the coronal plane back to the spine shows them there too.
  const cor = await page.locator('[data-testid="mpr-coronal"]').boundingBox();
  await page.mouse.move(cor.x + cor.width / 2, cor.y + cor.height / 2);
  const coronalY = async () => page.evaluate(() => window.__yyViewer.focalPoint('mpr-coronal')[1]);
  const y0 = await coronalY();
  await page.mouse.wheel(0, 100);
  await page.waitForTimeout(300);
  const step = (await coronalY()) - y0;
  assert.ok(Math.abs(step) > 0.1, 'wheel did not move the coronal plane');
  for (let i = 0; i < 200 && Math.abs((await coronalY()) - 50) > Math.abs(step); i++) {
    await page.mouse.wheel(0, Math.sign(step) * Math.sign(50 - (await coronalY())) * 100);
    await page.waitForTimeout(30);
  }
  await page.waitForTimeout(300);
  assert.deepEqual((await marks('mpr-coronal')).sort(), ['L1', 'T11', 'T12']);
  await page.fill('[data-testid="spine-label-1"]', 'T12*');
  assert.ok((await marks('mpr-sagittal')).includes('T12*'));
  await page.screenshot({ path: artifact('viewer-spine-labels') });
  await page.close();
});

test('3D renders a non-blank volume; presets and cropping change it', async () => {
  const page = await context.newPage();
  await openViewer(page, server.base, ct.studyUID);
  await page.click('[data-testid="mode-3d"]', { noWaitAfter: true });
  await page.waitForSelector('[data-testid="vr-view"][data-ready="1"]', { timeout: 240_000 });
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="vr-view"]').dataset.renders) > 0, null, { timeout: 240_000 });
  const px = await viewportPixels(page, 'vr-viewport');
  assert.ok(px.std > 15 && px.mean > 10, `3D is blank: ${JSON.stringify(px)}`);
  await page.screenshot({ path: artifact('viewer-3d-bone') });
  const bone = await viewportSnapshot(page, 'vr-viewport');
  const renders = async () => Number(await page.getAttribute('[data-testid="vr-view"]', 'data-renders'));
  let n = await renders();
  await page.selectOption('[data-testid="vr-preset"]', 'lung');
  await page.waitForFunction((k) => Number(document.querySelector('[data-testid="vr-view"]').dataset.renders) > k, n, { timeout: 120_000 });
  await page.waitForTimeout(500);
  assert.ok((await viewportDiff(page, 'vr-viewport', bone)) > 3, 'the lung preset looks like bone');
  await page.selectOption('[data-testid="vr-preset"]', 'bone');
  n = await renders();
  await page.locator('[data-testid="vr-crop-x1"]').fill('50');
  await page.waitForFunction((k) => Number(document.querySelector('[data-testid="vr-view"]').dataset.renders) > k, n, { timeout: 120_000 });
  await page.waitForTimeout(500);
  assert.ok((await viewportDiff(page, 'vr-viewport', bone)) > 3, 'cropping half the volume changed nothing');
  await page.screenshot({ path: artifact('viewer-3d-cropped') });
  await page.close();
});
