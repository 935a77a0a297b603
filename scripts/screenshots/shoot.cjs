// Drives Debian's Chromium through every page of a running sesame (see
// ../screenshots.sh, which starts it with examples/branding.yaml), saves a
// PNG per page, tenant, language, viewport and colour scheme, and runs
// axe-core on each. Fails on a serious or critical violation, or on a
// Content-Security-Policy violation reported by the browser.
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

/** Screenshots and axe results of the page as it is, in every viewport and scheme. */
async function capture(page, tenant, lang, name, expectStatus) {
  if (expectStatus !== undefined && page.lastStatus !== expectStatus) {
    problems.push(`${tenant}/${lang}/${name}: status ${page.lastStatus}, expected ${expectStatus}`);
  }
  const htmlLang = await page.evaluate(() => document.documentElement.lang);
  if (htmlLang !== lang) problems.push(`${tenant}/${lang}/${name}: <html lang="${htmlLang}">`);
  for (const vp of VIEWPORTS) {
    for (const scheme of SCHEMES) {
      await page.setViewportSize({ width: vp.width, height: vp.height });
      await page.emulateMedia({ colorScheme: scheme });
      const file = path.join(OUT, `${tenant}-${lang}-${name}-${vp.name}-${scheme}.png`);
      await page.screenshot({ path: file, fullPage: true });
      shots++;
      const hasAxe = await page.evaluate(() => typeof window.axe !== 'undefined');
      if (!hasAxe) await page.evaluate(AXE + ';0');
      const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
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

  // The form post page (response_mode=form_post; prompt=none without a
  // session is login_required, posted back). Its script posts the form at
  // once: the post is answered 204, so the page stays to be captured, and a
  // post that never comes (a script the CSP blocked) is a problem.
  await page.route('**/jwks', (route) =>
    route.request().method() === 'POST' ? route.fulfill({ status: 204 }) : route.continue());
  const post = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/jwks'), { timeout: 10000 })
    .catch(() => problems.push(`${tenant}/${lang}/form-post: the form was not posted by its script`));
  const shown = await go(authorize(tenant, '&response_mode=form_post&prompt=none'));
  if (shown.status() !== 200) problems.push(`${tenant}/${lang}/form-post: status ${shown.status()}, expected 200`);
  await post;
  // (The 204 of the post is the last navigation's status: not checked again.)
  await capture(page, tenant, lang, 'form-post');
  await page.unroute('**/jwks');

  await go(`${BASE}/${tenant}/authorize?client_id=nobody&response_type=code`);
  await capture(page, tenant, lang, 'error-unknown-client', 400);
  await go(authorize(tenant).replace(/redirect_uri=[^&]*/, 'redirect_uri=https%3A%2F%2Fevil.example%2F'));
  await capture(page, tenant, lang, 'error-redirect-uri', 400);
  await go(`${BASE}/${tenant}/authorize?client_id=photos&client_id=photos`);
  await capture(page, tenant, lang, 'error-bad-request', 400);

  // The database stops answering: a sign-in's write waits for SQLite's lock
  // and fails (server error), and meanwhile a page that needs the database
  // finds its only connection taken (unavailable, 503).
  await go(authorize(tenant));
  const loginUrl = page.url();
  const release = await lockDatabase();
  try {
    await page.fill('#username', 'alice');
    await page.fill('#password', 'wonderland');
    const posted = page.waitForNavigation({ timeout: 30000 });
    await page.click('button[type=submit]', { noWaitAfter: true });
    await new Promise((r) => setTimeout(r, 500));
    const other = await context.newPage();
    track(other, tenant, lang);
    await other.goto(loginUrl, { waitUntil: 'load' });
    await capture(other, tenant, lang, 'error-unavailable', 503);
    await posted;
    await capture(page, tenant, lang, 'error-server', 500);
  } finally {
    release();
  }
  await context.close();
}

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
