// The study-search client (src/api/studies.ts) against a scripted server:
// the QIDO query it builds, DICOM JSON parsing, paging by limit+1 or
// X-Total-Count, and how it copes with a server without the `orderby` /
// `institution` extensions (400 or a Warning); plus the URL form of a search
// and the display of names, ages and dates.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { loadAppModule } from './lib/app.mjs';

const realFetch = globalThis.fetch;
afterEach(() => {
  globalThis.fetch = realFetch;
});

/** A scripted fetch: `answer(url)` returns { status, body, headers }; requests are recorded. */
function scriptedServer(answer) {
  const requests = [];
  globalThis.fetch = async (input) => {
    const url = new URL(String(input), 'http://yunying.test');
    requests.push(url);
    const { status = 200, body = [], headers = {} } = answer(url);
    return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/dicom+json', ...headers } });
  };
  return requests;
}

function study(i, { name = `Name${i}^Given`, ideographic = '', date = `202501${String(10 + i)}` } = {}) {
  return {
    '0020000D': { vr: 'UI', Value: [`1.2.3.${i}`] },
    '00100010': { vr: 'PN', Value: [ideographic ? { Alphabetic: name, Ideographic: ideographic } : { Alphabetic: name }] },
    '00100020': { vr: 'LO', Value: [`ID${i}`] },
    '00080020': { vr: 'DA', Value: [date] },
    '00080061': { vr: 'CS', Value: ['CT', 'SR'] },
    '00201206': { vr: 'IS', Value: [2] },
    '00201208': { vr: 'IS', Value: ['40'] },
  };
}

const baseQuery = {
  patientName: '', patientId: '', accession: '', dateFrom: '', dateTo: '', modalities: [], institutions: [],
  sort: { key: 'StudyDate', descending: true }, page: 1, pageSize: 3,
};

test('the QIDO query: matching keys, extensions, limit+1 and offset', async () => {
  const { studyQueryString } = await loadAppModule('api/studies.ts');
  const qs = new URLSearchParams(studyQueryString(
    { ...baseQuery, patientName: '张', patientId: ' P000123 ', dateFrom: '20250101', dateTo: '20250131', modalities: ['CT', 'MR'], institutions: ['A', 'B'], sort: { key: 'PatientName', descending: false }, page: 3 },
    { withOrderBy: true, withInstitution: true, limit: 4 },
  ));
  assert.equal(qs.get('PatientName'), '张*', 'a plain name matches names starting with it');
  assert.equal(qs.get('PatientID'), 'P000123');
  assert.equal(qs.get('StudyDate'), '20250101-20250131');
  assert.equal(qs.get('ModalitiesInStudy'), 'CT\\MR');
  assert.deepEqual(qs.getAll('institution'), ['A', 'B']);
  assert.equal(qs.get('orderby'), 'PatientName');
  assert.equal(qs.get('limit'), '4');
  assert.equal(qs.get('offset'), '6');
  const wild = new URLSearchParams(studyQueryString({ ...baseQuery, patientName: '王?明', dateFrom: '20250101' }, { withOrderBy: false, withInstitution: false, limit: 4 }));
  assert.equal(wild.get('PatientName'), '王?明');
  assert.equal(wild.get('StudyDate'), '20250101-');
  assert.equal(wild.get('orderby'), null);
});

test('a full page plus one means there is a next page; the extra row is not shown', async () => {
  const { searchStudies } = await loadAppModule('api/studies.ts');
  const requests = scriptedServer(() => ({ body: [study(1), study(2), study(3), study(4)] }));
  const page = await searchStudies(baseQuery);
  assert.equal(requests[0].searchParams.get('limit'), '4');
  assert.equal(page.studies.length, 3);
  assert.equal(page.hasNext, true);
  assert.equal(page.total, null);
  assert.equal(page.sortedByServer, true);
  const s = page.studies[0];
  assert.equal(s.studyUid, '1.2.3.1');
  assert.equal(s.patientName.alphabetic, 'Name1^Given');
  assert.deepEqual(s.modalities, ['CT', 'SR']);
  assert.equal(s.numSeries, 2);
  assert.equal(s.numInstances, 40, 'IS given as a string');
  scriptedServer(() => ({ body: [study(1), study(2)] }));
  assert.equal((await searchStudies(baseQuery)).hasNext, false);
});

test('X-Total-Count gives the total and whether a next page exists', async () => {
  const { searchStudies } = await loadAppModule('api/studies.ts');
  scriptedServer(() => ({ body: [study(4), study(5), study(6)], headers: { 'X-Total-Count': '7' } }));
  const p2 = await searchStudies({ ...baseQuery, page: 2 });
  assert.equal(p2.total, 7);
  assert.equal(p2.hasNext, true);
  scriptedServer(() => ({ body: [study(7)], headers: { 'X-Total-Count': '7' } }));
  const p3 = await searchStudies({ ...baseQuery, page: 3 });
  assert.equal(p3.hasNext, false);
});

test('a server that refuses orderby: asked again without it, the page sorted here, and remembered', async () => {
  const { searchStudies } = await loadAppModule('api/studies.ts');
  const requests = scriptedServer((url) =>
    url.searchParams.has('orderby')
      ? { status: 400, body: { error: 'unknown query parameter "orderby": use an attribute keyword (PatientID) or tag (00100020)', status: 400 } }
      : { body: [study(1, { name: 'Zhao^Lei' }), study(2, { name: 'An^Na' }), study(3, { name: 'Li^Si' })] },
  );
  const page = await searchStudies({ ...baseQuery, sort: { key: 'PatientName', descending: false } });
  assert.equal(requests.length, 2);
  assert.equal(page.sortedByServer, false);
  assert.deepEqual(page.studies.map((s) => s.patientName.alphabetic), ['An^Na', 'Li^Si', 'Zhao^Lei']);
  await searchStudies(baseQuery);
  assert.equal(requests.length, 3, 'no second refusal');
  assert.equal(requests[2].searchParams.has('orderby'), false);
});

test('a server that ignores institution (Warning): the institution names are matched instead', async () => {
  const { searchStudies } = await loadAppModule('api/studies.ts');
  const requests = scriptedServer((url) =>
    url.searchParams.has('institution')
      ? { body: [study(1), study(2)], headers: { Warning: '299 yunying "institution: unknown key; ignored"' } }
      : { body: [study(2)] },
  );
  const page = await searchStudies({ ...baseQuery, institutions: ['GLZXWSY', 'CRZXWSY'] }, { institutionNames: ['甘霖', '崇仁'] });
  assert.equal(requests.length, 2);
  assert.equal(requests[1].searchParams.get('InstitutionName'), '甘霖\\崇仁');
  assert.deepEqual(page.studies.map((s) => s.studyUid), ['1.2.3.2']);
});

test('errors reach the caller with their status', async () => {
  const { searchStudies } = await loadAppModule('api/studies.ts');
  scriptedServer(() => ({ status: 401, body: { error: 'not signed in', status: 401 } }));
  await assert.rejects(searchStudies(baseQuery), (e) => e.status === 401 && e.message === 'not signed in');
  scriptedServer(() => ({ status: 400, body: { error: 'StudyDate: "2025" is not a valid Date value', status: 400 } }));
  await assert.rejects(searchStudies(baseQuery), (e) => e.status === 400);
});

test('the search in the URL: round trip, defaults left out, bad values ignored', async () => {
  const { queryFromSearch, searchFromQuery, lastDays } = await loadAppModule('app/studies/searchParams.ts');
  const q = { ...baseQuery, patientName: '张*', patientId: 'P1', dateFrom: '20250101', dateTo: '20250201', modalities: ['CT', 'MR'], institutions: ['A'], sort: { key: 'PatientID', descending: false }, page: 2, pageSize: 50 };
  const search = searchFromQuery(q);
  assert.deepEqual(queryFromSearch(search), { ...q, accession: '' });
  assert.equal(searchFromQuery(queryFromSearch('')), '', 'defaults make an empty query string');
  const bad = queryFromSearch('?from=2025&to=2025-13-99&sort=Nope&page=-1&size=9999&mod=CT,<x>');
  assert.equal(bad.dateFrom, '');
  assert.deepEqual(bad.sort, { key: 'StudyDate', descending: true });
  assert.equal(bad.page, 1);
  assert.equal(bad.pageSize, 25);
  assert.deepEqual(bad.modalities, ['CT']);
  assert.deepEqual(lastDays(7, new Date(2025, 2, 3)), { dateFrom: '20250225', dateTo: '20250303' });
  assert.deepEqual(lastDays(1, new Date(2024, 11, 31)), { dateFrom: '20241231', dateTo: '20241231' });
});

test('names, ages, sex and dates as the list shows them', async () => {
  const f = await loadAppModule('app/studies/format.ts');
  const pn = { alphabetic: 'Chen^Jixiang', ideographic: '陈^吉祥', phonetic: '' };
  assert.deepEqual(f.displayName(pn, 'zh-CN'), { primary: '陈吉祥', secondary: 'Chen Jixiang' });
  assert.deepEqual(f.displayName(pn, 'en'), { primary: 'Chen Jixiang', secondary: '陈吉祥' });
  // A Chinese name stored in the Alphabetic group only.
  assert.deepEqual(f.displayName({ alphabetic: '王^小明', ideographic: '', phonetic: '' }, 'en'), { primary: '王小明', secondary: '' });
  assert.equal(f.formatAge('045Y', '', '', 'zh-CN'), '45岁');
  assert.equal(f.formatAge('006M', '', '', 'en'), '6mo');
  assert.equal(f.formatAge('', '19640428', '20261022', 'zh-CN'), '62岁');
  assert.equal(f.formatAge('', '19640428', '20260427', 'en'), '61y', 'not yet the birthday');
  assert.equal(f.formatSex('F', 'zh-CN'), '女');
  assert.equal(f.formatDate('20250314'), '2025-03-14');
  assert.equal(f.formatTime('093015.123'), '09:30');
  assert.equal(f.formatTime(''), '');
});

test('after sign-in the page goes only to a path of this site', async () => {
  const { safeNext } = await loadAppModule('app/sessionEvents.ts');
  assert.equal(safeNext('/viewer?StudyInstanceUIDs=1.2.3'), '/viewer?StudyInstanceUIDs=1.2.3');
  assert.equal(safeNext('/?pid=P1&page=2'), '/?pid=P1&page=2');
  for (const bad of [null, '', 'https://evil.example/', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)', '/login?next=/']) {
    assert.equal(safeNext(bad), '/', String(bad));
  }
});

test('server messages in the user language', async () => {
  const { localizedServerMessage } = await loadAppModule('app/serverMessage.ts');
  const m = 'the account is locked after repeated failures / 账户因多次登录失败已锁定';
  assert.equal(localizedServerMessage(m, 'zh-CN'), '账户因多次登录失败已锁定');
  assert.equal(localizedServerMessage(m, 'en'), 'the account is locked after repeated failures');
  assert.equal(localizedServerMessage('plain message', 'zh-CN'), 'plain message');
});
