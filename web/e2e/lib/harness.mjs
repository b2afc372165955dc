// Browser-test harness: starts the real `yunying serve` (demo data, fresh
// data directory, free ports), launches Debian's Chromium through
// playwright-core, signs in through the real login API, and keeps
// screenshots under e2e/artifacts/ as test artefacts.
//
// Environment:
//   YUNYING_BIN        the binary under test (default: $CARGO_TARGET_DIR or ../target, debug build)
//   YUNYING_WEB_DIR    serve the web app from this directory instead of the
//                      copy embedded in the binary (development)
//   CHROMIUM           the browser (default /usr/bin/chromium)
//   YUNYING_E2E_ARTIFACTS  where screenshots go (default e2e/artifacts)
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const webRoot = path.resolve(here, '..', '..');
const repoRoot = path.resolve(webRoot, '..');

export function yunyingBin() {
  if (process.env.YUNYING_BIN) return process.env.YUNYING_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? path.join(repoRoot, 'target');
  return path.join(target, 'debug', 'yunying');
}

export const artifactsDir = process.env.YUNYING_E2E_ARTIFACTS ?? path.join(webRoot, 'e2e', 'artifacts');

/** Path of a screenshot artefact (the directory is created). */
export function artifact(name) {
  mkdirSync(artifactsDir, { recursive: true });
  return path.join(artifactsDir, name.endsWith('.png') ? name : `${name}.png`);
}

/**
 * Starts `yunying serve --demo` on free ports with a fresh data directory
 * (or the given `data` directory, which is kept).
 * Resolves once /healthz answers 200 (demo data loaded).
 * Returns { base, data, accounts: { username: password }, stop() }.
 */
export async function startYunying({ demoStudies = 2, demoSlices = 120, extraArgs = [], env = {}, data: existing } = {}) {
  const bin = yunyingBin();
  if (!existsSync(bin)) throw new Error(`yunying binary not found at ${bin} (set YUNYING_BIN or build it)`);
  // A given data directory is the caller's (kept); otherwise a fresh one, removed on stop.
  const tmp = existing ? null : mkdtempSync(path.join(tmpdir(), 'yunying-e2e-'));
  const data = existing ?? path.join(tmp, 'data');
  const args = ['serve', '--http', '127.0.0.1:0', '--dicom', '127.0.0.1:0', '--data', data,
    '--demo', '--demo-studies', String(demoStudies), '--demo-slices', String(demoSlices), ...extraArgs];
  const child = spawn(bin, args, {
    env: { ...process.env, YUNYING_LOG: process.env.YUNYING_TEST_LOG ?? 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let base = null;
  let out = '';
  const listening = new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/yunying: listening on (http\S+)/);
      if (m && !base) { base = m[1]; resolve(base); }
    });
    child.on('exit', (code) => reject(new Error(`yunying exited (${code}) before listening:\n${out}`)));
  });
  await withTimeout(listening, 60_000, 'yunying did not print its address');
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      const r = await fetch(`${base}/healthz`);
      if (r.status === 200) break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`yunying did not become healthy:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const accounts = {};
  for (const line of readFileSync(path.join(data, 'demo-accounts.txt'), 'utf8').split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [user, password] = line.split('\t');
    accounts[user] = password;
  }
  return {
    base,
    data,
    accounts,
    output: () => out,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await withTimeout(new Promise((r) => child.once('exit', r)), 20_000, 'yunying did not stop').catch(() => child.kill('SIGKILL'));
      }
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** Debian's Chromium, headless, with the flags this closed network needs. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist'],
  });
}

/** Desktop (1440×900) or phone (390×844, DPR 3, touch) browser context. */
export async function newContext(browser, { phone = false, viewport, locale = 'zh-CN' } = {}) {
  const opts = phone
    ? { viewport: viewport ?? { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true, locale,
        userAgent: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Mobile Safari/537.36' }
    : { viewport: viewport ?? { width: 1440, height: 900 }, locale };
  const context = await browser.newContext(opts);
  return context;
}

/** Signs a context in through POST /api/auth/login (session and CSRF cookies). */
export async function signIn(context, base, username, password) {
  const r = await context.request.post(`${base}/api/auth/login`, { data: { username, password } });
  if (!r.ok()) throw new Error(`sign-in of ${username} failed: ${r.status()} ${await r.text()}`);
  return r.json();
}

/** QIDO-RS through the signed-in context. */
export async function qido(context, base, pathAndQuery) {
  const r = await context.request.get(`${base}/dicom-web/${pathAndQuery}`, { headers: { accept: 'application/dicom+json' } });
  if (!r.ok()) throw new Error(`QIDO ${pathAndQuery}: ${r.status()}`);
  return r.status() === 204 ? [] : r.json();
}

/** The value of a DICOM JSON attribute (first value). */
export function tag(obj, t) {
  const v = obj?.[t]?.Value?.[0];
  return v && typeof v === 'object' && 'Alphabetic' in v ? v.Alphabetic : v;
}

/**
 * Pixel statistics of what a viewport shows: reads the 2D canvas inside the
 * element with the given data-testid (Cornerstone copies each render there).
 * Returns { width, height, mean, std, nonBlank (fraction of pixels > 8), hash }.
 */
export async function viewportPixels(page, testId) {
  return page.evaluate((id) => {
    const el = document.querySelector(`[data-testid="${id}"]`);
    if (!el) throw new Error(`no element [data-testid=${id}]`);
    const canvas = el.querySelector('canvas');
    if (!canvas) throw new Error(`no canvas in [data-testid=${id}]`);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    const { width, height } = canvas;
    const d = ctx.getImageData(0, 0, width, height).data;
    let sum = 0, sum2 = 0, lit = 0, h = 2166136261;
    const n = width * height;
    for (let i = 0; i < d.length; i += 4) {
      const g = (d[i] + d[i + 1] + d[i + 2]) / 3;
      sum += g; sum2 += g * g;
      if (g > 8) lit++;
      if ((i & 60) === 0) { h ^= d[i]; h = Math.imul(h, 16777619) >>> 0; }
    }
    const mean = sum / n;
    return { width, height, mean, std: Math.sqrt(Math.max(0, sum2 / n - mean * mean)), nonBlank: lit / n, hash: h };
  }, testId);
}

/** Mean absolute difference between two captures of the same viewport (0–255). */
export async function viewportDiff(page, testId, before) {
  return page.evaluate(([id, prev]) => {
    const canvas = document.querySelector(`[data-testid="${id}"] canvas`);
    const d = canvas.getContext('2d', { willReadFrequently: true }).getImageData(0, 0, canvas.width, canvas.height).data;
    let s = 0;
    for (let i = 0; i < d.length; i += 4) s += Math.abs(d[i] - prev[i / 4]);
    return s / (d.length / 4);
  }, [testId, before]);
}

/** The red channel of a viewport's canvas, for viewportDiff. */
export async function viewportSnapshot(page, testId) {
  return page.evaluate((id) => {
    const canvas = document.querySelector(`[data-testid="${id}"] canvas`);
    const d = canvas.getContext('2d', { willReadFrequently: true }).getImageData(0, 0, canvas.width, canvas.height).data;
    const out = new Array(d.length / 4);
    for (let i = 0; i < d.length; i += 4) out[i / 4] = d[i];
    return out;
  }, testId);
}

/** Rejects when the promise takes longer than ms. */
export function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([promise, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timeout: ${what}`)), ms); })])
    .finally(() => clearTimeout(t));
}

/** Collects console errors and page errors of a page (call before navigating). */
export function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  return errors;
}
