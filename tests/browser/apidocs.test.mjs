// apidocs.test.mjs: the API docs page /sparkweb/api/docs/ in headless Chromium. Swagger UI
// (npm swagger-ui-dist, served by the gateway from http.docs_assets) renders
// /sparkweb/api/openapi.json: one entry per operation of the document, an operation opens with
// its parameters and responses, and no request leaves the gateway's origin (every other request
// is blocked and recorded). Saves tests/browser/screenshots/apidocs.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startGateway } from '../harness/gateway.mjs';
import { repoRoot } from '../harness/proc.mjs';

const SHOT = path.join(repoRoot, 'tests', 'browser', 'screenshots', 'apidocs.png');
let gw, browser;

before(async () => {
  gw = await startGateway({});
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox'],
  });
});

after(async () => {
  await browser?.close();
  const res = gw ? await gw.stop() : null;
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

test('the docs page renders every operation, with no request leaving the gateway', async () => {
  const doc = JSON.parse(fs.readFileSync(path.join(repoRoot, 'web', 'api', 'openapi.json'), 'utf8'));
  const nOps = Object.values(doc.paths).reduce((n, item) => n + Object.keys(item).filter((k) => ['get', 'put', 'post', 'delete', 'patch'].includes(k)).length, 0);

  const context = await browser.newContext({ viewport: { width: 1280, height: 1400 } });
  const origin = new URL(gw.url).origin;
  const local = [];
  const external = [];
  await context.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith('data:') || new URL(u).origin === origin) {
      local.push(u);
      return route.continue();
    }
    external.push(u);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${gw.url}/sparkweb/api/docs/`);
  await page.waitForSelector('.opblock', { timeout: 20000 });
  await page.waitForFunction((n) => document.querySelectorAll('.opblock').length >= n, nOps, { timeout: 20000 });

  assert.equal(await page.locator('.opblock').count(), nOps);
  assert.match(await page.locator('.info .title').innerText(), /Sparkgate REST and SSE API/);
  // a few entries by path and method
  const summaries = await page.locator('.opblock-summary-path').allInnerTexts();
  const norm = summaries.map((s) => s.replace(/\u200b/g, '').trim());
  for (const p of ['/sparkweb/api/rest/login/{username}', '/sparkweb/sse', '/sparkweb/api/rest/groupchat/room/{roomName}/chathistory']) {
    assert.ok(norm.includes(p), `${p} not among the rendered operations`);
  }

  // open the login operation: its parameter and responses render
  const login = page.locator('#operations-Authentication-postLoginByUsername');
  await login.locator('.opblock-summary').first().click();
  await login.locator('.parameters-container').waitFor({ timeout: 10000 });
  assert.match(await login.innerText(), /username/);
  assert.match(await login.innerText(), /429/);

  fs.mkdirSync(path.dirname(SHOT), { recursive: true });
  await page.screenshot({ path: SHOT });
  assert.ok(fs.statSync(SHOT).size > 10000);

  assert.deepEqual(external, [], 'requests to other origins');
  assert.ok(local.some((u) => u.endsWith('/sparkweb/api/openapi.json')), local.join('\n'));
  assert.ok(local.some((u) => u.endsWith('/sparkweb/api/docs/assets/swagger-ui-bundle.js')));
  assert.deepEqual(errors, [], 'page errors');
  await context.close();
});
