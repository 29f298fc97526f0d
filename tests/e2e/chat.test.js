// chat.test.js - the OpenAI chat path end to end: the official `openai` client talks to
// warp2api, which talks to fakewarp. Each assertion is on what a client sees, plus, where
// the mapping matters, on what reached fakewarp (its request log).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack } from './harness.js';

let s, client;
const MODEL = 'claude-4-5-sonnet';
const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', description: '' }, unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['city'],
    },
  },
};

before(async () => {
  s = await startStack({ accounts: [{ email: 'alice@example.com' }] });
  client = new OpenAI({ baseURL: s.baseURL, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { await s.stop(); });

async function lastRequest() {
  const reqs = await s.fwGet('/_fakewarp/requests?email=alice@example.com');
  return reqs[reqs.length - 1];
}

async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

test('non-streamed text answer', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hello' }] });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(r.choices[0].message.content, 'You said: hello');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.ok(r.usage.total_tokens > 0);
});

test('streamed text arrives as several chunks, role first, then [DONE]', async () => {
  const chunks = await collect(await client.chat.completions.create({
    model: MODEL, stream: true, messages: [{ role: 'user', content: '[[fw:text chunks=4 size=5]] hi' }],
  }));
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(text.length, 20);
  assert.ok(chunks.filter((c) => c.choices[0]?.delta?.content).length >= 4, 'one chunk per upstream event');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  assert.ok(chunks.every((c) => c.id === chunks[0].id));
});

test('usage in a final chunk with stream_options.include_usage', async () => {
  const chunks = await collect(await client.chat.completions.create({
    model: MODEL, stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: '[[fw:token_usage in=123 out=45]] count me' }],
  }));
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.prompt_tokens, 123);
  assert.equal(last.usage.completion_tokens, 45);
  assert.equal(last.usage.total_tokens, 168);
  // Without token_usage from Warp the numbers are estimated, and say so.
  const est = await collect(await client.chat.completions.create({
    model: MODEL, stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'estimate me' }],
  }));
  assert.equal(est.at(-1).usage.estimated, true);
  assert.ok(est.at(-1).usage.completion_tokens > 0);
});

test('reasoning streams as reasoning_content before the answer', async () => {
  const chunks = await collect(await client.chat.completions.create({
    model: MODEL, stream: true, messages: [{ role: 'user', content: '[[fw:reasoning 3]] think' }],
  }));
  const kinds = chunks.flatMap((c) => {
    const d = c.choices[0]?.delta ?? {};
    return [d.reasoning_content ? 'r' : '', d.content ? 't' : ''].filter(Boolean);
  });
  assert.ok(kinds.includes('r') && kinds.includes('t'));
  assert.ok(kinds.lastIndexOf('r') < kinds.indexOf('t'), 'reasoning comes first');
  const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: '[[fw:reasoning]] think' }] });
  assert.ok(r.choices[0].message.reasoning_content.length > 0);
});

test('two-turn tool calling round trip', async () => {
  const messages = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: '[[fw:tools n=1]] weather in Paris?' },
  ];
  const r1 = await client.chat.completions.create({ model: MODEL, messages, tools: [weather] });
  const msg = r1.choices[0].message;
  assert.equal(r1.choices[0].finish_reason, 'tool_calls');
  assert.equal(msg.tool_calls.length, 1);
  const call = msg.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.equal(typeof JSON.parse(call.function.arguments).city, 'string');
  // The MCP tool reached Warp with its schema intact (empty description kept).
  const req1 = await lastRequest();
  const tools = req1.request.mcp_context.tools;
  assert.equal(tools[0].name, 'get_weather');
  assert.deepEqual(tools[0].input_schema, weather.function.parameters);

  messages.push(msg, { role: 'tool', tool_call_id: call.id, content: 'sunny, 21 C' });
  const r2 = await client.chat.completions.create({ model: MODEL, messages, tools: [weather] });
  assert.equal(r2.choices[0].finish_reason, 'stop');
  assert.match(r2.choices[0].message.content, /sunny, 21 C/);
  // At the wire: the result is the input (request side field 12), the call is in history,
  // and the system prompt still travels although the last message is a tool result.
  const req2 = (await lastRequest()).request;
  const input = req2.input.user_inputs.inputs[0].tool_call_result;
  assert.equal(input.tool_call_id, call.id);
  assert.equal(input.call_mcp_tool.success.results[0].text.text, 'sunny, 21 C');
  const hist = req2.task_context.tasks[0].messages;
  const histCall = hist.find((m) => m.tool_call?.call_mcp_tool);
  assert.equal(histCall.tool_call.tool_call_id, call.id);
  assert.equal(histCall.tool_call.call_mcp_tool.name, 'get_weather');
  assert.match(JSON.stringify(req2), /You are terse\./);
});

test('parallel tool calls get distinct indexes and ids (streamed)', async () => {
  const chunks = await collect(await client.chat.completions.create({
    model: MODEL, stream: true, tools: [weather],
    messages: [{ role: 'user', content: '[[fw:tools n=3]] three cities' }],
  }));
  const calls = new Map();
  for (const c of chunks) for (const tc of c.choices[0]?.delta?.tool_calls ?? []) {
    const cur = calls.get(tc.index) ?? { id: '', name: '', args: '' };
    if (tc.id) cur.id = tc.id;
    if (tc.function?.name) cur.name += tc.function.name;
    if (tc.function?.arguments) cur.args += tc.function.arguments;
    calls.set(tc.index, cur);
  }
  assert.deepEqual([...calls.keys()].sort(), [0, 1, 2]);
  assert.equal(new Set([...calls.values()].map((c) => c.id)).size, 3);
  for (const c of calls.values()) { assert.equal(c.name, 'get_weather'); JSON.parse(c.args); }
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');
});

test('tool_choice none sends no tools', async () => {
  await client.chat.completions.create({ model: MODEL, tools: [weather], tool_choice: 'none',
    messages: [{ role: 'user', content: 'no tools please' }] });
  const req = (await lastRequest()).request;
  assert.equal(req.mcp_context?.tools?.length ?? 0, 0);
});

test('an image part travels as an image in the input context', async () => {
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
  const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [
    { type: 'text', text: 'what is this?' },
    { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
  ] }] });
  assert.equal(r.choices[0].finish_reason, 'stop');
  const req = (await lastRequest()).request;
  const img = req.input.context.images[0];
  assert.equal(img.mime_type, 'image/png');
  assert.equal(img.data, png);
  // A remote image URL cannot be forwarded: a clear 400 naming the field.
  await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [
    { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] }),
  (e) => e.status === 400 && /image/i.test(e.message));
});

test('finish reasons: length for max_token_limit and context_window_exceeded', async () => {
  for (const reason of ['max_token_limit', 'context_window_exceeded']) {
    const r = await client.chat.completions.create({ model: MODEL,
      messages: [{ role: 'user', content: `[[fw:finish ${reason}]] long` }] });
    assert.equal(r.choices[0].finish_reason, 'length', reason);
  }
});

test('models list comes from the catalog; unknown model is 404 model_not_found', async () => {
  const list = await client.models.list();
  const ids = list.data.map((m) => m.id);
  assert.ok(ids.includes('claude-4-5-sonnet') && ids.includes('auto'));
  assert.ok(list.data.every((m) => m.object === 'model'));
  await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 404 && e.code === 'model_not_found');
});

test('malformed JSON, wrong types and missing fields are 400 in OpenAI form', async () => {
  const post = (body) => fetch(`${s.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  for (const [body, param] of [
    ['{"model":', null],
    ['{"model":"auto","messages":"hello"}', 'messages'],
    ['{"model":"auto","messages":[{"role":"user","content":5}]}', 'messages[0].content'],
    ['{"model":"auto","messages":[{"role":"wizard","content":"x"}]}', 'messages[0].role'],
    ['{"model":"auto","messages":[]}', 'messages'],
    ['{"model":"auto","stream":"yes","messages":[{"role":"user","content":"x"}]}', 'stream'],
  ]) {
    const r = await post(body);
    assert.equal(r.status, 400, body);
    const e = (await r.json()).error;
    assert.equal(e.type, 'invalid_request_error');
    assert.equal(typeof e.message, 'string');
    if (param) assert.equal(e.param, param, body);
  }
});
