// Drives Debian's Chromium through every page of a running sesame (see
// ../screenshots.sh, which starts it with examples/branding.yaml), saves a
// PNG per page, tenant, language, viewport and colour scheme, and runs
// axe-core on each. Fails on a serious or critical violation, a
// Content-Security-Policy violation or other console error reported by the
// browser, a script error, an image not shown, a page wider than the
// viewport, an unexpected status or <html lang>, and a form post page that
// does not post itself (or, without JavaScript, cannot be posted).
'use strict';
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');

const NODE_DIR = process.env.NODE_DIR;
const BASE = process.env.BASE;
const OUT = process.env.OUT;
const DB = process.env.DB;
const { chromium } = require(path.join(NODE_DIR, 'node_modules/playwright-core'));
const AXE = fs.readFileSync(path.join(NODE_DIR, 'node_modules/axe-core/axe.min.js'), 'utf8');

const VIEWPORTS = [
  { name: '390x844', width: 390, height: 844 },
  { name: '1280x800', width: 1280, height: 800 },
];
const SCHEMES = ['light', 'dark'];
const TENANTS = {
  demo: 'openid profile email offline_access photos:read',
  acme: 'openid profile email offline_access',
};
const LANGS = { en: 'en-GB', fr: 'fr-FR' };
// Writes queued ahead of the page that is to be unavailable (see the end
// of tenantPages): more than three of the writer's batches.
const FLOOD = 400;
// Headless Debian Chromium in a container: no sandbox, no GPU, and none of
// the background connections (updates, sync, QUIC probes) a closed network
// refuses.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-quic',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-domain-reliability',
  '--metrics-recording-only',
];

const problems = [];
let shots = 0;

function authorize(tenant, extra = '') {
  const q = new URLSearchParams({
    client_id: 'photos',
    response_type: 'code',
    scope: TENANTS[tenant],
    redirect_uri: `${BASE}/${tenant}/jwks`,
    state: 'st',
  });
  return `${BASE}/${tenant}/authorize?${q}${extra}`;
}

/** `promise`'s value, or null if it takes longer than `ms`. */
function within(promise, ms) {
  let timer;
  const late = new Promise((resolve) => { timer = setTimeout(() => resolve(null), ms); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Screenshots and axe results of the page as it is, in every viewport and
 * scheme. With `noScript`, the page runs no JavaScript of its own, and no
 * timers either: axe (injected through the DevTools protocol, which the
 * setting does not stop) gets zero-delay timers run as promise jobs and
 * longer ones (its time-outs) never fired.
 */
async function capture(page, tenant, lang, name, expectStatus, { noScript = false } = {}) {
  if (expectStatus !== undefined && page.lastStatus !== expectStatus) {
    problems.push(`${tenant}/${lang}/${name}: status ${page.lastStatus}, expected ${expectStatus}`);
  }
  const htmlLang = await page.evaluate(() => document.documentElement.lang);
  if (htmlLang !== lang) problems.push(`${tenant}/${lang}/${name}: <html lang="${htmlLang}">`);
  const broken = await page.evaluate(() =>
    Array.from(document.images).filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.src));
  for (const src of broken) problems.push(`${tenant}/${lang}/${name}: image not shown: ${src}`);
  for (const vp of VIEWPORTS) {
    for (const scheme of SCHEMES) {
      await page.setViewportSize({ width: vp.width, height: vp.height });
      await page.emulateMedia({ colorScheme: scheme });
      const file = path.join(OUT, `${tenant}-${lang}-${name}-${vp.name}-${scheme}.png`);
      await page.screenshot({ path: file, fullPage: true });
      shots++;
      const hasAxe = await page.evaluate(() => typeof window.axe !== 'undefined');
      if (!hasAxe) {
        if (noScript) {
          await page.evaluate(() => {
            // (Promise reactions, not queueMicrotask: Blink runs no
            // callbacks of its own for a page without JavaScript.)
            window.setTimeout = (f, ms, ...args) => { if (!ms) Promise.resolve().then(() => f(...args)); return 0; };
            window.clearTimeout = () => {};
          });
        }
        await page.evaluate(AXE + ';0');
      }
      const result = await within(page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] })), 60000);
      if (!result) {
        problems.push(`${path.basename(file)}: axe did not finish within a minute`);
        continue;
      }
      for (const v of result.violations) {
        if (v.impact === 'serious' || v.impact === 'critical') {
          const where = v.nodes.map((n) => n.target.join(' ')).join(', ');
          problems.push(`${path.basename(file)}: axe ${v.impact} ${v.id}: ${v.help} (${where})`);
        }
      }
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
      if (overflow) problems.push(`${path.basename(file)}: wider than the viewport`);
    }
  }
}

function track(page, tenant, lang) {
  page.on('response', (r) => {
    if (r.request().isNavigationRequest() && r.request().frame() === page.mainFrame()) page.lastStatus = r.status();
  });
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of (4|5)\d\d/.test(m.text())) problems.push(`${tenant}/${lang}: console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${tenant}/${lang}: script error: ${e.message}`));
}

async function signIn(page, username, password) {
  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
}

/** Hold SQLite's write lock until released: writes wait, then fail. */
async function lockDatabase() {
  const locker = spawn('python3', ['-c', [
    'import sqlite3, sys',
    'c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)',
    'c.execute("BEGIN EXCLUSIVE")',
    'print("locked", flush=True)',
    'sys.stdin.read()',
  ].join('\n'), DB], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise((resolve) => locker.stdout.once('data', resolve));
  return () => locker.stdin.end();
}

/**
 * The form post page (response_mode=form_post; prompt=none without a
 * session is login_required, posted back to the redirect URI), as served,
 * with its CSP. Its script posts the form as it loads: the post is
 * intercepted and answered 204, so Chromium stays on the page to be
 * captured; a post that never comes (a script the CSP blocked) or posts
 * the wrong fields is a problem. Then again with JavaScript off: nothing is
 * posted, the page says why and shows its Continue button, which posts the
 * same fields (the CSP's form-action allows it).
 */
async function formPostPages(browser, tenant, lang) {
  const url = authorize(tenant, '&response_mode=form_post&prompt=none');
  const redirect = `${BASE}/${tenant}/jwks`;
  const where = (name) => `${tenant}/${lang}/${name}`;
  const expected = { error: 'login_required', state: 'st', iss: `${BASE}/${tenant}` };

  /** Answers the page's posts to the redirect URI with 204; resolves with the first post's fields. */
  async function interceptPosts(page) {
    let posted;
    const first = new Promise((resolve) => { posted = resolve; });
    const count = { posts: 0 };
    await page.route(redirect, (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      count.posts++;
      posted(new URLSearchParams(route.request().postData() || ''));
      return route.fulfill({ status: 204 });
    });
    return { first, count };
  }
  function checkFields(name, fields) {
    for (const [k, v] of Object.entries(expected)) {
      if (fields.get(k) !== v) problems.push(`${where(name)}: posted ${k}=${fields.get(k)}, expected ${v}`);
    }
    if (fields.has('code')) problems.push(`${where(name)}: posted a code without a session`);
  }
  function checkResponse(name, response) {
    if (!response) {
      problems.push(`${where(name)}: no response`);
      return;
    }
    if (response.status() !== 200) problems.push(`${where(name)}: status ${response.status()}, expected 200`);
    const csp = response.headers()['content-security-policy'] || '';
    if (!/script-src 'sha256-[^']+'/.test(csp) || /unsafe-inline/.test(csp) || !/form-action /.test(csp)) {
      problems.push(`${where(name)}: unexpected CSP: ${csp || '(none)'}`);
    }
  }
  // With JavaScript: the page posts itself.
  {
    const context = await browser.newContext({ locale: LANGS[lang] });
    try {
      const page = await context.newPage();
      track(page, tenant, lang);
      const { first } = await interceptPosts(page);
      // Not 'load': the post, a navigation that the 204 then cancels,
      // starts before the page's load event, and Playwright stops
      // following this document's lifecycle: wait for it in the page.
      const response = await page.goto(url, { waitUntil: 'commit' });
      checkResponse('form-post', response);
      const fields = await within(first, 10000);
      if (!fields) problems.push(`${where('form-post')}: the form was not posted by its script`);
      else checkFields('form-post', fields);
      await page.waitForFunction(() => document.readyState === 'complete', null, { timeout: 10000 });
      if (page.url() !== url) problems.push(`${where('form-post')}: left for ${page.url()}`);
      // (The 204 of the post is the last navigation's status: not checked again.)
      await capture(page, tenant, lang, 'form-post');
    } finally {
      await context.close();
    }
  }

  // Without JavaScript: the fallback.
  {
    const context = await browser.newContext({ locale: LANGS[lang], javaScriptEnabled: false });
    try {
      const page = await context.newPage();
      track(page, tenant, lang);
      const { first, count } = await interceptPosts(page);
      const response = await page.goto(url, { waitUntil: 'load' });
      checkResponse('form-post-nojs', response);
      if (count.posts) problems.push(`${where('form-post-nojs')}: posted with JavaScript off`);
      if (!(await page.isVisible('noscript p'))) problems.push(`${where('form-post-nojs')}: no explanation shown`);
      if (!(await page.isVisible('#form_post button[type=submit]'))) problems.push(`${where('form-post-nojs')}: no Continue button`);
      await capture(page, tenant, lang, 'form-post-nojs', 200, { noScript: true });
      await page.click('#form_post button[type=submit]', { noWaitAfter: true });
      const fields = await within(first, 10000);
      if (!fields) problems.push(`${where('form-post-nojs')}: Continue did not post the form`);
      else checkFields('form-post-nojs', fields);
    } finally {
      await context.close();
    }
  }
}

async function tenantPages(browser, tenant, lang) {
  const context = await browser.newContext({ locale: LANGS[lang] });
  const page = await context.newPage();
  track(page, tenant, lang);
  const go = (url) => page.goto(url, { waitUntil: 'load' });

  await go(authorize(tenant));
  await capture(page, tenant, lang, 'sign-in', 200);
  await signIn(page, 'alice', 'not-the-password');
  await capture(page, tenant, lang, 'sign-in-failed', 401);
  for (let i = 0; i < 3; i++) await signIn(page, `locked-${lang}`, 'guess');
  await capture(page, tenant, lang, 'locked-out', 429);
  await signIn(page, 'alice', 'wonderland');
  await capture(page, tenant, lang, 'consent', 200);
  await Promise.all([page.waitForNavigation(), page.click('button[value=allow]')]);

  await go(authorize(tenant, '&prompt=select_account'));
  await capture(page, tenant, lang, 'account-chooser', 200);

  await go(`${BASE}/${tenant}/logout?client_id=photos`);
  await capture(page, tenant, lang, 'logout-confirm', 200);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  await capture(page, tenant, lang, 'signed-out', 200);

  await formPostPages(browser, tenant, lang);

  await go(`${BASE}/${tenant}/authorize?client_id=nobody&response_type=code`);
  await capture(page, tenant, lang, 'error-unknown-client', 400);
  await go(authorize(tenant).replace(/redirect_uri=[^&]*/, 'redirect_uri=https%3A%2F%2Fevil.example%2F'));
  await capture(page, tenant, lang, 'error-redirect-uri', 400);
  await go(`${BASE}/${tenant}/authorize?client_id=photos&client_id=photos`);
  await capture(page, tenant, lang, 'error-bad-request', 400);

  // The database stops answering (its write lock held elsewhere). SQLite
  // writes go through sesame's one writer thread, which commits them in
  // batches of at most 64 and, while the lock is held, fails each batch
  // after SQLite's busy timeout (5 s); reads (WAL) go on. So a sign-in,
  // whose write is the only one queued, is a server error (500) after 5 s
  // or so; and a page that writes behind a long queue of writes (a few
  // hundred requests sent just before it) gets no answer within a
  // request's deadline (11 s) and is unavailable (503).
  await go(authorize(tenant));
  let release = await lockDatabase();
  try {
    await page.fill('#username', 'alice');
    await page.fill('#password', 'wonderland');
    await Promise.all([page.waitForNavigation({ timeout: 30000 }), page.click('button[type=submit]')]);
  } finally {
    release();
  }
  await capture(page, tenant, lang, 'error-server', 500);

  release = await lockDatabase();
  let flood;
  try {
    flood = Array.from({ length: FLOOD }, (_, i) =>
      fetch(authorize(tenant).replace('state=st', `state=flood-${i}`), { redirect: 'manual' })
        .then(async (r) => { await r.arrayBuffer(); return r.status; })
        .catch(() => 0));
    await new Promise((r) => setTimeout(r, 1000));
    await page.goto(authorize(tenant), { waitUntil: 'load', timeout: 60000 });
  } finally {
    release();
  }
  const statuses = await Promise.all(flood);
  if (!statuses.includes(503)) problems.push(`${tenant}/${lang}/error-unavailable: no request of the flood was unavailable`);
  await capture(page, tenant, lang, 'error-unavailable', 503);
  await context.close();
}

// A hung step fails the run rather than hanging it.
const WATCHDOG_SECONDS = Number(process.env.SHOTS_TIMEOUT || 900);
setTimeout(() => {
  console.error(`screenshots: not done after ${WATCHDOG_SECONDS}s; ${shots} screenshots, problems so far:`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}, WATCHDOG_SECONDS * 1000).unref();

(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  try {
    for (const tenant of Object.keys(TENANTS)) {
      for (const lang of Object.keys(LANGS)) {
        await tenantPages(browser, tenant, lang);
      }
    }
  } finally {
    await browser.close();
  }
  console.log(`${shots} screenshots in ${OUT}`);
  if (problems.length) {
    console.log(`${problems.length} problem(s):`);
    for (const p of problems) console.log(`  ${p}`);
    process.exit(1);
  }
  console.log('axe: no serious or critical violations; no CSP violations');
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
