// meet.test.mjs: K8 through XEP-0483 against a Prosody that loads a stand-in provider
// (fixtures/mod_meet_xep0483.lua, Jitsi only): the server's <invite> URL is returned, its error
// mapped, a web+jitsi: handler prefix dropped, and a service the server does not list falls
// back to the configured template.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway } from '../harness/gateway.mjs';
import { request, bearer } from '../harness/http.mjs';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
let prosody, gw, token;
const meet = (p) => request('GET', `${gw.url}/sparkweb/api/rest/meet${p}`, { headers: bearer(token) });

before(async () => {
  prosody = await startProsody({
    extraModules: ['meet_xep0483'],
    extraConfig: `plugin_paths = { ${JSON.stringify(fixtures)} }\n`,
  });
  await prosody.register('alice', 'alice-meet-pw');
  gw = await startGateway({ prosody, env: { SPARKGATE_MEET_URL_TEMPLATE: 'https://tpl.example/{service}/{id}' } });
  const r = await request('POST', `${gw.url}/sparkweb/api/rest/login/alice`, { body: 'alice-meet-pw' });
  assert.equal(r.status, 200, r.text);
  token = r.json.token;
});

after(async () => {
  const res = gw ? await gw.stop() : null;
  if (prosody) await prosody.stop();
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

test('K8: the server\'s XEP-0483 invite URL wins over the template', async () => {
  const r = await meet('/jitsi/standup');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { url: 'https://meet.test/standup' });
  assert.match(gw.log(), /ev=meet_discovered xep0483=1 jitsi=1 galene=0/);
  const h = await meet('/jitsi/handler');
  assert.deepEqual(h.json, { url: 'https://meet.test/handler' }, 'web+jitsi: prefix dropped');
});

test('K8: the server\'s error is mapped (not-acceptable 400) with its text', async () => {
  const r = await meet('/jitsi/busy');
  assert.equal(r.status, 400, r.text);
  assert.match(r.json.resource, /not-acceptable: Meeting is in use/);
});

test('K8: a service the server does not list uses the template', async () => {
  const r = await meet('/galene/team');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { url: 'https://tpl.example/galene/team' });
});
