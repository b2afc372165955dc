// Helpers of the doctor-page tests (sign-in form, study list): RFC 6238
// TOTP codes, signing in through the real form, reading the study list
// and comparing element boxes for overlaps.
import { createHmac } from 'node:crypto';

/** RFC 4648 base32 → bytes. */
export function base32Decode(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const clean = s.replace(/[\s=]/g, '').toUpperCase();
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of clean) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${c}`);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 TOTP (HMAC-SHA1, 30 s, 6 digits) of a base32 secret at a time (ms). */
export function totp(secretBase32, atMs = Date.now(), { step = 30, digits = 6 } = {}) {
  const counter = Math.floor(atMs / 1000 / step);
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const h = createHmac('sha1', base32Decode(secretBase32)).update(msg).digest();
  const off = h[h.length - 1] & 0x0f;
  const bin = ((h[off] & 0x7f) << 24) | (h[off + 1] << 16) | (h[off + 2] << 8) | h[off + 3];
  return String(bin % 10 ** digits).padStart(digits, '0');
}

/** Milliseconds until the next TOTP step starts. */
export function msToNextStep(step = 30) {
  return step * 1000 - (Date.now() % (step * 1000));
}

/** Fills and submits the sign-in form of a page already on /login. */
export async function submitLogin(page, username, password) {
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
}

/** Signs in through the form (goes to /login first) and waits for the study list. */
export async function signInViaForm(page, base, username, password) {
  await page.goto(`${base}/login`);
  await submitLogin(page, username, password);
  await page.getByTestId('study-list-page').waitFor();
}

/** Waits until the study list shows the answer to the search in the URL. */
export async function studiesSettled(page) {
  await page.waitForFunction(() => {
    const r = document.querySelector('[data-testid="study-results"]');
    return r && r.getAttribute('data-location') === location.search && r.getAttribute('data-state') !== 'loading';
  });
}

/** The study UIDs of the rows shown, in order. */
export async function shownStudyUids(page) {
  await studiesSettled(page);
  return page.$$eval('[data-testid="study-row"]', (rows) => rows.map((r) => r.getAttribute('data-study-uid')));
}

/**
 * Pairs of visible elements matching `selector` whose boxes overlap by more
 * than `slack` px both ways (an element and one inside it do not count).
 * Returns [{a, b}] with a short label of each.
 */
export async function overlappingElements(page, selector, slack = 1) {
  return page.evaluate(([sel, slack]) => {
    const label = (e) =>
      (e.getAttribute('data-testid') || e.getAttribute('aria-label') || e.textContent || e.tagName).trim().replace(/\s+/g, ' ').slice(0, 40);
    const els = [...document.querySelectorAll(sel)].filter((e) => {
      const s = getComputedStyle(e);
      const r = e.getBoundingClientRect();
      return s.visibility !== 'hidden' && s.display !== 'none' && r.width > 0 && r.height > 0 && e.getClientRects().length > 0;
    });
    const boxes = els.map((e) => e.getBoundingClientRect());
    const found = [];
    for (let i = 0; i < els.length; i++) {
      for (let j = i + 1; j < els.length; j++) {
        if (els[i].contains(els[j]) || els[j].contains(els[i])) continue;
        const a = boxes[i];
        const b = boxes[j];
        const ox = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const oy = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (ox > slack && oy > slack) found.push({ a: label(els[i]), b: label(els[j]) });
      }
    }
    return { count: els.length, found };
  }, [selector, slack]);
}

/** Elements matching `selector` that stick out of the viewport's width. */
export async function outsideViewport(page, selector) {
  return page.evaluate((sel) => {
    const w = document.documentElement.clientWidth;
    return [...document.querySelectorAll(sel)]
      .filter((e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden')
      .map((e) => ({ e, r: e.getBoundingClientRect() }))
      .filter(({ r }) => r.width > 0 && (r.left < -1 || r.right > w + 1))
      .map(({ e, r }) => `${e.getAttribute('data-testid') || e.tagName} ${Math.round(r.left)}..${Math.round(r.right)}`);
  }, selector);
}

/** The patient name of a DICOM JSON study (Alphabetic group). */
export function alphabeticName(study) {
  const v = study?.['00100010']?.Value?.[0];
  return v?.Alphabetic ?? '';
}

/** The app's QR encoder (TypeScript), compiled with esbuild for node. */
export async function loadQrEncoder() {
  const { transform } = await import('esbuild');
  const { readFile } = await import('node:fs/promises');
  const src = await readFile(new URL('../../src/app/qr/qrcode.ts', import.meta.url), 'utf8');
  const { code } = await transform(src, { loader: 'ts', format: 'esm', target: 'es2022' });
  return import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);
}

let bundleCount = 0;
/**
 * A module of the app (TypeScript, with its imports) bundled by esbuild for
 * node; each call gives a fresh instance (module state starts anew).
 */
export async function loadAppModule(relativePath) {
  const { build } = await import('esbuild');
  const entry = new URL(`../../src/${relativePath}`, import.meta.url).pathname;
  const out = await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'neutral', target: 'es2022', write: false, logLevel: 'silent' });
  const code = `${out.outputFiles[0].text}\n// instance ${++bundleCount}`;
  return import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);
}
