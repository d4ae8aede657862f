// The console follows `kiln dev --local`: each rebuild shows as it
// happens, started, then live or failed with the compiler's error, while
// the last good version keeps serving. make browser runs it after
// console.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, shot, startKiln } from './kiln.mjs';

let kiln, context, page;

before(async () => {
  kiln = await startKiln('dev');
  context = await launch();
  page = context.pages()[0] || (await context.newPage());
});

after(async () => {
  await context?.close();
  await kiln?.stop();
});

const count = (kind) => page.$$eval(`#builds li[data-kind="${kind}"][data-function="echo"]`, (els) => els.length);

test('kiln dev: the console shows each rebuild as it happens, and a failed one with its error', async () => {
  await page.goto(kiln.base + '/ui/');
  await page.waitForSelector('#functions tr[data-name="echo"]');
  await page.waitForSelector('body[data-builds="following"]', { state: 'attached' });
  const [started, live, failed] = [await count('started'), await count('live'), await count('failed')];

  // The function's page, open across the rebuild, shows the new layers.
  const fnPage = await context.newPage();
  await fnPage.goto(kiln.base + '/ui/function/echo');
  await fnPage.waitForSelector('body[data-builds="following"]', { state: 'attached' });

  // A new answer each run, so that the handler's layer is never cached.
  const v2 = 'v2-' + Date.now();
  const handler = join(kiln.stack, 'echo', 'handler.go');
  const source = readFileSync(handler, 'utf8');
  writeFileSync(handler, source.replace('fmt.Fprintf(w, "%s %s %s"', `fmt.Fprintf(w, "${v2} %s %s %s"`));
  const t0 = Date.now();
  await page.waitForFunction((n) => document.querySelectorAll('#builds li[data-kind="started"][data-function="echo"]').length > n, started, { timeout: 120000 });
  await page.waitForFunction((n) => document.querySelectorAll('#builds li[data-kind="live"][data-function="echo"]').length > n, live, { timeout: 120000 });
  console.log(`edit → live in the console: ${Date.now() - t0} ms`);
  const r = await fetch(kiln.base + '/function/echo/after-edit');
  assert.equal(await r.text(), v2 + ' GET /after-edit ', 'the console said live: the new version answers');
  await fnPage.waitForSelector('#layers tr[data-rebuilt="true"]');
  const rebuilt = await fnPage.$$eval('#layers tr[data-rebuilt="true"] td:first-child', (tds) => tds.map((td) => td.textContent));
  assert.deepEqual(rebuilt, ['handler binary'], 'the layer table marks the layer the edit rebuilt, and only it');
  await shot(fnPage, 'dev-function-rebuilt');
  await fnPage.close();

  writeFileSync(handler, source.replace('package function', 'package function\n\nfunc broken( {}'));
  await page.waitForFunction((n) => document.querySelectorAll('#builds li[data-kind="failed"][data-function="echo"]').length > n, failed, { timeout: 120000 });
  const error = await page.textContent('#builds li[data-kind="failed"][data-function="echo"] .error');
  assert.match(error, /handler\.go/, 'the failed build shows the compiler\'s error');
  await page.waitForSelector('#functions tr[data-name="echo"] .status.failed', { timeout: 10000 });
  const still = await fetch(kiln.base + '/function/echo/after-failure');
  assert.equal(await still.text(), v2 + ' GET /after-failure ', 'the last good version keeps serving');
  await shot(page, 'dev-rebuilds');
});
