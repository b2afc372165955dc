// The doctor pages on a phone (390×844, touch): sign-in and the study list
// as cards with a collapsible search form; no visible controls overlap and
// nothing sticks out sideways.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startYunying, launchBrowser, newContext, artifact, qido, tag } from './lib/harness.mjs';
import { outsideViewport, overlappingElements, shownStudyUids, studiesSettled, submitLogin } from './lib/app.mjs';

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

const CONTROLS = 'button, input, select, a, label, [data-testid="locale-switch"], [data-testid="header-user"]';
const CARD_PARTS = '[data-testid="study-row"] > td, [data-testid="pager"] > *';

async function assertTidy(page, what) {
  const controls = await overlappingElements(page, CONTROLS);
  assert.ok(controls.count > 3, `${what}: controls found`);
  assert.deepEqual(controls.found, [], `${what}: overlapping controls`);
  const parts = await overlappingElements(page, CARD_PARTS);
  assert.deepEqual(parts.found, [], `${what}: overlapping card parts`);
  assert.deepEqual(await outsideViewport(page, `${CONTROLS}, ${CARD_PARTS}`), [], `${what}: wider than the screen`);
  const { scrollWidth, clientWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
  }));
  assert.ok(scrollWidth <= clientWidth, `${what}: page scrolls sideways (${scrollWidth} > ${clientWidth})`);
}

test('phone: sign-in, study cards, the collapsible search form, opening a study', async () => {
  const context = await newContext(browser, { phone: true });
  const page = await context.newPage();
  await page.goto(`${server.base}/`);
  await page.waitForURL((u) => u.pathname === '/login');
  await assertTidy(page, 'sign-in');
  await page.screenshot({ path: artifact('app-phone-login') });
  await submitLogin(page, 'radiologist', server.accounts.radiologist);
  await page.getByTestId('study-list-page').waitFor();
  await studiesSettled(page);
  assert.equal((await shownStudyUids(page)).length, 8);

  // Cards: one column, each row as wide as the list, stacked without overlap.
  const boxes = await page.$$eval('[data-testid="study-row"]', (rows) => rows.map((r) => r.getBoundingClientRect().toJSON()));
  for (const b of boxes) assert.ok(b.width > 300 && b.width <= 390, `card width ${b.width}`);
  for (let i = 1; i < boxes.length; i++) assert.ok(boxes[i].top >= boxes[i - 1].bottom, 'cards stack');
  assert.equal(await page.locator('thead').isVisible(), false, 'no table header on a phone');
  // The search form starts folded: its fields are hidden until asked for.
  assert.equal(await page.getByTestId('search-patient-id').isVisible(), false);
  assert.equal(await page.getByTestId('search-toggle').getAttribute('aria-expanded'), 'false');
  await assertTidy(page, 'study cards');
  await page.screenshot({ path: artifact('app-phone-studies') });
  await page.screenshot({ path: artifact('app-phone-studies-full'), fullPage: true });
  // English is longer: still tidy.
  await page.getByTestId('locale-en').tap();
  await page.getByTestId('search-toggle').filter({ hasText: 'Filters' }).waitFor();
  await assertTidy(page, 'study cards in English');
  await page.screenshot({ path: artifact('app-phone-studies-english') });
  await page.getByTestId('locale-zh-CN').tap();

  await page.getByTestId('search-toggle').click();
  await page.getByTestId('search-patient-id').waitFor();
  assert.equal(await page.getByTestId('search-toggle').getAttribute('aria-expanded'), 'true');
  assert.ok(await page.getByTestId('search-sort').isVisible(), 'sorting is offered in the form on a phone');
  await assertTidy(page, 'search form open');
  await page.screenshot({ path: artifact('app-phone-search-open'), fullPage: true });

  // Search from the phone form: it folds again and says a filter is on.
  const expected = await qido(context, server.base, 'studies?ModalitiesInStudy=DX&limit=100');
  await page.getByTestId('modality-DX').tap();
  await page.waitForURL((u) => u.searchParams.get('mod') === 'DX');
  assert.deepEqual((await shownStudyUids(page)).sort(), expected.map((s) => tag(s, '0020000D')).sort());
  await page.getByTestId('search-submit').tap();
  await page.getByTestId('search-patient-id').waitFor({ state: 'hidden' });
  assert.match(await page.getByTestId('search-toggle').textContent(), /筛选（1）/);

  // The sort select (no column headers here).
  await page.getByTestId('search-toggle').tap();
  await page.getByTestId('search-sort').selectOption('PatientID');
  await page.waitForURL((u) => u.searchParams.get('sort') === 'PatientID');
  await studiesSettled(page);
  const ids = await page.getByTestId('study-patient-id').allTextContents();
  assert.deepEqual(ids, [...ids].sort());

  // A tap on a card opens the study.
  const first = page.getByTestId('study-row').first();
  const uid = await first.getAttribute('data-study-uid');
  await first.locator('td.col-description').tap();
  await page.waitForURL((u) => u.pathname === '/viewer');
  assert.equal(new URL(page.url()).searchParams.get('StudyInstanceUIDs'), uid);
  await context.close();
});

test('phone: the enrolment page of an administrator fits the screen', async () => {
  const context = await newContext(browser, { phone: true });
  const page = await context.newPage();
  await page.goto(`${server.base}/login`);
  await submitLogin(page, 'auditadmin', server.accounts.auditadmin);
  await page.getByTestId('totp-qr').waitFor();
  await assertTidy(page, 'enrolment');
  await page.screenshot({ path: artifact('app-phone-totp'), fullPage: true });
  await context.close();
});

test('tablet and small laptop widths: the list fits without sideways scrolling', async () => {
  for (const width of [1024, 800]) {
    const context = await newContext(browser, { viewport: { width, height: 768 } });
    const page = await context.newPage();
    await page.goto(`${server.base}/login`);
    await submitLogin(page, 'radiologist', server.accounts.radiologist);
    await page.getByTestId('study-list-page').waitFor();
    await studiesSettled(page);
    await assertTidy(page, `${width}px`);
    const [scrollWidth, clientWidth] = await page.evaluate(() => {
      const t = document.querySelector('.table-scroll');
      return [t.scrollWidth, t.clientWidth];
    });
    assert.ok(scrollWidth <= clientWidth, `${width}px: the table scrolls sideways (${scrollWidth} > ${clientWidth})`);
    await page.screenshot({ path: artifact(`app-studies-${width}`) });
    await context.close();
  }
});
