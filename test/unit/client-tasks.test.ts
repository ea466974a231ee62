// The client's task plumbing without VS Code: the queue (order, concurrency, cancelling waiting
// and running tasks), JSON-lines splitting, and the worker process manager's outcomes and its
// cancel → SIGTERM → SIGKILL escalation (with small fake workers).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { LineSplitter, parseWorkerLine } from '../../client/tasks/lines';
import { TaskQueue } from '../../client/tasks/queue';
import { WorkerProcess } from '../../client/tasks/workerProcess';
import type { TaskEvent } from '../../core/pipeline/events';

const dir = mkdtempSync(join(tmpdir(), 'darkslim-client-tasks-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('LineSplitter', () => {
  test('joins chunks and splits lines, CRLF too', () => {
    const s = new LineSplitter();
    assert.deepEqual(s.push('{"a"'), []);
    assert.deepEqual(s.push(':1}\n{"b":2}\r\npart'), ['{"a":1}', '{"b":2}']);
    assert.deepEqual(s.flush(), ['part']);
    assert.deepEqual(s.flush(), []);
  });
  test('worker lines are events or text', () => {
    assert.deepEqual(parseWorkerLine(''), undefined);
    assert.deepEqual(parseWorkerLine('hello'), { text: 'hello' });
    assert.deepEqual(parseWorkerLine('{broken'), { text: '{broken' });
    const p = parseWorkerLine('{"type":"progress","task":"prune","time":1,"done":1,"total":2}');
    assert.ok(p && 'event' in p && p.event.type === 'progress');
  });
});

describe('TaskQueue', () => {
  test('runs one task at a time, in order', async () => {
    const q = new TaskQueue<string>();
    const log: string[] = [];
    const job = (name: string, ms: number) => async () => { log.push(`start ${name}`); await sleep(ms); log.push(`end ${name}`); return name; };
    const a = q.enqueue('A', 'a', job('A', 30));
    const b = q.enqueue('B', 'b', job('B', 5));
    assert.deepEqual(q.list().map((e) => [e.label, e.state]), [['A', 'running'], ['B', 'queued']]);
    assert.equal(q.find('b')?.label, 'B');
    assert.deepEqual(await a.outcome, { state: 'done', result: 'A' });
    assert.deepEqual(await b.outcome, { state: 'done', result: 'B' });
    assert.deepEqual(log, ['start A', 'end A', 'start B', 'end B']);
    assert.equal(q.size, 0);
  });

  test('a waiting task cancelled never runs; a running one sees the abort', async () => {
    const q = new TaskQueue<string>();
    let ranB = false;
    const a = q.enqueue('A', 'a', (signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve('stopped'))));
    const b = q.enqueue('B', 'b', async () => { ranB = true; return 'B'; });
    assert.ok(q.cancel(b.entry.id));
    assert.deepEqual(await b.outcome, { state: 'cancelled' });
    assert.ok(q.cancel(a.entry.id));
    const oa = await a.outcome;
    assert.equal(oa.state, 'cancelled');
    assert.equal(ranB, false);
    assert.equal(q.cancel(12345), false);
  });

  test('failures are outcomes, and the next task still runs', async () => {
    const q = new TaskQueue<string>();
    const a = q.enqueue('A', 'a', async () => { throw new Error('boom'); });
    const b = q.enqueue('B', 'b', async () => 'B');
    const oa = await a.outcome;
    assert.equal(oa.state, 'failed');
    assert.equal((oa.error as Error).message, 'boom');
    assert.equal((await b.outcome).state, 'done');
  });

  test('concurrency and classify', async () => {
    const q = new TaskQueue<{ ok: boolean }>(2);
    const a = q.enqueue('A', 'a', async () => { await sleep(20); return { ok: false }; }, (r) => (r.ok ? 'done' : 'failed'));
    const b = q.enqueue('B', 'b', async () => ({ ok: true }), (r) => (r.ok ? 'done' : 'failed'));
    assert.equal(q.list().filter((e) => e.state === 'running').length, 2);
    assert.equal((await a.outcome).state, 'failed');
    assert.equal((await b.outcome).state, 'done');
  });

  test('progress reports and change events', async () => {
    const q = new TaskQueue<void>();
    let changes = 0;
    q.onDidChange(() => changes++);
    const a = q.enqueue('A', 'a', async (_s, entry) => { q.report(entry.id, { message: 'half', fraction: 0.5 }); assert.equal(q.list()[0].message, 'half'); });
    await a.outcome;
    assert.ok(changes >= 4);
  });
});

function fakeWorker(name: string, body: string): string {
  const file = join(dir, `${name}.js`);
  writeFileSync(file, `
const ev = (e) => process.stdout.write(JSON.stringify({ task: 'fake', time: Date.now(), ...e }) + '\\n');
let buf = '';
let request;
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    const msg = JSON.parse(line);
    if (!request) { request = msg; onRequest(msg); } else if (msg.type === 'cancel') onCancel();
  }
});
let onCancel = () => {};
function onRequest(req) { ${body} }
`);
  return file;
}

describe('WorkerProcess', () => {
  test('events stream in; done is the outcome', async () => {
    const path = fakeWorker('ok', `ev({ type: 'start', total: 2, info: { kind: req.kind } }); ev({ type: 'progress', done: 1, total: 2 }); console.log('noise'); console.error('a warning'); ev({ type: 'done', cancelled: false, seconds: 0, outputs: { x: 'y' }, summary: {} }); process.exit(0);`);
    const w = new WorkerProcess({ kind: 'export', args: { cfg: 'a.cfg' } }, { workerPath: path });
    const events: TaskEvent[] = [];
    const text: string[] = [];
    w.onEvent((e) => events.push(e));
    w.onText((l, s) => text.push(`${s}:${l}`));
    const o = await w.run();
    assert.equal(o.status, 'done');
    assert.deepEqual(o.done?.outputs, { x: 'y' });
    assert.deepEqual(events.map((e) => e.type), ['start', 'progress', 'done']);
    assert.ok(events[0].type === 'start' && events[0].info.kind === 'export');
    assert.deepEqual(text.sort(), ['stderr:a warning', 'stdout:noise']);
  });

  test('an error event is the failure message', async () => {
    const path = fakeWorker('err', `ev({ type: 'error', message: 'layer 12 has no weights' }); process.exit(1);`);
    const o = await new WorkerProcess({ kind: 'export', args: { cfg: 'a.cfg' } }, { workerPath: path }).run();
    assert.equal(o.status, 'failed');
    assert.equal(o.error, 'layer 12 has no weights');
  });

  test('a crash without events is a failure naming the exit and the last stderr', async () => {
    const path = fakeWorker('crash', `console.error('Error: native module failed'); process.exit(3);`);
    const o = await new WorkerProcess({ kind: 'export', args: { cfg: 'a.cfg' } }, { workerPath: path }).run();
    assert.equal(o.status, 'failed');
    assert.match(o.error ?? '', /exit code 3.*native module failed/s);
  });

  test('a cooperative worker stops on the cancel line', async () => {
    const path = fakeWorker('coop', `ev({ type: 'start', total: 1, info: {} }); const t = setInterval(() => {}, 1000); onCancel = () => { clearInterval(t); ev({ type: 'done', cancelled: true, seconds: 0, outputs: {}, summary: {} }); process.exit(130); };`);
    const c = new AbortController();
    const w = new WorkerProcess({ kind: 'train', args: { cfg: 'a.cfg', data: 'd' } }, { workerPath: path, graceMs: 5000 });
    w.onEvent((e) => { if (e.type === 'start') c.abort(); });
    const t0 = Date.now();
    const o = await w.run(c.signal);
    assert.equal(o.status, 'cancelled');
    assert.equal(o.exitCode, 130);
    assert.ok(Date.now() - t0 < 4000);
  });

  test('a stuck worker gets SIGTERM after the grace period, then SIGKILL', async () => {
    const path = fakeWorker('stuck', `process.on('SIGTERM', () => {}); ev({ type: 'start', total: 1, info: {} }); setInterval(() => {}, 1000);`);
    const w = new WorkerProcess({ kind: 'prune', args: { cfg: 'a.cfg' } }, { workerPath: path, graceMs: 100, killMs: 200 });
    w.onEvent((e) => { if (e.type === 'start') w.cancel(); });
    const o = await w.run();
    assert.equal(o.status, 'cancelled');
    assert.equal(o.signal, 'SIGKILL');
  });

  test('a missing worker script fails cleanly', async () => {
    const o = await new WorkerProcess({ kind: 'prune', args: { cfg: 'a.cfg' } }, { workerPath: join(dir, 'missing.js') }).run();
    assert.equal(o.status, 'failed');
    assert.match(o.error ?? '', /without a result|Cannot find module/);
  });
});
