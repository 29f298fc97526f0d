// limits.test.js - client keys, body caps and every upstream timeout, each with its own
// clear error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack, blackhole } from './harness.js';

let s, hole, client;
const KEY = 'sk-test-key-1';
before(async () => {
  hole = await blackhole();
  s = await startStack({
    accounts: [{ email: 'dave@example.com' }],
    env: {
      API_KEYS: `${KEY},sk-other`, MAX_BODY_BYTES: '64K', MAX_ATTEMPTS: '1',
      WARP_FIRST_EVENT_TIMEOUT: '0.5', WARP_IDLE_TIMEOUT: '0.5', WARP_TOTAL_TIMEOUT: '2',
      WARP_CONNECT_TIMEOUT: '0.5', FAILURE_THRESHOLD: '100',
    },
  });
  client = new OpenAI({ baseURL: s.baseURL, apiKey: KEY, maxRetries: 0 });
});
after(async () => { await s.stop(); hole.close(); });

test('invalid or missing API key is 401 invalid_api_key; both header forms work', async () => {
  const bad = new OpenAI({ baseURL: s.baseURL, apiKey: 'sk-wrong', maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 401 && e.code === 'invalid_api_key');
  const none = await fetch(`${s.baseURL}/models`);
  assert.equal(none.status, 401);
  assert.equal((await none.json()).error.type, 'authentication_error');
  const xkey = await fetch(`${s.baseURL}/models`, { headers: { 'x-api-key': 'sk-other' } });
  assert.equal(xkey.status, 200);
  const r = await client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(r.choices[0].message.content, 'You said: hi');
});

test('an oversize body is 413 in OpenAI form', async () => {
  const big = 'x'.repeat(100 * 1024);
  await assert.rejects(client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: big }] }),
    (e) => e.status === 413 && e.error?.type === 'invalid_request_error');
});

async function expectTimeout(content, code) {
  await assert.rejects(client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content }] }),
    (e) => { assert.equal(e.status, 504, e.message); assert.equal(e.code, code, e.message); return true; });
}

test('first-event timeout', () => expectTimeout('[[fw:stall first_ms=3000]] wait', 'first_event_timeout'));
test('idle timeout between events', () => expectTimeout('[[fw:stall between_ms=3000 after=3]] wait', 'idle_timeout'));
test('total timeout', () => expectTimeout('[[fw:text chunks=100 size=4 pace_ms=100]] slow', 'total_timeout'));

test('an idle timeout after content was streamed ends the stream with an error chunk', async () => {
  const st = await client.chat.completions.create({ model: 'auto', stream: true,
    messages: [{ role: 'user', content: '[[fw:text chunks=10 size=4]] [[fw:stall between_ms=3000 after=8]] x' }] });
  let text = '', err;
  try { for await (const c of st) text += c.choices[0]?.delta?.content ?? ''; } catch (e) { err = e; }
  assert.ok(text.length > 0, 'some content arrived');
  assert.ok(err, 'the stream ended with an error, not silently');
  assert.match(String(err.message), /timeout/i);
});

test('connect timeout (an upstream that never accepts)', async () => {
  // Tokens still come from fakewarp (securetoken route); only the AI host is the hole.
  const t = await startStack({
    accounts: [{ email: 'erin@example.com' }],
    env: { MAX_ATTEMPTS: '1', WARP_CONNECT_TIMEOUT: '0.5', REFRESH_ENDPOINT: 'securetoken',
      WARP_BASE_URL: `http://127.0.0.1:${hole.port}` },
  });
  try {
    const c = new OpenAI({ baseURL: t.baseURL, apiKey: 'x', maxRetries: 0 });
    await assert.rejects(c.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] }),
      (e) => { assert.equal(e.code, 'connect_timeout', `${e.status} ${e.code} ${e.message}`); assert.equal(e.status, 504); return true; });
  } finally { await t.stop(); }
});
