// The console in headless Chromium against a real `kiln up --local` of
// stack/ (two Go functions that log a line per call): make browser.
// Screenshots go to screenshots/, and their paths are printed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, shot as shotOf, startKiln } from './kiln.mjs';

let kiln, base, context, page;
const api = (...a) => kiln.api(...a);
const shot = (name) => shotOf(page, name);

before(async () => {
  kiln = await startKiln('up');
  base = kiln.base;
  context = await launch();
  page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (e) => console.log('page error: ' + e.message));
});

after(async () => {
  await context?.close();
  await kiln?.stop();
});

test('the console lists the stack\'s functions, behind the login, from /', async () => {
  const r = await fetch(base + '/', { redirect: 'manual' });
  assert.equal(r.status, 301);
  assert.equal(r.headers.get('location'), '/ui/');
  assert.equal((await fetch(base + '/ui/')).status, 401);
  await page.goto(base + '/');
  await page.waitForSelector('#functions tr[data-name="greet"]');
  const names = await page.$$eval('#functions tr[data-name]', (rows) => rows.map((r) => r.dataset.name));
  assert.deepEqual(names, ['echo', 'greet']);
  const image = await page.$eval('#functions tr[data-name="echo"] td:nth-child(4)', (td) => ({ text: td.textContent, digest: td.dataset.digest }));
  assert.match(image.digest, /^sha256:[0-9a-f]{64}$/, 'the overview knows the digest kiln built');
  assert.equal(image.text, 'kiln-browser/echo@' + image.digest.slice(7, 19), 'the overview shows the image and its digest');
  await shot('overview');
});

test('the invoke panel gets the function\'s answer, and the log view shows the line it printed', async () => {
  const mark = 'invoke-' + Date.now();
  await page.goto(base + '/ui/function/echo');
  await page.waitForSelector('#invoke');
  await page.selectOption('#invoke select[name=method]', 'POST');
  await page.fill('#invoke input[name=path]', '/hello?x=1');
  await page.fill('#invoke textarea[name=headers]', 'X-Test-Mark: ' + mark);
  await page.fill('#invoke textarea[name=body]', 'ping');
  await page.click('#invoke button[type=submit]');
  await page.waitForSelector('#answer-status');
  assert.match(await page.textContent('#answer-status'), /^200 /);
  assert.equal(await page.textContent('#answer-body'), 'POST /hello ping');
  assert.match(await page.textContent('#answer-headers'), /^x-call-id: /m, 'the panel shows the answer\'s headers');
  assert.ok(Number(await page.getAttribute('#answer', 'data-ms')) > 0, 'the panel shows the call\'s time');
  await page.waitForFunction((m) => (document.querySelector('#logs')?.textContent || '').includes(`echo-call POST /hello "${m}"`), mark);
  const layers = await page.$$('#layers tbody tr');
  assert.ok(layers.length >= 2, 'the layer table lists the image\'s layers');
  await shot('function-invoke-logs');
});

test('the charts show the requests the test just made', async () => {
  const before = JSON.parse((await api('GET', '/ui/api/functions/greet')).text);
  const sum = (d, k) => (d.telemetry?.series || []).reduce((a, b) => a + (b[k] || 0), 0);
  const [n, failing] = [12, 3];
  for (let i = 0; i < n; i++) {
    const r = await fetch(base + '/function/greet/chart' + (i < failing ? '?status=500' : '?sleep=20'));
    await r.text();
  }
  await page.goto(base + '/ui/function/greet');
  const want = sum(before, 'count') + n;
  await page.waitForFunction((w) => Number(document.querySelector('#chart-requests')?.dataset.requests) >= w, want, { timeout: 15000 });
  const shown = await page.$eval('#chart-requests', (el) => ({ requests: Number(el.dataset.requests), errors: Number(el.dataset.errors) }));
  assert.equal(shown.requests, want);
  assert.equal(shown.errors, sum(before, 'errors') + failing);
  const p95 = Number(await page.getAttribute('#chart-latency', 'data-p95-max'));
  assert.ok(p95 >= 20, `the latency chart's p95 is ${p95} ms, want at least the 20 ms the function slept`);
  assert.ok(await page.$('#chart-requests canvas'), 'the chart is drawn');
  await shot('function-charts');
});

test('the docs page lists every path', async () => {
  const r = await api('GET', '/system/openapi.json');
  assert.equal(r.status, 200, r.text);
  const paths = Object.keys(JSON.parse(r.text).paths);
  for (const fn of ['echo', 'greet']) {
    assert.ok(paths.some((p) => p.startsWith('/function/' + fn)), `the document has ${fn}: ${paths}`);
  }
  await page.goto(base + '/ui/docs');
  await page.waitForSelector('[data-path]', { state: 'attached' }); // in closed <details>
  const shown = new Set(await page.$$eval('[data-path]', (els) => els.map((e) => e.dataset.path)));
  for (const p of paths) assert.ok(shown.has(p), 'the docs page lists ' + p);
  await shot('docs');
});

test('50 functions render in under 2 s', async () => {
  const fns = JSON.parse((await api('GET', '/system/functions')).text);
  const image = fns.find((f) => f.name === 'echo').image;
  const names = Array.from({ length: 50 }, (_, i) => 'many-' + String(i + 1).padStart(2, '0'));
  const start = Date.now();
  for (let i = 0; i < names.length; i += 5) {
    await Promise.all(names.slice(i, i + 5).map(async (service) => {
      const r = await api('POST', '/system/functions', { service, image, envProcess: './handler' });
      assert.equal(r.status, 202, `deploying ${service}: ${r.text}`);
    }));
  }
  console.log(`deployed 50 functions in ${Date.now() - start} ms`);
  const fresh = await context.newPage();
  const t0 = Date.now();
  await fresh.goto(base + '/ui/');
  await fresh.waitForFunction(() => document.querySelectorAll('#functions tr[data-name]').length === 52);
  const took = Date.now() - t0;
  const rendered = Number(await fresh.getAttribute('#main', 'data-rendered'));
  console.log(`first render of 52 functions: ${took} ms from navigation (page's own clock: ${rendered} ms)`);
  assert.ok(took < 2000, `the overview of 52 functions took ${took} ms, want under 2000`);
  const prev = page;
  page = fresh;
  await shot('overview-50');
  page = prev;
  await fresh.close();
});
