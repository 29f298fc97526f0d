// wait.test.js - one account with concurrency cap 1: a second request that arrives while
// the first holds the account waits for it (LEASE_WAIT) instead of getting a 429.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack } from './harness.js';

let s, client;
const MODEL = 'claude-4-5-sonnet';

before(async () => {
  s = await startStack({ accounts: [{ email: 'solo@example.com' }] });
  client = new OpenAI({ baseURL: s.baseURL, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { await s.stop(); });

test('two concurrent completions on one account (cap 1) both succeed; one waits', async () => {
  // 4 events 150 ms apart: each answer holds the account for about 600 ms
  const ask = (n) => client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: `[[fw:text chunks=4 size=5 pace_ms=150]] q${n}` }],
  });
  const t0 = Date.now();
  const ends = [];
  const rs = await Promise.all([1, 2].map((n) => ask(n).then((r) => { ends.push(Date.now() - t0); return r; })));
  for (const r of rs) {
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.choices[0].message.content.length, 20);
  }
  // the account served them one after the other, not side by side
  ends.sort((a, b) => a - b);
  assert.ok(ends[1] - ends[0] >= 450, `second answer ${ends[1] - ends[0]} ms after the first`);
  // one upstream call each (no failover), the second only once the first had finished
  const reqs = await s.fwGet('/_fakewarp/requests?email=solo@example.com');
  assert.equal(reqs.length, 2);
  assert.ok(reqs[1].at_ms - reqs[0].at_ms >= 450, `upstream calls ${reqs[1].at_ms - reqs[0].at_ms} ms apart`);
});
