// Helpers of the browser tests: a real kiln serving a copy of stack/ on a
// local gateway, and headless Debian Chromium driven by playwright-core.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const shots = join(here, 'screenshots');
const kilnBin = process.env.KILN_BIN || join(here, '../../bin/kiln');
const password = 'browser-test-password';

function goCaches() {
  try {
    const [GOCACHE, GOMODCACHE] = execFileSync('go', ['env', 'GOCACHE', 'GOMODCACHE'], { encoding: 'utf8' }).trim().split('\n');
    return { GOCACHE, GOMODCACHE };
  } catch {
    return {};
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export async function waitFor(what, f, ms = 240000, said = () => '') {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch { /* not yet */ }
    if (Date.now() > end) throw new Error('timed out waiting for ' + what + '\nkiln said:\n' + said().slice(-3000));
    await new Promise((r) => setTimeout(r, 250));
  }
}

// startKiln runs `kiln VERB --local` (up or dev) in a copy of stack/ with
// a login of its own, in a fresh home, and waits until it serves. KILN_BIN
// names kiln; KILN_BROWSER_CACHE, when set, is a kiln cache kept between
// runs (else a fresh one, and a cold first build).
export async function startKiln(verb) {
  const tmp = mkdtempSync(join(tmpdir(), 'kiln-browser-'));
  const stack = join(tmp, 'stack');
  cpSync(join(here, 'stack'), stack, { recursive: true });
  writeFileSync(join(tmp, 'password'), password + '\n');
  const port = await freePort();
  const base = 'http://127.0.0.1:' + port;
  // A fresh home for kiln's login, but the user's Go caches: a rebuild in
  // kiln dev compiles only the handler.
  const env = { ...goCaches(), ...process.env, HOME: tmp, XDG_CONFIG_HOME: join(tmp, 'config'), OPENFAAS_CONFIG: join(tmp, 'openfaas') };
  for (const k of Object.keys(env)) if (k.startsWith('KILN_')) delete env[k];
  const proc = spawn(kilnBin, [verb, '--local', '--port', String(port), '--basic-auth-password-file', join(tmp, 'password'),
    '--cache-dir', process.env.KILN_BROWSER_CACHE || join(tmp, 'cache')], { cwd: stack, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const k = { base, stack, output: '', proc };
  proc.stdout.on('data', (b) => { k.output += b; });
  proc.stderr.on('data', (b) => { k.output += b; });
  k.said = () => k.output;
  // api calls the gateway with the login.
  k.api = async (method, path, body) => {
    const r = await fetch(base + path, {
      method, headers: { Authorization: 'Basic ' + Buffer.from('admin:' + password).toString('base64'), 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, text: await r.text() };
  };
  k.stop = async () => {
    if (proc.exitCode === null) {
      const exited = new Promise((r) => proc.on('exit', r));
      proc.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15000))]);
    }
    rmSync(tmp, { recursive: true, force: true });
  };
  const start = Date.now();
  await waitFor(`kiln ${verb} --local to serve both functions`, async () => {
    // kiln dev watches the folders only once they serve: an edit before
    // would go unseen.
    if (verb === 'dev' && !k.output.includes('watching echo, greet')) return false;
    const fns = JSON.parse((await k.api('GET', '/system/functions')).text);
    return fns.length === 2 && fns.every((f) => f.availableReplicas === 1);
  }, 240000, k.said);
  console.log(`kiln ${verb} --local served in ${Date.now() - start} ms`);
  return k;
}

// launch starts headless Chromium in a fresh profile, logged in.
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'kiln-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    httpCredentials: { username: 'admin', password },
    viewport: { width: 1400, height: 900 },
  });
  const close = context.close.bind(context);
  context.close = async () => {
    await close();
    rmSync(profile, { recursive: true, force: true });
  };
  return context;
}

// shot writes a screenshot of page to screenshots/NAME.png and says where.
export async function shot(page, name) {
  mkdirSync(shots, { recursive: true });
  const path = join(shots, name + '.png');
  await page.screenshot({ path, fullPage: true });
  console.log('screenshot: ' + path);
}
