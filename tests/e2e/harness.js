// harness.js - start fakewarp and warp2api on loopback for one test file, and stop
// them. Every process gets its own temporary directory, free ports and database, so
// test files are independent. The build directory comes from $W2A_BUILD.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';

export const BUILD = process.env.W2A_BUILD || new URL('../../build-debug', import.meta.url).pathname;

export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function waitFor(fn, what, ms = 20000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { const v = await fn(); if (v) return v; } catch (e) { last = e; }
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

function child(cmd, args, env, logfile) {
  const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks = [];
  p.stdout.on('data', (d) => chunks.push(d));
  p.stderr.on('data', (d) => chunks.push(d));
  p.log = () => Buffer.concat(chunks).toString();
  p.exited = new Promise((r) => p.on('exit', (code, sig) => r({ code, sig })));
  return p;
}

// accounts: [{email, refresh_token?, quota?, scenario?}]; env: extra warp2api settings.
export async function startStack({ accounts = [{ email: 'alice@example.com' }], env = {}, fakeArgs = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'w2a-e2e-'));
  const fwArgs = ['--port', '0', '--port-file', join(dir, 'fw.port'), ...fakeArgs];
  const accs = accounts.map((a, i) => ({ refresh_token: `rt-${i}-${a.email}`, ...a }));
  writeFileSync(join(dir, 'fakewarp.json'), JSON.stringify({ accounts: accs }));
  fwArgs.push('--config', join(dir, 'fakewarp.json'));
  const fw = child(join(BUILD, 'fakewarp'), fwArgs, {});
  const fwPort = await waitFor(() => existsSync(join(dir, 'fw.port')) &&
    Number(readFileSync(join(dir, 'fw.port'), 'utf8').trim()), 'fakewarp port');
  const fwURL = `http://127.0.0.1:${fwPort}`;
  const [port, poolPort] = [await freePort(), await freePort()];
  const wenv = {
    PORT: String(port), HOST: '127.0.0.1', POOL_SERVICE_PORT: String(poolPort),
    DATABASE_PATH: join(dir, 'accounts.db'), LOG_LEVEL: 'warning',
    WARP_BASE_URL: fwURL, FIREBASE_SECURETOKEN_URL: fwURL, FIREBASE_IDENTITY_URL: fwURL,
    W2A_ENV_FILE: join(dir, 'empty.env'), KEEPALIVE_INTERVAL: '1',
    ...env,
  };
  writeFileSync(join(dir, 'empty.env'), '');
  writeFileSync(join(dir, 'accounts.jsonl'),
    accs.map((a) => JSON.stringify({ email: a.email, refresh_token: a.refresh_token })).join('\n') + '\n');
  execFileSync(join(BUILD, 'warp2api'), ['accounts', 'import', join(dir, 'accounts.jsonl')],
    { env: { ...process.env, ...wenv }, stdio: ['ignore', 'ignore', 'pipe'] });
  const gw = child(join(BUILD, 'warp2api'), ['serve'], wenv);
  const baseURL = `http://127.0.0.1:${port}/v1`;
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 'gateway /healthz')
    .catch((e) => { throw new Error(`${e.message}\n${gw.log()}`); });
  const stack = {
    dir, fwURL, baseURL, port, poolPort, gw, fw, env: wenv,
    adminURL: `http://127.0.0.1:${poolPort}`,
    async fwGet(path) { return (await fetch(fwURL + path)).json(); },
    async fwPost(path, body) {
      const r = await fetch(fwURL + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (!r.ok) throw new Error(`fakewarp ${path}: ${r.status} ${await r.text()}`);
      return r.json();
    },
    async stop() {
      for (const p of [gw, fw]) if (p.exitCode === null) p.kill('SIGTERM');
      const [g, f] = await Promise.all([gw.exited, fw.exited]);
      const bad = [];
      // A clean exit is part of the test: sanitizer reports make the process fail.
      if (g.code !== 0) bad.push(`warp2api exited ${g.code ?? g.sig}\n${gw.log()}`);
      if (f.code !== 0) bad.push(`fakewarp exited ${f.code ?? f.sig}\n${fw.log()}`);
      rmSync(dir, { recursive: true, force: true });
      if (bad.length) throw new Error(bad.join('\n'));
    },
  };
  return stack;
}

// A TCP port whose accept queue is full, so a connect to it hangs until the client's
// connect timeout (Linux drops SYNs to a full queue). Loopback only.
export async function blackhole() {
  const py = `
import socket, sys, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)
fill = []
for _ in range(4):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(s.getsockname())
    except BlockingIOError: pass
    fill.append(c)
print(s.getsockname()[1], flush=True)
time.sleep(600)
`;
  const p = spawn('python3', ['-c', py], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    p.stdout.once('data', (d) => resolve(Number(String(d).trim())));
    p.once('exit', (c) => reject(new Error(`blackhole exited ${c}`)));
  });
  return { port, close: () => p.kill('SIGKILL') };
}
