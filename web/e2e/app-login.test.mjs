// Signing in and out through the real pages: strangers go to /login, a
// wrong password is refused and changes nothing, the right one lands on the
// study list (or on `next`), the language switch, signing out, and an
// ended session sending the user back to sign-in with a message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startYunying, launchBrowser, newContext, artifact, watchErrors } from './lib/harness.mjs';
import { submitLogin, studiesSettled } from './lib/app.mjs';

let server;
let browser;

before(async () => {
  server = await startYunying({ demoStudies: 8, demoSlices: 8 });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Page errors other than the 401s of asking who is signed in. */
function realErrors(errors) {
  return errors.filter((e) => !/status of 401/.test(e));
}

test('an unauthenticated visit to / goes to /login', async () => {
  const context = await newContext(browser);
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${server.base}/`);
  await page.waitForURL((u) => u.pathname === '/login');
  await page.getByTestId('login-form').waitFor();
  // A deep link keeps where it was going.
  await page.goto(`${server.base}/?pid=P000123&sort=PatientName`);
  await page.waitForURL((u) => u.pathname === '/login');
  assert.equal(new URL(page.url()).searchParams.get('next'), '/?pid=P000123&sort=PatientName');
  await page.screenshot({ path: artifact('app-login-form') });
  assert.deepEqual(realErrors(errors), []);
  await context.close();
});

test('a wrong password is refused and changes nothing; the right one lands on the list', async () => {
  const context = await newContext(browser);
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${server.base}/login?next=${encodeURIComponent('/?pid=P000123')}`);
  await submitLogin(page, 'radiologist', 'not-the-password');
  const error = page.getByTestId('login-error');
  await error.waitFor();
  assert.match(await error.textContent(), /用户名或密码错误/);
  assert.equal(await error.getAttribute('data-kind'), 'invalid');
  assert.equal(new URL(page.url()).pathname, '/login');
  assert.equal(await page.getByTestId('login-password').inputValue(), '', 'the wrong password is cleared');
  const cookies = await context.cookies();
  assert.ok(!cookies.some((c) => c.name === 'yy_session'), 'no session after a wrong password');
  const me = await context.request.get(`${server.base}/api/auth/me`);
  assert.equal(me.status(), 401);
  await page.screenshot({ path: artifact('app-login-wrong-password') });

  // Empty fields are caught before asking the server.
  await page.getByTestId('login-username').fill('');
  await page.getByTestId('login-submit').click();
  assert.equal(await page.getByTestId('login-error').getAttribute('data-kind'), 'form');

  await submitLogin(page, 'radiologist', server.accounts.radiologist);
  await page.getByTestId('study-list-page').waitFor();
  const url = new URL(page.url());
  assert.equal(url.pathname, '/');
  assert.equal(url.searchParams.get('pid'), 'P000123', 'went on to next');
  assert.equal(await page.getByTestId('search-patient-id').inputValue(), 'P000123');
  assert.equal(await page.getByTestId('header-user-name').textContent(), '会诊中心 放射科医师');
  assert.match(await page.getByTestId('header-user-institution').textContent(), /嵊州市人民医院/);
  assert.deepEqual(realErrors(errors), []);
  await context.close();
});

test('the language switch changes the sign-in page and the header', async () => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await page.goto(`${server.base}/login`);
  assert.equal(await page.getByTestId('login-submit').textContent(), '登录');
  await page.getByTestId('locale-en').click();
  assert.equal(await page.getByTestId('login-submit').textContent(), 'Sign in');
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
  await submitLogin(page, 'radiologist', 'wrong-password-1');
  assert.match(await page.getByTestId('login-error').textContent(), /Wrong user name or password/);
  await page.screenshot({ path: artifact('app-login-english') });
  await submitLogin(page, 'radiologist', server.accounts.radiologist);
  await page.getByTestId('study-list-page').waitFor();
  await studiesSettled(page);
  // The choice is kept: the list comes up in English.
  assert.equal(await page.getByTestId('logout').textContent(), 'Sign out');
  assert.match(await page.getByTestId('sort-PatientName').textContent(), /Patient/);
  assert.match(await page.getByTestId('header-user-institution').textContent(), /Shengzhou People's Hospital/);
  await page.getByTestId('locale-zh-CN').click();
  assert.equal(await page.getByTestId('logout').textContent(), '退出登录');
  assert.match(await page.getByTestId('sort-PatientName').textContent(), /患者姓名/);
  await context.close();
});

test('signing out ends the session; a session ended elsewhere returns to sign-in with a message', async () => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await page.goto(`${server.base}/login`);
  await submitLogin(page, 'doctor', server.accounts.doctor);
  await page.getByTestId('study-list-page').waitFor();
  await page.getByTestId('logout').click();
  await page.waitForURL((u) => u.pathname === '/login');
  await page.getByTestId('login-notice').waitFor();
  assert.equal((await context.request.get(`${server.base}/api/auth/me`)).status(), 401);
  await page.goto(`${server.base}/`);
  await page.waitForURL((u) => u.pathname === '/login');

  // Signed in again, then the session ends under the page (signed out from
  // another tab): the next search returns to sign-in and says why.
  await submitLogin(page, 'doctor', server.accounts.doctor);
  await page.getByTestId('study-list-page').waitFor();
  await studiesSettled(page);
  const r = await context.request.post(`${server.base}/api/auth/logout`, {
    headers: { 'X-CSRF-Token': (await context.cookies()).find((c) => c.name === 'yy_csrf').value },
  });
  assert.equal(r.status(), 200);
  // The cookies are gone with that answer; the page still thinks it is signed in.
  await page.getByTestId('search-patient-id').fill('P000123');
  await page.getByTestId('search-submit').click();
  await page.waitForURL((u) => u.pathname === '/login' && u.searchParams.get('reason') === 'expired');
  assert.match(await page.getByTestId('login-notice').textContent(), /登录已过期/);
  assert.equal(new URL(page.url()).searchParams.get('next'), '/?pid=P000123');
  await page.screenshot({ path: artifact('app-login-expired') });
  await context.close();
});

test('repeated wrong passwords lock the account and the form says until when', async () => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await page.goto(`${server.base}/login`);
  let kind = null;
  const statuses = [];
  for (let i = 0; i < 10 && kind !== 'locked'; i++) {
    const answered = page.waitForResponse((r) => r.url().endsWith('/api/auth/login'));
    await submitLogin(page, 'sysadmin', `wrong-password-${i}`);
    statuses.push((await answered).status());
    await page.waitForFunction(() => document.querySelector('[data-testid="login-submit"]')?.disabled === false);
    kind = await page.getByTestId('login-error').getAttribute('data-kind');
  }
  assert.equal(statuses.at(-1), 423, statuses.join(','));
  assert.equal(kind, 'locked');
  const text = await page.getByTestId('login-error').textContent();
  assert.match(text, /账户因多次登录失败已锁定，请于 \d{2}:\d{2} 后再试/);
  // Even the right password is refused while locked.
  const answered = page.waitForResponse((r) => r.url().endsWith('/api/auth/login'));
  await submitLogin(page, 'sysadmin', server.accounts.sysadmin);
  assert.equal((await answered).status(), 423);
  await page.waitForFunction(() => document.querySelector('[data-testid="login-submit"]')?.disabled === false);
  assert.equal(await page.getByTestId('login-error').getAttribute('data-kind'), 'locked');
  assert.equal(new URL(page.url()).pathname, '/login');
  await page.screenshot({ path: artifact('app-login-locked') });
  await context.close();
});

// Last in this file: it uses up the sign-in attempts of this address.
test('too many attempts: the 429 answer is explained with the wait', async () => {
  const context = await newContext(browser);
  let limited = null;
  for (let i = 0; i < 200 && !limited; i++) {
    const r = await context.request.post(`${server.base}/api/auth/login`, { data: { username: 'nobody', password: 'x' } });
    if (r.status() === 429) limited = r;
  }
  assert.ok(limited, 'the server limits sign-in attempts');
  const page = await context.newPage();
  await page.goto(`${server.base}/login`);
  await submitLogin(page, 'radiologist', server.accounts.radiologist);
  await page.getByTestId('login-error').waitFor();
  assert.equal(await page.getByTestId('login-error').getAttribute('data-kind'), 'rate-limited');
  assert.match(await page.getByTestId('login-error').textContent(), /尝试过于频繁，请 \d+ 秒后再试/);
  assert.equal(new URL(page.url()).pathname, '/login');
  await context.close();
});
