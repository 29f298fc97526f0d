// abort.test.js - a client that goes away cancels the upstream stream at once, and the
// account is released for the next request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack, sleep } from './harness.js';

let s, client;
before(async () => {
  s = await startStack({ accounts: [{ email: 'carol@example.com' }] });
  client = new OpenAI({ baseURL: s.baseURL, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { await s.stop(); });

test('aborting mid-stream: fakewarp sees the stream abandoned within 100 ms', async () => {
  const ac = new AbortController();
  const st = await client.chat.completions.create({ model: 'auto', stream: true,
    messages: [{ role: 'user', content: '[[fw:text chunks=200 size=8 pace_ms=50]] long answer' }] }, { signal: ac.signal });
  let got = 0, abortedAt = 0;
  try {
    for await (const c of st) {
      if (c.choices[0]?.delta?.content && ++got === 3) { abortedAt = Date.now(); ac.abort(); }
    }
  } catch (e) {
    assert.ok(ac.signal.aborted, `stream failed before the abort: ${e.message}`);
  }
  assert.equal(got, 3, 'no content after the abort');
  let stats;
  for (let i = 0; i < 40; i++) {
    stats = await s.fwGet('/_fakewarp/stats');
    if (stats.abandoned_streams.length) break;
    await sleep(25);
  }
  assert.equal(stats.abandoned_streams.length, 1, 'upstream stream abandoned');
  const lag = stats.abandoned_streams[0].noticed_ms - abortedAt;
  assert.ok(lag <= 100, `upstream cancelled ${lag} ms after the client aborted`);
  assert.equal(stats.streams_open, 0);
  // The account was released: the single account serves the next request at once.
  const r = await client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'next' }] });
  assert.equal(r.choices[0].message.content, 'You said: next');
});
