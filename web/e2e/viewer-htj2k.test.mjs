// The viewer on the progressive HTJ2K copy (`&ts=htj2k`): frames arrive as
// HTJ2K RPCL (1.2.840.10008.1.2.4.202) from the server's streaming copy,
// are decoded by the viewer's WebAssembly codec in a worker (the app's
// security policy must let it compile), and look exactly like the stored
// frames (the copy is lossless).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startYunying, artifact, viewportSnapshot, viewportDiff, viewportPixels, watchErrors } from './lib/harness.mjs';
import { findCtChest, radiologistContext, openViewer } from './lib/viewer.mjs';

const HTJ2K_RPCL = '1.2.840.10008.1.2.4.202';
let server, browser, context, ct;

before(async () => {
  server = await startYunying({ demoStudies: 1, demoSlices: 40 });
  ({ browser, context } = await radiologistContext(server));
  ct = await findCtChest(context, server.base);
  // The streaming copy is made in the background after ingest: wait for the
  // last image of the main series to have one.
  const series = ct.series[0].uid;
  const instances = await (await context.request.get(`${server.base}/dicom-web/studies/${ct.studyUID}/series/${series}/instances`,
    { headers: { accept: 'application/dicom+json' } })).json();
  const last = instances.map((i) => i['00080018'].Value[0]).pop();
  const url = `${server.base}/dicom-web/studies/${ct.studyUID}/series/${series}/instances/${last}/frames/1`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const r = await context.request.get(url, { headers: { accept: `multipart/related; type="application/octet-stream"; transfer-syntax=${HTJ2K_RPCL}` } });
    if (r.status() === 200) break;
    if (Date.now() > deadline) throw new Error(`no streaming copy after 120 s (last answer ${r.status()})`);
    await new Promise((res) => setTimeout(res, 500));
  }
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function loaded(extra) {
  const page = await context.newPage();
  const errors = watchErrors(page);
  const syntaxes = [];
  page.on('response', (r) => {
    if (r.url().includes('/frames/')) syntaxes.push(/transfer-syntax=([0-9.]+)/.exec(r.headers()['content-type'] ?? '')?.[1] ?? '?');
  });
  await openViewer(page, server.base, ct.studyUID, extra);
  await page.waitForFunction(() => performance.getEntriesByName('yunying:series-loaded').length === 1, null, { timeout: 90_000 });
  await page.waitForTimeout(300);
  return { page, errors, syntaxes };
}

test('HTJ2K frames are decoded in the browser and equal the stored frames on screen', async () => {
  const native = await loaded('');
  const before = await viewportSnapshot(native.page, 'viewport-stack-0');
  await native.page.close();

  const ht = await loaded('&ts=htj2k');
  await ht.page.screenshot({ path: artifact('viewer-htj2k') });
  assert.ok(ht.syntaxes.length > 0, 'frames were requested one by one');
  assert.ok(ht.syntaxes.every((s) => s === HTJ2K_RPCL), `every frame came as HTJ2K RPCL: ${[...new Set(ht.syntaxes)]}`);
  const px = await viewportPixels(ht.page, 'viewport-stack-0');
  assert.ok(px.nonBlank > 0.15 && px.std > 20, `the HTJ2K image is blank: ${JSON.stringify(px)}`);
  const diff = await viewportDiff(ht.page, 'viewport-stack-0', before);
  assert.ok(diff < 0.5, `the lossless copy looks like the stored frame (mean difference ${diff})`);
  const decodeErrors = ht.errors.filter((e) => /decode|wasm|WebAssembly|Content Security/i.test(e));
  assert.deepEqual(decodeErrors, [], 'no decoder or policy errors');
  await ht.page.close();
});
