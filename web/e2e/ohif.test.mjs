// OHIF compatibility: the prebuilt OHIF Viewer 3.13 (npm @ohif/app, fetched
// and pinned by scripts/fetch-ohif.sh, configured by docs/ohif/app-config.js)
// served by yunying in place of its own app (`[web] dir`), pointed at
// /dicom-web. With a Yunying session its study list shows the region's
// studies and its viewer draws the CT; without one it gets nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startYunying, launchBrowser, newContext, signIn, qido, tag, artifact } from './lib/harness.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
let server;
let browser;

before(async () => {
  const site = execFileSync(path.join(repoRoot, 'scripts', 'fetch-ohif.sh'), { encoding: 'utf8' }).trim().split('\n').pop();
  server = await startYunying({ demoStudies: 2, demoSlices: 40, env: { YUNYING_WEB_DIR: site } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Fraction of lit pixels of the most lit canvas on the page. */
async function litCanvas(page) {
  return page.evaluate(() => {
    let best = 0;
    for (const c of document.querySelectorAll('canvas')) {
      if (!c.width || !c.height) continue;
      const ctx = c.getContext('2d', { willReadFrequently: true });
      if (!ctx) continue;
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      let lit = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 60) lit++;
      best = Math.max(best, lit / (d.length / 4));
    }
    return best;
  });
}

test('OHIF lists the studies and draws the CT through /dicom-web with a Yunying session', async () => {
  const context = await newContext(browser);
  await signIn(context, server.base, 'radiologist', server.accounts.radiologist);
  const studies = await qido(context, server.base, 'studies');
  assert.equal(studies.length, 2);
  const page = await context.newPage();
  await page.goto(`${server.base}/`);
  for (const s of studies) {
    const accession = tag(s, '00080050');
    await page.getByText(accession, { exact: true }).waitFor({ timeout: 60_000 });
  }
  await page.screenshot({ path: artifact('ohif-study-list') });

  const ct = (await qido(context, server.base, 'studies?ModalitiesInStudy=CT'))[0];
  await page.goto(`${server.base}/viewer?StudyInstanceUIDs=${tag(ct, '0020000D')}`);
  const deadline = Date.now() + 90_000;
  let lit = 0;
  while (Date.now() < deadline && (lit = await litCanvas(page)) < 0.1) await page.waitForTimeout(500);
  await page.screenshot({ path: artifact('ohif-viewer') });
  assert.ok(lit >= 0.1, `OHIF's viewport stays dark (lit fraction ${lit})`);
  await context.close();
});

test('OHIF without a Yunying session gets no data', async () => {
  const context = await newContext(browser);
  const page = await context.newPage();
  const statuses = [];
  page.on('response', (r) => { if (r.url().includes('/dicom-web/')) statuses.push(r.status()); });
  await page.goto(`${server.base}/`);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && statuses.length === 0) await page.waitForTimeout(250);
  assert.ok(statuses.length > 0, 'OHIF asked /dicom-web for studies');
  assert.ok(statuses.every((s) => s === 401), `every DICOMweb answer is 401: ${statuses}`);
  await context.close();
});
