// The study list against the real server and its demo studies: what it
// shows equals what QIDO-RS answers for the same search (patient ID,
// modality, institution, dates), thumbnails load, column sorting, paging,
// the URL keeping the search, English labels, a township doctor's scope,
// and opening a study in the viewer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startYunying, launchBrowser, newContext, artifact, watchErrors, qido, tag } from './lib/harness.mjs';
import { alphabeticName, shownStudyUids, signInViaForm, studiesSettled } from './lib/app.mjs';

let server;
let browser;
let context;
/** What this binary supports of the study-list extensions (asked directly). */
const supports = { orderby: false, institution: false, totalCount: false };

before(async () => {
  server = await startYunying({ demoStudies: 8, demoSlices: 8 });
  browser = await launchBrowser();
  context = await newContext(browser);
  const page = await context.newPage();
  await signInViaForm(page, server.base, 'radiologist', server.accounts.radiologist);
  await page.close();
  const probe = await context.request.get(`${server.base}/dicom-web/studies?orderby=PatientName&limit=2`, {
    headers: { accept: 'application/dicom+json' },
  });
  const warning = probe.headers()['warning'] ?? '';
  supports.orderby = probe.status() === 200 && !/orderby/i.test(warning);
  supports.totalCount = /^\d+$/.test(probe.headers()['x-total-count'] ?? '');
  const inst = await context.request.get(`${server.base}/dicom-web/studies?institution=GLZXWSY&limit=2`, {
    headers: { accept: 'application/dicom+json' },
  });
  supports.institution = inst.status() === 200 && !/institution/i.test(inst.headers()['warning'] ?? '');
  console.log(`server supports: ${JSON.stringify(supports)}`);
});

after(async () => {
  await context?.close();
  await browser?.close();
  await server?.stop();
});

const uidsOf = (studies) => studies.map((s) => tag(s, '0020000D'));
const sorted = (a) => [...a].sort();

async function openList(query = '') {
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${server.base}/${query}`);
  await page.getByTestId('study-list-page').waitFor();
  await studiesSettled(page);
  return { page, errors };
}

test('the list shows every demo study with a thumbnail that loads', async () => {
  const all = await qido(context, server.base, 'studies?limit=100&includefield=InstitutionName');
  assert.equal(all.length, 8);
  const { page, errors } = await openList();
  const shown = await shownStudyUids(page);
  assert.deepEqual(sorted(shown), sorted(uidsOf(all)));
  if (supports.orderby) {
    const newest = await qido(context, server.base, 'studies?limit=100&orderby=-StudyDate');
    assert.deepEqual(shown, uidsOf(newest), 'newest first');
  }
  // Every row's facts are the server's.
  for (const s of all) {
    const row = page.locator(`[data-testid="study-row"][data-study-uid="${tag(s, '0020000D')}"]`);
    assert.equal((await row.getByTestId('study-patient-id').textContent()).trim(), tag(s, '00100020'));
    assert.equal((await row.getByTestId('study-accession').textContent()).trim(), tag(s, '00080050'));
    const da = tag(s, '00080020');
    assert.match(await row.getByTestId('study-date').textContent(), new RegExp(`${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6, 8)}`));
    assert.equal((await row.getByTestId('study-institution').textContent()).trim(), tag(s, '00080080'));
    const ideographic = s['00100010'].Value[0].Ideographic ?? '';
    if (ideographic) assert.equal(await row.getByTestId('study-patient-name').textContent(), ideographic.replace('^', ''));
  }
  // Thumbnails: lazy, so bring each into view, then all must have decoded.
  for (const img of await page.getByTestId('study-thumb').all()) await img.scrollIntoViewIfNeeded();
  await page.waitForFunction(
    () => {
      const imgs = [...document.querySelectorAll('[data-testid="study-thumb"]')];
      return imgs.length === 8 && imgs.every((i) => i.complete && i.naturalWidth > 0);
    },
    null,
    { timeout: 30_000 },
  );
  const sizes = await page.$$eval('[data-testid="study-thumb"]', (imgs) => imgs.map((i) => [i.naturalWidth, i.naturalHeight]));
  for (const [w, h] of sizes) assert.ok(w > 0 && h > 0 && w <= 96 && h <= 96, `thumbnail ${w}×${h}`);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: artifact('app-studies-desktop'), fullPage: true });
  assert.deepEqual(errors.filter((e) => !/status of 401/.test(e)), []);
  await page.close();
});

test('search by patient ID narrows the list to what QIDO-RS finds; the URL keeps it', async () => {
  // P000123 is the first number of every township centre: several patients share it.
  const expected = await qido(context, server.base, 'studies?PatientID=P000123&limit=100');
  assert.ok(expected.length >= 2 && expected.length < 8, `P000123 studies: ${expected.length}`);
  const { page } = await openList();
  await page.getByTestId('search-patient-id').fill('P000123');
  await page.getByTestId('search-patient-id').press('Enter');
  await page.waitForURL((u) => u.searchParams.get('pid') === 'P000123');
  assert.deepEqual(sorted(await shownStudyUids(page)), sorted(uidsOf(expected)));
  // Reload and back/forward keep the search.
  await page.reload();
  await page.getByTestId('study-list-page').waitFor();
  assert.deepEqual(sorted(await shownStudyUids(page)), sorted(uidsOf(expected)));
  assert.equal(await page.getByTestId('search-patient-id').inputValue(), 'P000123');
  await page.goBack();
  await page.waitForURL((u) => !u.searchParams.has('pid'));
  assert.equal((await shownStudyUids(page)).length, 8);
  assert.equal(await page.getByTestId('search-patient-id').inputValue(), '');
  await page.goForward();
  await page.waitForURL((u) => u.searchParams.get('pid') === 'P000123');
  assert.deepEqual(sorted(await shownStudyUids(page)), sorted(uidsOf(expected)));
  // A patient name with a wildcard, and one that matches nothing.
  const one = expected[0];
  const family = (one['00100010'].Value[0].Ideographic ?? '').split('^')[0];
  if (family) {
    await page.getByTestId('search-reset').click();
    await page.getByTestId('search-patient-name').fill(family);
    await page.getByTestId('search-submit').click();
    await page.waitForURL((u) => u.searchParams.get('name') === family);
    const byName = await qido(context, server.base, `studies?PatientName=${encodeURIComponent(`${family}*`)}&limit=100`);
    assert.ok(byName.length >= 1);
    assert.deepEqual(sorted(await shownStudyUids(page)), sorted(uidsOf(byName)));
  }
  await page.getByTestId('search-patient-id').fill('NO-SUCH-PATIENT');
  await page.getByTestId('search-submit').click();
  await page.getByTestId('study-empty').waitFor();
  assert.equal(await page.getByTestId('study-row').count(), 0);
  await page.screenshot({ path: artifact('app-studies-empty') });
  // The empty state offers to clear the filters.
  await page.getByTestId('empty-reset').click();
  await page.waitForURL((u) => u.search === '');
  assert.equal((await shownStudyUids(page)).length, 8);
  await page.close();
});

test('the modality filter narrows the list like ModalitiesInStudy', async () => {
  const ct = await qido(context, server.base, 'studies?ModalitiesInStudy=CT&limit=100');
  const ctMr = await qido(context, server.base, `studies?ModalitiesInStudy=${encodeURIComponent('CT\\MR')}&limit=100`);
  assert.ok(ct.length >= 1 && ct.length < 8);
  assert.ok(ctMr.length > ct.length);
  const { page } = await openList();
  await page.getByTestId('modality-CT').click();
  await page.waitForURL((u) => u.searchParams.get('mod') === 'CT');
  const shownCt = await shownStudyUids(page);
  assert.deepEqual(sorted(shownCt), sorted(uidsOf(ct)));
  for (const m of await page.getByTestId('study-modalities').allTextContents()) assert.match(m, /CT/);
  assert.equal(await page.getByTestId('modality-CT').getAttribute('aria-pressed'), 'true');
  await page.getByTestId('modality-MR').click();
  await page.waitForURL((u) => u.searchParams.get('mod') === 'CT,MR');
  assert.deepEqual(sorted(await shownStudyUids(page)), sorted(uidsOf(ctMr)));
  await page.close();
});

test('the institution filter and the date quick picks', async () => {
  const { page } = await openList();
  await page.getByTestId('search-institution').selectOption('GLZXWSY');
  await page.waitForURL((u) => u.searchParams.get('inst') === 'GLZXWSY');
  const expected = supports.institution
    ? await qido(context, server.base, 'studies?institution=GLZXWSY&limit=100')
    : await qido(context, server.base, `studies?InstitutionName=${encodeURIComponent('嵊州市甘霖镇中心卫生院')}&limit=100`);
  assert.ok(expected.length >= 1);
  assert.deepEqual(sorted(await shownStudyUids(page)), sorted(uidsOf(expected)));
  for (const name of await page.getByTestId('study-institution').allTextContents()) assert.equal(name.trim(), '嵊州市甘霖镇中心卫生院');
  await page.getByTestId('search-institution').selectOption('');

  // Last 30 days (local dates): the same range asked of QIDO directly.
  await page.getByTestId('date-pick-30d').click();
  await page.waitForURL((u) => u.searchParams.has('from') && u.searchParams.has('to'));
  const url = new URL(page.url());
  const from = url.searchParams.get('from');
  const to = url.searchParams.get('to');
  const days = (Date.UTC(+to.slice(0, 4), +to.slice(4, 6) - 1, +to.slice(6)) - Date.UTC(+from.slice(0, 4), +from.slice(4, 6) - 1, +from.slice(6))) / 86_400_000;
  assert.equal(days, 29);
  assert.equal(await page.getByTestId('date-pick-30d').getAttribute('aria-pressed'), 'true');
  const inRange = await qido(context, server.base, `studies?StudyDate=${from}-${to}&limit=100`);
  await studiesSettled(page);
  if (inRange.length === 0) await page.getByTestId('study-empty').waitFor();
  assert.deepEqual(sorted(await shownStudyUids(page)), sorted(uidsOf(inRange)));
  // An explicit range covering every demo study.
  await page.getByTestId('search-date-from').fill('2000-01-01');
  await page.getByTestId('search-date-to').fill('2099-12-31');
  await page.getByTestId('search-submit').click();
  await page.waitForURL((u) => u.searchParams.get('from') === '20000101');
  assert.equal((await shownStudyUids(page)).length, 8);
  await page.close();
});

test('clicking a column header sorts by it (QIDO orderby)', async (t) => {
  if (!supports.orderby) {
    t.skip('this server does not know orderby');
    return;
  }
  const { page } = await openList();
  assert.equal(await page.getByTestId('sort-StudyDate').getAttribute('data-sort'), 'descending');
  await page.getByTestId('sort-PatientName').click();
  await page.waitForURL((u) => u.searchParams.get('sort') === 'PatientName');
  const asc = await shownStudyUids(page);
  const expectedAsc = await qido(context, server.base, 'studies?orderby=PatientName&limit=100');
  assert.deepEqual(asc, uidsOf(expectedAsc));
  // Independently of the server: the names really are in order.
  const names = expectedAsc.map(alphabeticName);
  assert.deepEqual(names, [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), 'alphabetic names ascending');
  const uidToName = new Map(expectedAsc.map((s) => [tag(s, '0020000D'), alphabeticName(s)]));
  assert.notDeepEqual(asc, await (async () => uidsOf(await qido(context, server.base, 'studies?orderby=-StudyDate&limit=100')))(), 'the order changed');
  assert.equal(await page.getByTestId('sort-PatientName').getAttribute('data-sort'), 'ascending');
  await page.getByTestId('sort-PatientName').click();
  await page.waitForURL((u) => u.searchParams.get('sort') === '-PatientName');
  const desc = await shownStudyUids(page);
  assert.deepEqual(desc.map((u) => uidToName.get(u)), [...names].reverse());
  assert.equal(await page.getByTestId('sort-PatientName').getAttribute('data-sort'), 'descending');
  // Patient ID ascending.
  await page.getByTestId('sort-PatientID').click();
  await page.waitForURL((u) => u.searchParams.get('sort') === 'PatientID');
  await studiesSettled(page);
  const ids = await page.getByTestId('study-patient-id').allTextContents();
  assert.deepEqual(ids, [...ids].sort());
  await page.screenshot({ path: artifact('app-studies-sorted') });
  await page.close();
});

test('paging with a small page size', async () => {
  const { page } = await openList('?size=3');
  const seen = [];
  const page1 = await shownStudyUids(page);
  assert.equal(page1.length, 3);
  seen.push(...page1);
  if (supports.totalCount) {
    assert.match(await page.getByTestId('page-label').textContent(), /第 1 \/ 3 页/);
    assert.match(await page.getByTestId('pager-summary').textContent(), /共 8 项检查/);
  }
  assert.ok(await page.getByTestId('page-prev').isDisabled());
  await page.getByTestId('page-next').click();
  await page.waitForURL((u) => u.searchParams.get('page') === '2');
  const page2 = await shownStudyUids(page);
  assert.equal(page2.length, 3);
  if (supports.orderby) {
    const expected = await qido(context, server.base, 'studies?orderby=-StudyDate&limit=3&offset=3');
    assert.deepEqual(page2, uidsOf(expected));
  }
  seen.push(...page2);
  await page.getByTestId('page-next').click();
  await page.waitForURL((u) => u.searchParams.get('page') === '3');
  const page3 = await shownStudyUids(page);
  assert.equal(page3.length, 2);
  seen.push(...page3);
  assert.ok(await page.getByTestId('page-next').isDisabled(), 'no page after the last');
  assert.equal(new Set(seen).size, 8, 'the pages together show every study once');
  // Back returns to page 2; the page size select changes the size and restarts at page 1.
  await page.goBack();
  await page.waitForURL((u) => u.searchParams.get('page') === '2');
  assert.deepEqual(await shownStudyUids(page), page2);
  await page.getByTestId('page-size').selectOption('25');
  await page.waitForURL((u) => !u.searchParams.has('page') && !u.searchParams.has('size'));
  assert.equal((await shownStudyUids(page)).length, 8);
  await page.close();
});

test('the English switch changes the labels and institution names', async () => {
  const { page } = await openList();
  await page.getByTestId('locale-en').click();
  assert.match(await page.getByTestId('sort-PatientName').textContent(), /^Patient/);
  assert.match(await page.getByTestId('sort-StudyDate').textContent(), /^Study date/);
  assert.equal(await page.getByTestId('search-submit').textContent(), 'Search');
  assert.equal(await page.getByTestId('logout').textContent(), 'Sign out');
  const institutions = await page.getByTestId('study-institution').allTextContents();
  assert.ok(institutions.includes("Shengzhou People's Hospital"), institutions.join(' | '));
  // Latin names first in English.
  const names = await page.getByTestId('study-patient-name').allTextContents();
  assert.ok(names.every((n) => /^[A-Za-z ]+$/.test(n)), names.join(' | '));
  await page.screenshot({ path: artifact('app-studies-english') });
  await page.getByTestId('locale-zh-CN').click();
  assert.equal(await page.getByTestId('search-submit').textContent(), '查询');
  await page.close();
});

test('a township doctor sees only the studies of their institution', async () => {
  const doctor = await newContext(browser);
  const page = await doctor.newPage();
  await signInViaForm(page, server.base, 'doctor', server.accounts.doctor);
  const theirs = await qido(doctor, server.base, 'studies?limit=100&includefield=InstitutionName');
  const all = await qido(context, server.base, 'studies?limit=100&includefield=InstitutionName');
  const clinic = all.filter((s) => tag(s, '00080080') === '嵊州市甘霖镇中心卫生院');
  assert.ok(clinic.length >= 1 && clinic.length < all.length);
  assert.deepEqual(sorted(uidsOf(theirs)), sorted(uidsOf(clinic)), 'the server scopes the doctor');
  assert.deepEqual(sorted(await shownStudyUids(page)), sorted(uidsOf(clinic)));
  for (const name of await page.getByTestId('study-institution').allTextContents()) assert.equal(name.trim(), '嵊州市甘霖镇中心卫生院');
  assert.match(await page.getByTestId('header-user-institution').textContent(), /嵊州市甘霖镇中心卫生院/);
  assert.equal(await page.getByTestId('search-institution').count(), 0, 'no institution filter for one institution');
  await page.screenshot({ path: artifact('app-studies-doctor') });
  await doctor.close();
});

test('a click or Enter on a study opens /viewer?StudyInstanceUIDs=…', async () => {
  const { page } = await openList();
  const rows = page.getByTestId('study-row');
  const uid = await rows.first().getAttribute('data-study-uid');
  assert.equal(await rows.first().getByTestId('study-open').getAttribute('href'), `/viewer?StudyInstanceUIDs=${uid}`);
  await rows.first().locator('td.col-description').click();
  await page.waitForURL((u) => u.pathname === '/viewer');
  assert.equal(new URL(page.url()).searchParams.get('StudyInstanceUIDs'), uid);
  await page.goBack();
  await page.getByTestId('study-list-page').waitFor();
  await studiesSettled(page);
  // Keyboard: Tab to a row, Enter opens it.
  const second = rows.nth(1);
  const uid2 = await second.getAttribute('data-study-uid');
  await second.focus();
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.pathname === '/viewer');
  assert.equal(new URL(page.url()).searchParams.get('StudyInstanceUIDs'), uid2);
  await page.goBack();
  await page.getByTestId('study-list-page').waitFor();
  // The patient-name link.
  await rows.nth(2).getByTestId('study-open').click();
  await page.waitForURL((u) => u.pathname === '/viewer');
  await page.close();
});
