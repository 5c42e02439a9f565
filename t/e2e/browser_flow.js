#!/usr/bin/env node
// The real-browser end-to-end flow of mod_monei_connect.
//
// Debian's headless Chromium (/usr/bin/chromium), driven by playwright-core from npm (no
// browser download), goes through the demo's configuration as a person would:
//   protected page -> Monei (sandbox) consent -> untick profile:read -> Approve
//   -> dashboard shows exactly the granted data (balance, no name/email, a step-up link)
//   -> step-up for profile:read -> name and email appear
//   -> Disconnect -> the protected page sends to Monei again.
// At every stage it checks the cookies as the browser stored them (HttpOnly, Secure on HTTPS,
// SameSite, the __Host- prefix on HTTPS) and that no token-like value reaches the page.
//
// Started by t/e2e/test_browser.py, which starts the sandbox and httpd. Usage:
//   node browser_flow.js CONFIG.json
// CONFIG: {"mode":"http"|"https", "app":"http(s)://127.0.0.1:PORT", "monei":"http(s)://localhost:PORT",
//          "sandbox_control":"http://127.0.0.1:PORT", "screenshots":DIR, "result":FILE,
//          "user_data_dir":DIR, "trust_certs":[PEM paths]   (https: certificates to trust),
//          "samesite":"Lax"|"Strict"   (the site's MoneiConnectCookieSameSite, default Lax)}
// Exit 0 when every check passed; otherwise the failed check is printed and a screenshot of
// the page at that moment is saved as NN-FAILED.png.
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const [major] = process.versions.node.split('.').map(Number);
if (major < 20) {
  console.error(`browser_flow: node ${process.version} is too old: playwright-core needs node >= 20`);
  process.exit(2);
}

let playwright;
try {
  playwright = require('playwright-core');
} catch (e) {
  console.error('browser_flow: playwright-core is not installed: run `npm ci` in t/e2e (' + e.message + ')');
  process.exit(2);
}

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const HTTPS = cfg.mode === 'https';
const APP = new URL(cfg.app);
const MONEI = new URL(cfg.monei);
const SESSION = HTTPS ? '__Host-monei_session' : 'monei_session';
const STATE = SESSION + '_state';
const SAMESITE = cfg.samesite || 'Lax';   // MoneiConnectCookieSameSite of the site
fs.mkdirSync(cfg.screenshots, { recursive: true });

const result = { mode: cfg.mode, steps: [], cookie_values: [], screenshots: [] };
const pagesSeen = [];      // {url, html, cookie} of every app page, for the token scan
let shot = 0;
let page;
let context;

function log(msg) {
  console.log(`[${cfg.mode}] ${msg}`);
}

// URLs printed in messages lose their code and state: this output may end up in a log.
function redact(u) {
  return String(u).replace(/\b(code|state|code_challenge)=[^&\s"]+/g, '$1=…');
}

async function screenshot(name) {
  shot += 1;
  const file = path.join(cfg.screenshots, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  result.screenshots.push(file);
  return file;
}

// The README's pictures (docs/screenshots/NAME.png), from one variant only: the 800x600
// viewport as a person sees it, small enough to commit.
async function docShot(name) {
  if (!cfg.docs_screenshots) return null;
  fs.mkdirSync(cfg.docs_screenshots, { recursive: true });
  const file = path.join(cfg.docs_screenshots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  (result.doc_screenshots = result.doc_screenshots || []).push(file);
  return file;
}

async function sandbox(pathname, body, method) {
  const r = await fetch(cfg.sandbox_control + '/_sandbox/' + pathname, {
    method: method || 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(r.ok, `sandbox ${pathname}: HTTP ${r.status}`);
  return r.json();
}

// Every page of the module has a way out: a link, and no placeholder text.
async function checkErrorPage(what, status, resp) {
  if (resp && status) assert.equal(resp.status(), status, `${what}: HTTP status`);
  const links = await page.$$eval('a[href]', (els) => els.map((e) => e.getAttribute('href')));
  assert.ok(links.length >= 1, `${what}: the page has no link out`);
  for (const href of links) {
    const u = new URL(href, page.url());
    assert.ok(u.origin === APP.origin, `${what}: a way out must stay on this site, not ${redact(href)}`);
  }
  const text = await page.textContent('body');
  assert.ok(!/\(none\)|\bnull\b/i.test(text), `${what}: placeholder text on the page`);
  return links;
}

// The page text must never show a placeholder for a missing value.
async function checkNoPlaceholder(what) {
  const text = await page.evaluate(() => document.body.innerText);
  const html = await page.content();
  for (const bad of ['(none)', 'null', 'Null', 'undefined', 'NaN']) {
    assert.ok(!text.includes(bad), `${what}: the page shows "${bad}": ${JSON.stringify(text)}`);
    assert.ok(!html.includes(bad), `${what}: the HTML holds "${bad}"`);
  }
}

async function step(name, fn) {
  log('step: ' + name);
  await fn();
  result.steps.push(name);
}

// SHA-256 of the SubjectPublicKeyInfo, base64: what --ignore-certificate-errors-spki-list takes.
function spkiHash(pemFile) {
  const cert = new crypto.X509Certificate(fs.readFileSync(pemFile));
  const der = cert.publicKey.export({ type: 'spki', format: 'der' });
  return crypto.createHash('sha256').update(der).digest('base64');
}

async function moduleCookies() {
  const all = await context.cookies(APP.origin);
  for (const c of all) {
    if (c.value && !result.cookie_values.includes(c.value)) result.cookie_values.push(c.value);
  }
  return all;
}

// The attributes a module cookie must have, as the browser stored them.
function checkModuleCookie(c, what) {
  assert.equal(c.httpOnly, true, `${what}: ${c.name} must be HttpOnly`);
  assert.equal(c.path, '/', `${what}: ${c.name} must have Path=/`);
  assert.equal(c.domain, APP.hostname, `${what}: ${c.name} must be a host-only cookie of ${APP.hostname}`);
  // The state cookie is never stricter than Lax: it must come back on Monei's redirect.
  const want = c.name === STATE && SAMESITE === 'Strict' ? 'Lax' : SAMESITE;
  assert.equal(c.sameSite, want, `${what}: ${c.name} must be SameSite=${want}`);
  if (HTTPS) {
    assert.equal(c.secure, true, `${what}: ${c.name} must be Secure over HTTPS`);
    assert.ok(c.name.startsWith('__Host-'), `${what}: ${c.name} must carry the __Host- prefix over HTTPS`);
  } else {
    assert.equal(c.secure, false, `${what}: ${c.name} must not be Secure over plain HTTP (the browser would drop it)`);
    assert.ok(!c.name.startsWith('__Host-'), `${what}: ${c.name}: no __Host- prefix over plain HTTP`);
  }
}

// What the page's scripts can see: document.cookie must not show any module cookie.
async function checkDocumentCookie(what) {
  const dc = await page.evaluate(() => document.cookie);
  assert.ok(!/monei_session/.test(dc), `${what}: document.cookie shows a module cookie: ${JSON.stringify(dc)}`);
  assert.equal(dc, '', `${what}: document.cookie should be empty on this site, is ${JSON.stringify(dc)}`);
  return dc;
}

async function rememberAppPage(what) {
  const html = await page.content();
  const dc = await page.evaluate(() => document.cookie);
  const storage = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  pagesSeen.push({ what, url: page.url(), html, cookie: dc, storage });
}

function onConsentPage(what) {
  const u = new URL(page.url());
  assert.equal(u.origin, MONEI.origin, `${what}: expected Monei's consent page, the browser is on ${redact(page.url())}`);
  assert.equal(u.pathname, '/connect/authorize', `${what}: expected /connect/authorize, got ${redact(page.url())}`);
  return u;
}

// The redirect chain of the last navigation: every hop's URL and status.
function chainOf(response) {
  const hops = [];
  let req = response.request();
  while (req) {
    hops.unshift(req.url());
    req = req.redirectedFrom();
  }
  return hops;
}

// Press Approve on the consent page; the response at the end of the redirect chain.
async function approve() {
  // With SameSite=Strict the callback answers 200 with a same-site page redirect (browsers
  // withhold Strict cookies on every redirect of a chain that started on Monei's site):
  // wait for the navigation that page makes, not for the callback itself.
  if (SAMESITE === 'Strict') {
    const callback = page.waitForResponse((r) => r.request().isNavigationRequest()
      && new URL(r.url()).pathname === '/monei/callback');
    const landed = page.waitForResponse((r) => r.request().isNavigationRequest()
      && new URL(r.url()).origin === APP.origin
      && new URL(r.url()).pathname !== '/monei/callback');
    await page.click('button[name=action][value=approve]');
    assert.equal((await callback).status(), 200, 'Strict: the callback ends with a page redirect');
    const resp = await landed;
    await page.waitForLoadState('load');
    return resp;
  }
  const [resp] = await Promise.all([
    page.waitForNavigation(),
    page.click('button[name=action][value=approve]'),
  ]);
  const hops = chainOf(resp);
  // A session cookie that the browser withholds on the redirect back from the callback
  // (SameSite=Strict: the chain started on Monei, another site) sends it to Monei again.
  assert.ok(!(hops.length > 3 && new URL(hops[hops.length - 1]).origin === MONEI.origin),
    'after Approve the browser was sent back to Monei: the session cookie did not come along ' +
    `on the redirect from the callback to the page: ${redact(JSON.stringify(hops))}`);
  return resp;
}

async function scopeBoxes() {
  return page.$$eval('input[type=checkbox][name=scope]', (els) => els.map((e) => ({ value: e.value, checked: e.checked })));
}

async function main() {
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'];
  if (HTTPS) {
    // Trust the throwaway CA's server certificate (the sandbox and httpd share it): Chromium
    // honours this list only with an explicit --user-data-dir, which launchPersistentContext
    // passes.
    const hashes = (cfg.trust_certs || []).map(spkiHash);
    args.push('--ignore-certificate-errors-spki-list=' + hashes.join(','));
  }
  fs.rmSync(cfg.user_data_dir, { recursive: true, force: true });
  fs.mkdirSync(cfg.user_data_dir, { recursive: true });
  context = await playwright.chromium.launchPersistentContext(cfg.user_data_dir, {
    executablePath: CHROMIUM,
    headless: true,
    args,
    viewport: { width: 800, height: 600 },
    locale: 'en-GB',
    timeout: 60000,
  });
  context.setDefaultTimeout(20000);
  context.setDefaultNavigationTimeout(30000);
  page = context.pages()[0] || await context.newPage();
  result.browser = context.browser() ? context.browser().version() : 'chromium (persistent context)';
  const consoleErrors = [];
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  await step('home page, not connected', async () => {
    const resp = await page.goto(APP.origin + '/');
    assert.equal(resp.status(), 200);
    assert.match(await page.textContent('h1'), /Monei Connect, served by Apache/);
    if (HTTPS) {
      assert.equal(await page.evaluate(() => window.isSecureContext), true, 'the HTTPS app must be a secure context');
    }
    assert.deepEqual(await moduleCookies(), [], 'no cookie before anything happened');
    await checkDocumentCookie('home');
    await rememberAppPage('home');
    await screenshot('home');
  });

  let firstAuthorize;
  await step('protected page sends the browser to Monei', async () => {
    const resp = await page.goto(APP.origin + '/dashboard');
    const hops = chainOf(resp);
    assert.equal(hops[0], APP.origin + '/dashboard', 'the chain starts at the protected page');
    assert.equal(hops.length, 2, `one redirect straight to Monei, got ${redact(JSON.stringify(hops))}`);
    assert.equal(resp.status(), 200, 'the consent page answers 200');
    const u = onConsentPage('after /dashboard');
    const q = u.searchParams;
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('redirect_uri'), APP.origin + '/monei/callback');
    assert.deepEqual((q.get('scope') || '').split(' ').sort(), ['profile:read', 'wallet:read']);
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.ok((q.get('state') || '').length >= 43, 'a 256-bit state');
    firstAuthorize = u;
    const cookies = await moduleCookies();
    assert.deepEqual(cookies.map((c) => c.name), [STATE], `only the state cookie after login start, got ${cookies.map((c) => c.name)}`);
    checkModuleCookie(cookies[0], 'state cookie');
    assert.ok(cookies[0].expires > 0 && cookies[0].expires - Date.now() / 1000 <= 3600,
      'the state cookie is short-lived');
    assert.deepEqual(await scopeBoxes(), [{ value: 'wallet:read', checked: true }, { value: 'profile:read', checked: true }]);
    // The app by its name, not by its raw client id.
    assert.match(await page.textContent('h1'), new RegExp(`^${cfg.app_name || 'Test Shop'} wants`));
    await screenshot('consent');
    await docShot('consent');
  });

  await step('untick profile:read and approve', async () => {
    await page.uncheck('input[type=checkbox][name=scope][value="profile:read"]');
    assert.deepEqual(await scopeBoxes(), [{ value: 'wallet:read', checked: true }, { value: 'profile:read', checked: false }]);
    await screenshot('consent-profile-unticked');
    const resp = await approve();
    const hops = chainOf(resp);
    // POST to Monei -> 302 callback (cross-site: the Lax state cookie must come along)
    // -> 302 back to the page the login started from (Strict: a page redirect to it).
    assert.deepEqual(hops.map((h) => new URL(h).origin + new URL(h).pathname),
      SAMESITE === 'Strict'
        ? [APP.origin + '/dashboard']
        : [MONEI.origin + '/connect/authorize', APP.origin + '/monei/callback', APP.origin + '/dashboard'],
      `redirect chain after Approve: ${redact(JSON.stringify(hops))}`);
    assert.equal(resp.status(), 200);
  });

  let session1;
  let accountId;
  await step('dashboard shows exactly the granted data (wallet:read only)', async () => {
    assert.equal((await page.textContent('h1')).trim(), 'Connected', 'no name without profile:read');
    assert.equal((await page.textContent('#balance')).trim(), '\u20a61,805.00');
    assert.match(await page.textContent('#account'), /\d{6,}.*\S/);
    assert.match(await page.textContent('#evm'), /^0x[0-9a-fA-F]{40}$/);
    assert.match((await page.textContent('#solana')).trim(), /^[1-9A-HJ-NP-Za-km-z]{32,44}$/);
    assert.equal((await page.textContent('#scopes')).trim(), 'wallet:read');
    // A scope is one chip that never breaks inside ("wallet:re/ad" on a phone).
    assert.deepEqual(await page.$$eval('#scopes .scope', (els) => els.map((e) => getComputedStyle(e).whiteSpace)), ['nowrap']);
    assert.equal(await page.$('#email'), null, 'no email without profile:read');
    accountId = (await page.textContent('#account-id code')).trim();
    assert.match(accountId, /^[0-9a-f-]{36}$/, 'the account id is a Monei id');
    assert.equal((await page.textContent('#account-id-kind')).trim(), '(naira wallet id)');
    await checkNoPlaceholder('dashboard wallet only');
    const body = await page.textContent('body');
    assert.ok(!/@/.test(body), 'no email address anywhere on the page');
    assert.ok(!/Ada|Okafor/.test(body), 'no name anywhere on the page');
    assert.ok(!/did not share your wallet/.test(body));
    const stepUp = page.getByRole('link', { name: 'Share name and email' });
    assert.equal(await stepUp.count(), 1, 'a link to grant the missing scope');
    const href = new URL(await stepUp.getAttribute('href'), APP.origin);
    assert.equal(href.pathname, '/monei/callback');
    assert.equal(href.searchParams.get('scope'), 'profile:read');
    assert.equal(await page.getByRole('link', { name: 'Share wallet balance' }).count(), 0);

    const cookies = await moduleCookies();
    const sess = cookies.find((c) => c.name === SESSION);
    assert.ok(sess, `the session cookie ${SESSION} is stored, cookies: ${cookies.map((c) => c.name)}`);
    checkModuleCookie(sess, 'session cookie');
    assert.match(sess.value, /^[A-Za-z0-9_-]{43}$/, 'the session cookie holds a 256-bit random id (base64url)');
    for (const c of cookies) checkModuleCookie(c, 'after login');
    session1 = sess.value;
    await checkDocumentCookie('dashboard');
    await rememberAppPage('dashboard wallet only');
    await screenshot('dashboard-wallet-only');
    await docShot('dashboard-partial');
  });

  await step('/dashboard.json answers the same grant', async () => {
    const resp = await page.goto(APP.origin + '/dashboard.json');
    assert.equal(resp.status(), 200);
    assert.match(resp.headers()['content-type'], /application\/json/);
    const info = JSON.parse(await resp.text());
    assert.equal(info.connected, true);
    assert.deepEqual(info.scopes, ['wallet:read']);
    assert.equal(info.wallet.nairaBalance, '1805.00');
    assert.ok(!('user' in info) || info.user === null, 'no user without profile:read');
    await rememberAppPage('dashboard.json');
    await screenshot('dashboard-json');
  });

  await step('step-up: the link asks Monei for profile:read only', async () => {
    await page.goto(APP.origin + '/dashboard');
    await Promise.all([
      page.waitForURL((u) => u.origin === MONEI.origin),
      page.getByRole('link', { name: 'Share name and email' }).click(),
    ]);
    const u = onConsentPage('after the step-up link');
    assert.equal(u.searchParams.get('scope'), 'profile:read');
    assert.deepEqual(await scopeBoxes(), [{ value: 'profile:read', checked: true }]);
    assert.match(await page.textContent('body'), /Already granted: wallet:read/);
    await screenshot('step-up-consent');
    const back = await approve();
    assert.equal(back.url(), APP.origin + '/dashboard');
    assert.equal((await page.textContent('h1')).trim(), 'Connected: Ada Okafor');
    assert.match(await page.textContent('#email'), /^[^@\s]+@[^@\s]+$/);
    assert.equal((await page.textContent('#balance')).trim(), '\u20a61,805.00');
    assert.deepEqual((await page.textContent('#scopes')).trim().split(/\s+/).sort(), ['profile:read', 'wallet:read']);
    // The session keeps its account id through the step-up.
    assert.equal((await page.textContent('#account-id code')).trim(), accountId, 'the account id is stable across a step-up');
    await checkNoPlaceholder('dashboard after step-up');
    assert.equal(await page.getByRole('link', { name: 'Share name and email' }).count(), 0);
    const cookies = await moduleCookies();
    const sess = cookies.find((c) => c.name === SESSION);
    assert.ok(sess, 'still a session cookie after step-up');
    for (const c of cookies) checkModuleCookie(c, 'after step-up');
    assert.notEqual(sess.value, session1, 'a new session id at every login');
    await checkDocumentCookie('dashboard after step-up');
    await rememberAppPage('dashboard full');
    await screenshot('dashboard-after-step-up');
    await docShot('dashboard-full');
  });

  await step('home page shows the connected user and the way to the dashboard', async () => {
    await page.goto(APP.origin + '/');
    assert.equal((await page.textContent('#who')).trim(), 'Ada Okafor');
    const link = page.locator('#connected a[href="/dashboard"]');
    assert.equal(await link.count(), 1, 'a link to the dashboard');
    await checkNoPlaceholder('home connected');
    await rememberAppPage('home connected');
    await screenshot('home-connected');
    await docShot('home-connected');
  });

  await step('Monei unreachable: a stale banner with the snapshot\'s time', async () => {
    await sandbox('faults', { endpoint: 'wallet', status: 503, count: 1 });
    await page.goto(APP.origin + '/dashboard');
    const banner = await page.textContent('#stale');
    assert.match(banner, /last known values, as of \d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d UTC/, banner);
    assert.equal((await page.textContent('#balance')).trim(), '\u20a61,805.00');
    await checkNoPlaceholder('dashboard stale');
    await screenshot('dashboard-stale');
    await docShot('dashboard-stale');
    await sandbox('faults', undefined, 'DELETE');
  });

  await step('a wallet and profile with null fields: rows left out, never a placeholder', async () => {
    await sandbox('user_data', {
      user: 'ada',
      profile: { firstName: null, lastName: null },
      wallet: {
        nairaBalance: null,
        subwallets: [{ id: '0b6f3a52-1c2d-4e8f-9a01-ada000000001', type: 'FIAT', currency: 'NGN',
          balance: null, chain: null, publicAddress: null, virtualAccount: null }],
      },
    });
    // The breaker that the stale step opened closes at its first successful probe.
    let stale = true;
    for (let i = 0; i < 20 && stale; i++) {
      await new Promise((res) => setTimeout(res, 500));
      await page.goto(APP.origin + '/dashboard');
      stale = (await page.$('#stale')) !== null;
    }
    assert.equal(stale, false, 'fresh values once Monei answers again');
    assert.equal((await page.textContent('h1')).trim(), 'Connected');
    for (const id of ['#balance', '#account', '#evm', '#solana']) {
      assert.equal(await page.$(id), null, `${id}: a row without a value is left out`);
    }
    assert.equal((await page.textContent('#account-id code')).trim(), accountId);
    await checkNoPlaceholder('dashboard null fields');
    await screenshot('dashboard-null-fields');
    await docShot('dashboard-null-fields');
    await page.goto(APP.origin + '/');
    await checkNoPlaceholder('home with null fields');
  });

  await step('Disconnect', async () => {
    await page.goto(APP.origin + '/dashboard');
    await Promise.all([
      page.waitForURL(APP.origin + '/?disconnected'),
      page.getByRole('link', { name: 'Disconnect' }).click(),
    ]);
    assert.match(await page.textContent('h1'), /Monei Connect, served by Apache/);
    assert.match(await page.textContent('#disconnected'), /You are disconnected/);
    assert.equal(await page.$('#connected'), null);
    await docShot('disconnected');
    const cookies = await moduleCookies();
    assert.equal(cookies.find((c) => c.name === SESSION), undefined,
      `the session cookie is gone after Disconnect, cookies: ${JSON.stringify(cookies.map((c) => c.name))}`);
    await checkDocumentCookie('after disconnect');
    await rememberAppPage('after disconnect');
    await screenshot('after-disconnect');
  });

  await step('not connected any more: JSON and the protected page', async () => {
    const info = await page.goto(APP.origin + '/dashboard.json');
    assert.equal(info.status(), 200);
    assert.deepEqual(JSON.parse(await info.text()), { connected: false });
    const resp = await page.goto(APP.origin + '/dashboard');
    assert.equal(chainOf(resp).length, 2, 'one redirect to Monei');
    const u = onConsentPage('after Disconnect, /dashboard');
    assert.notEqual(u.searchParams.get('state'), firstAuthorize.searchParams.get('state'), 'a fresh state');
    await screenshot('protected-again');
  });

  await step('error pages have a way out: Deny on the consent page', async () => {
    onConsentPage('before Deny');
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.request().isNavigationRequest() && new URL(r.url()).origin === APP.origin),
      page.click('button[name=action][value=deny]'),
    ]);
    await page.waitForLoadState();
    await checkErrorPage('access denied', 403, resp);
    assert.match(await page.textContent('body'), /nothing was shared/);
    await rememberAppPage('access denied');
    await screenshot('error-access-denied');
    await docShot('error-access-denied');
  });

  await step('error pages have a way out: a return_to to another site', async () => {
    const resp = await page.goto(APP.origin + '/connect-monei?return_to=https://evil.example/');
    const links = await checkErrorPage('invalid return_to', 400, resp);
    assert.ok(links.includes('/dashboard'), `back to the default return, links: ${links}`);
    await screenshot('error-invalid-return-to');
    await docShot('error-invalid-return-to');
  });

  await step('error pages have a way out: a sign-in link this server did not issue', async () => {
    const resp = await page.goto(APP.origin + '/monei/callback?state=forged&code=forged');
    await checkErrorPage('invalid state', 400, resp);
    await screenshot('error-invalid-state');
    await docShot('error-invalid-state');
  });

  await step('error pages have a way out: Monei unavailable at the code exchange', async () => {
    await sandbox('faults', { endpoint: 'token', status: 503, count: 5 });
    await page.goto(APP.origin + '/dashboard');
    onConsentPage('before the failing exchange');
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.request().isNavigationRequest() && new URL(r.url()).origin === APP.origin),
      page.click('button[name=action][value=approve]'),
    ]);
    await page.waitForLoadState();
    await sandbox('faults', undefined, 'DELETE');
    await checkErrorPage('Monei unavailable', null, resp);
    assert.ok([502, 503].includes(resp.status()), `a 502/503 page, got ${resp.status()}`);
    await rememberAppPage('Monei unavailable');
    await screenshot('error-monei-unavailable');
    await docShot('error-monei-unavailable');
  });

  await step('no token-like value anywhere the page can see', async () => {
    const r = await fetch(cfg.sandbox_control + '/_sandbox/secrets');
    const body = await r.json();
    const secrets = [];
    (function walk(v) {
      if (typeof v === 'string') { if (v.length >= 10) secrets.push(v); } else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    })(body);
    assert.ok(secrets.some((s) => s.startsWith('mct_')), 'the sandbox issued access tokens');
    const cookieValues = (await context.cookies()).map((c) => c.value);
    for (const p of pagesSeen) {
      for (const s of secrets) {
        for (const [where, text] of [['HTML', p.html], ['document.cookie', p.cookie], ['storage', p.storage]]) {
          assert.ok(!text.includes(s), `${p.what}: a sandbox secret (${s.slice(0, 4)}…) appears in the page's ${where}`);
        }
      }
      assert.ok(!/\bmc[tr]_[A-Za-z0-9_-]{8,}/.test(p.html + p.cookie + p.storage), `${p.what}: a token-like value in the page`);
    }
    for (const v of cookieValues) {
      assert.ok(!secrets.includes(v), 'a cookie holds a Monei secret');
      assert.ok(!/^mc[trs]_/.test(v), 'a cookie value looks like a Monei token');
    }
    for (const v of result.cookie_values) {
      for (const p of pagesSeen) assert.ok(!p.html.includes(v), `${p.what}: a module cookie value appears in the page`);
    }
    assert.deepEqual(consoleErrors, [], 'no script errors on the pages');
  });
}

(async () => {
  let code = 0;
  try {
    await main();
    log(`all ${result.steps.length} steps passed`);
  } catch (e) {
    code = 1;
    result.error = redact(e && e.stack || e);
    console.error(`[${cfg.mode}] FAILED: ${redact(e && e.message || e)}`);
    if (page) {
      try {
        console.error(`[${cfg.mode}] the browser was on ${redact(page.url())}`);
        await screenshot('FAILED');
      } catch (e2) { /* the browser itself is gone */ }
    }
  } finally {
    if (context) await context.close().catch(() => {});
    fs.writeFileSync(cfg.result, JSON.stringify(result, null, 2));
  }
  process.exit(code);
})();
