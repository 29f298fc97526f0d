// failover.test.js - what a client sees when accounts fail: failover before the first
// byte, 429 with Retry-After when every account is out, upstream cancelled on abort.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack, sleep } from './harness.js';

let s, client;
const MODEL = 'claude-4-5-sonnet';
const A = 'alice@example.com', B = 'bob@example.com', C = 'carl@example.com';

before(async () => {
  s = await startStack({ accounts: [{ email: A }, { email: B }, { email: C }], env: { POOL_SELECTION: 'lru' } });
  client = new OpenAI({ baseURL: s.baseURL, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { await s.stop(); });

const served = async (email) => (await s.fwGet(`/_fakewarp/requests?email=${email}`)).length;

test('a quota-exhausted account fails over to a healthy one; the client sees no error', async () => {
  await s.fwPost('/_fakewarp/scenario', { email: A, scenario: '[[fw:quota]]' });
  // Whichever account the pool picks first, A must be tried at most once: after its
  // 429 the pool parks it until Warp's reset, and every answer comes from B.
  for (let i = 0; i < 4; i++) {
    const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `q${i}` }] });
    assert.equal(r.choices[0].message.content, `You said: q${i}`);
  }
  assert.ok(await served(A) <= 1, 'A not selected again after its quota error');
  assert.ok(await served(B) + await served(C) >= 3);
});

test('in-stream quota (finished{quota_limit}) before any content also fails over', async () => {
  await s.fwPost('/_fakewarp/scenario', { email: B, scenario: '[[fw:quota_stream]]' });
  const before = await served(B);
  for (let i = 0; i < 4; i++) {
    const st = await client.chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: `s${i}` }] });
    let text = '';
    for await (const c of st) text += c.choices[0]?.delta?.content ?? '';
    assert.equal(text, `You said: s${i}`);
  }
  assert.ok(await served(B) - before <= 1, 'B not selected again after its in-stream quota error');
});

test('all accounts exhausted: 429 with Retry-After and a message that says so', async () => {
  await s.fwPost('/_fakewarp/scenario', { email: A, scenario: '[[fw:quota]]' });
  await s.fwPost('/_fakewarp/scenario', { email: B, scenario: '[[fw:quota]]' });
  await s.fwPost('/_fakewarp/scenario', { email: C, scenario: '[[fw:quota]]' });
  const r = await fetch(`${s.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'anyone?' }] }) });
  assert.equal(r.status, 429);
  const ra = Number(r.headers.get('retry-after'));
  assert.ok(Number.isInteger(ra) && ra > 0, `Retry-After ${r.headers.get('retry-after')}`);
  const e = (await r.json()).error;
  assert.match(e.message, /quota|exhausted/i);
});
