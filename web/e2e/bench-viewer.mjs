// Viewer benchmark (issue budgets): an 800-image 512×512 CT series opened in
// headless Chromium on loopback, five times, each in a fresh browser context
// (empty HTTP cache). Prints the viewer's own milestones, read from the
// standard Performance API of the page:
//   yunying:first-preview  the server-rendered first slice shown while the viewer's code loads
//   yunying:first-image    first image drawn by the viewer (budget < 1 s after navigation start)
//   yunying:series-loaded  every image of the series loaded (budget < 5 s)
// and the script a phone downloads for the stack viewer (gzip bytes on the
// wire; budget < 1.5 MB).
//
// Usage: node e2e/bench-viewer.mjs [--runs 5] [--slices 800]
//   YUNYING_BIN (default: the release build), YUNYING_WEB_DIR (optional).
// The series is made once with `yunying synth --single-series N` and cached
// under ~/.cache/yunying/bench; each run of this script imports it into a
// fresh data directory and makes its streaming copy (`yunying derive --wait`)
// before serving, as a study read after acquisition would be.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, mkdirSync, readdirSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, newContext, signIn, startYunying, artifact } from './lib/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const runs = arg('runs', 5);
const slices = arg('slices', 800);

const bin = process.env.YUNYING_BIN
  ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(repoRoot, 'target'), 'release', 'yunying');
process.env.YUNYING_BIN = bin;

function run(args, what) {
  const r = spawnSync(bin, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}): ${r.stdout}`);
  return r.stdout;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main() {
  const cache = path.join(process.env.YUNYING_BENCH_CACHE ?? path.join(homedir(), '.cache', 'yunying', 'bench'), `viewer-ct-${slices}`);
  if (!existsSync(cache) || readdirSync(cache).length === 0) {
    mkdirSync(cache, { recursive: true });
    console.log(`making the ${slices}-image CT series in ${cache}`);
    run(['synth', '--out', cache, '--single-series', String(slices)], 'synth');
  }
  const tmp = mkdtempSync(path.join(tmpdir(), 'yunying-bench-viewer-'));
  const data = path.join(tmp, 'data');
  let t = Date.now();
  run(['import', cache, '--data', data], 'import');
  console.log(`imported in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  t = Date.now();
  run(['derive', '--wait', '--data', data], 'derive');
  console.log(`streaming copy made in ${((Date.now() - t) / 1000).toFixed(1)} s`);

  const server = await startYunying({ data, demoStudies: 0 });
  const browser = await launchBrowser();
  try {
    const { radiologist } = server.accounts;
    const probe = await newContext(browser);
    await signIn(probe, server.base, 'radiologist', radiologist);
    const studies = await (await probe.request.get(`${server.base}/dicom-web/studies?ModalitiesInStudy=CT`, { headers: { accept: 'application/dicom+json' } })).json();
    await probe.close();
    const study = studies[0]['0020000D'].Value[0];
    const url = `${server.base}/viewer?StudyInstanceUIDs=${study}`;

    const one = async (label, phone) => {
      const context = await newContext(browser, { phone });
      await signIn(context, server.base, 'radiologist', radiologist);
      const page = await context.newPage();
      let scriptBytes = 0;
      page.on('response', async (r) => {
        if (r.request().resourceType() === 'script') {
          const len = Number(r.headers()['content-length'] ?? 0);
          scriptBytes += len || (await r.body().catch(() => Buffer.alloc(0))).length;
        }
      });
      await page.goto(url);
      await page.waitForFunction(() => performance.getEntriesByName('yunying:series-loaded').length > 0, null, { timeout: 120_000 });
      const marks = await page.evaluate(() => ({
        first: performance.getEntriesByName('yunying:first-image')[0]?.startTime,
        preview: performance.getEntriesByName('yunying:first-preview')[0]?.startTime,
        loaded: performance.getEntriesByName('yunying:series-loaded')[0]?.startTime,
      }));
      if (label === 'run 1' || phone) await page.screenshot({ path: artifact(`bench-viewer-${phone ? 'phone' : 'desktop'}`) });
      await context.close();
      const preview = marks.preview === undefined ? '   -   ' : `${(marks.preview / 1000).toFixed(3)} s`;
      console.log(`${label.padEnd(12)} first-preview ${preview}   first-image ${(marks.first / 1000).toFixed(3)} s   series-loaded ${(marks.loaded / 1000).toFixed(3)} s` +
        (phone ? `   script ${(scriptBytes / 1024).toFixed(0)} KiB on the wire` : ''));
      return { ...marks, scriptBytes };
    };

    console.log(`\nviewer: ${slices}-image 512×512 CT, headless Chromium, loopback, ${runs} runs (fresh context each)`);
    await one('warm-up', false);
    const results = [];
    for (let i = 1; i <= runs; i++) results.push(await one(`run ${i}`, false));
    const phone = await one('phone', true);
    const first = median(results.map((r) => r.first));
    const previews = results.map((r) => r.preview).filter((x) => x !== undefined);
    const loaded = median(results.map((r) => r.loaded));
    console.log('\n| milestone | median | budget |');
    console.log('|---|---|---|');
    if (previews.length) console.log(`| yunying:first-preview (server-rendered slice while the viewer loads) | ${(median(previews) / 1000).toFixed(3)} s | |`);
    console.log(`| yunying:first-image (drawn by the viewer) | ${(first / 1000).toFixed(3)} s | < 1 s ${first < 1000 ? '✓' : '✗'} |`);
    console.log(`| yunying:series-loaded | ${(loaded / 1000).toFixed(3)} s | < 5 s ${loaded < 5000 ? '✓' : '✗'} |`);
    console.log(`| phone stack viewer script (gzip) | ${(phone.scriptBytes / 1024 / 1024).toFixed(2)} MB | < 1.5 MB ${phone.scriptBytes < 1.5 * 1024 * 1024 ? '✓' : '✗'} |`);
  } finally {
    await browser.close();
    await server.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
