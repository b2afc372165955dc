// An administrator's second factor through the UI: `secadmin` must enrol
// TOTP at first sign-in (nothing else is reachable before), scans the QR
// code / reads the key, confirms with a code computed here per RFC 6238, and
// from then on signs in with password + code; wrong codes are refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startYunying, launchBrowser, newContext, artifact, watchErrors } from './lib/harness.mjs';
import { loadQrEncoder, msToNextStep, submitLogin, totp } from './lib/app.mjs';

let server;
let browser;
/** The security administrator's signed-in context, once enrolled (for the next test). */
let adminContext;

before(async () => {
  server = await startYunying({ demoStudies: 8, demoSlices: 8 });
  browser = await launchBrowser();
});

after(async () => {
  await adminContext?.close();
  await browser?.close();
  await server?.stop();
});

/** A six-digit code that is not valid now (nor in the steps either side). */
function wrongCode(secret) {
  const valid = new Set([-30_000, 0, 30_000].map((d) => totp(secret, Date.now() + d)));
  for (let i = 0; ; i++) {
    const c = String((123456 + i * 111_111) % 1_000_000).padStart(6, '0');
    if (!valid.has(c)) return c;
  }
}

test('secadmin enrols TOTP through the UI, then signs in with password and code', async () => {
  const context = await newContext(browser);
  const page = await context.newPage();
  const errors = watchErrors(page);
  const password = server.accounts.secadmin;

  // First sign-in: the password alone, then the enrolment before anything else.
  await page.goto(`${server.base}/login`);
  await submitLogin(page, 'secadmin', password);
  await page.getByTestId('totp-enrolment').waitFor();
  assert.equal(await page.getByTestId('pending-steps').getAttribute('data-step'), 'enrol-second-factor');
  assert.equal(await page.getByTestId('study-list-page').count(), 0, 'no list before the second factor');
  const secretBox = page.getByTestId('totp-secret');
  await secretBox.waitFor();
  const secret = await secretBox.getAttribute('data-secret');
  assert.match(secret, /^[A-Z2-7]{16,}$/);
  assert.equal((await secretBox.textContent()).replace(/ /g, ''), secret, 'the key is shown in groups');
  assert.match(await secretBox.textContent(), /^([A-Z2-7]{4} )+[A-Z2-7]{1,4}$/);

  // The QR code is the otpauth URI, module for module.
  const uri = await page.getByTestId('totp-uri').textContent();
  assert.ok(uri.startsWith('otpauth://totp/') && uri.includes(`secret=${secret}`), uri);
  const { encodeQr } = await loadQrEncoder();
  const expected = encodeQr(uri);
  const drawn = await page.evaluate(() => {
    const svg = document.querySelector('[data-testid="totp-qr"]');
    const d = svg.querySelector('path').getAttribute('d');
    return { viewBox: svg.getAttribute('viewBox'), cells: [...d.matchAll(/M(\d+) (\d+)/g)].map((m) => [Number(m[1]) - 4, Number(m[2]) - 4]) };
  });
  assert.equal(drawn.viewBox, `0 0 ${expected.size + 8} ${expected.size + 8}`);
  const dark = [];
  expected.modules.forEach((row, y) => row.forEach((on, x) => on && dark.push([x, y])));
  assert.deepEqual(drawn.cells, dark);
  await page.screenshot({ path: artifact('app-totp-enrolment') });

  // Other pages are refused by the server meanwhile.
  const blocked = await context.request.get(`${server.base}/api/institutions`);
  assert.equal(blocked.status(), 403);

  // A wrong code is refused; the right one finishes the enrolment.
  await page.getByTestId('totp-code').fill(wrongCode(secret));
  await page.getByTestId('totp-confirm').click();
  await page.getByTestId('totp-error').waitFor();
  assert.match(await page.getByTestId('totp-error').textContent(), /验证码错误/);
  if (msToNextStep() < 3000) await page.waitForTimeout(msToNextStep() + 200);
  await page.getByTestId('totp-code').fill(totp(secret));
  await page.getByTestId('totp-confirm').click();
  await page.getByTestId('study-list-page').waitFor();
  assert.equal(await page.getByTestId('pending-steps').count(), 0);
  const me = await (await context.request.get(`${server.base}/api/auth/me`)).json();
  assert.deepEqual(me.pending, []);

  // Sign out; the password alone is not enough any more.
  await page.getByTestId('logout').click();
  await page.waitForURL((u) => u.pathname === '/login');
  await submitLogin(page, 'secadmin', password);
  await page.getByTestId('login-code').waitFor();
  assert.equal(await page.getByTestId('login-form').getAttribute('data-stage'), 'code');
  assert.equal(await page.getByTestId('login-error').count(), 0, 'asking for the code is not an error');
  await page.screenshot({ path: artifact('app-totp-code-prompt') });

  // A wrong code: refused, no session.
  await page.getByTestId('login-code').fill(wrongCode(secret));
  await page.getByTestId('login-submit').click();
  await page.getByTestId('login-error').waitFor();
  assert.equal(await page.getByTestId('login-error').getAttribute('data-kind'), 'code-invalid');
  assert.match(await page.getByTestId('login-error').textContent(), /验证码错误或已使用/);
  assert.equal((await context.request.get(`${server.base}/api/auth/me`)).status(), 401);
  assert.equal(new URL(page.url()).pathname, '/login');

  // The code used for the enrolment cannot be used again: wait for the next step.
  await page.waitForTimeout(msToNextStep() + 500);
  await page.getByTestId('login-code').fill(totp(secret));
  await page.getByTestId('login-submit').click();
  await page.getByTestId('study-list-page').waitFor();
  const after2 = await (await context.request.get(`${server.base}/api/auth/me`)).json();
  assert.equal(after2.id, 'user:secadmin');
  // An administrator sees no patient data: the page says so instead of a list.
  await page.getByTestId('admin-notice').waitFor();
  assert.equal(await page.getByTestId('study-row').count(), 0);
  await page.screenshot({ path: artifact('app-totp-admin-signed-in') });
  assert.deepEqual(errors.filter((e) => !/status of (401|403|400)/.test(e)), []);
  adminContext = context;
});

test('a temporary password must be changed before anything else', async (t) => {
  if (!adminContext) {
    t.skip('needs the enrolled security administrator of the previous test');
    return;
  }
  // The security administrator creates an account with a temporary password.
  const csrf = (await adminContext.cookies()).find((c) => c.name === 'yy_csrf').value;
  const temporary = 'Temp-Pass-2468';
  const created = await adminContext.request.post(`${server.base}/api/users`, {
    headers: { 'X-CSRF-Token': csrf },
    data: { username: 'nurse1', display_name: '护士 一', institution: 'GLZXWSY', roles: ['clinician'], password: temporary, temporary: true },
  });
  assert.equal(created.status(), 201, await created.text());

  const context = await newContext(browser);
  const page = await context.newPage();
  await page.goto(`${server.base}/login`);
  await submitLogin(page, 'nurse1', temporary);
  await page.getByTestId('password-change').waitFor();
  assert.equal(await page.getByTestId('pending-steps').getAttribute('data-step'), 'change-password');
  assert.equal(await page.getByTestId('study-list-page').count(), 0);

  const fill = async (current, next, again) => {
    await page.getByTestId('password-current').fill(current);
    await page.getByTestId('password-new').fill(next);
    await page.getByTestId('password-again').fill(again);
    await page.getByTestId('password-submit').click();
  };
  // The two new passwords differ: caught here.
  await fill(temporary, 'Brand-New-Pass-97', 'Brand-New-Pass-98');
  assert.match(await page.getByTestId('password-error').textContent(), /两次输入的新密码不一致/);
  // The current password is wrong: the server refuses.
  await fill('Not-The-Current-1', 'Brand-New-Pass-97', 'Brand-New-Pass-97');
  await page.getByTestId('password-error').filter({ hasText: '当前密码错误' }).waitFor();
  // Too weak: the server's reason, in Chinese only.
  await fill(temporary, 'short', 'short');
  await page.getByTestId('password-error').filter({ hasNotText: '当前密码错误' }).waitFor();
  const reason = await page.getByTestId('password-error').textContent();
  assert.match(reason, /[\u4e00-\u9fff]/, reason);
  assert.ok(!reason.includes(' / '), `one language only: ${reason}`);
  await page.screenshot({ path: artifact('app-password-change') });
  // A good one: on to the list, and the new password works from now on.
  await fill(temporary, 'Brand-New-Pass-97', 'Brand-New-Pass-97');
  await page.getByTestId('study-list-page').waitFor();
  assert.deepEqual((await (await context.request.get(`${server.base}/api/auth/me`)).json()).pending, []);
  await page.getByTestId('logout').click();
  await page.waitForURL((u) => u.pathname === '/login');
  await submitLogin(page, 'nurse1', 'Brand-New-Pass-97');
  await page.getByTestId('study-list-page').waitFor();
  assert.equal(await page.getByTestId('pending-steps').count(), 0);
  await context.close();
});
