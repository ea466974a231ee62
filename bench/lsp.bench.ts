// Issue "Language server": didChange → publishDiagnostics latency on yolov4.cfg (median of 100),
// and 1,000 rapid edits: hover latency right after them and the server's heap before/after.
// The server runs as editors run it: bundled by esbuild, a child process speaking JSON-RPC on
// stdio (with --expose-gc, so darkslim/serverStatus can collect garbage before reading its heap).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Hover, MarkupContent, TextDocumentContentChangeEvent } from 'vscode-languageserver/node';
import { analyzeCfg } from '../core/darknet/graph';
import { corpusPath, HAS_CORPUS } from '../test/helpers/corpus';
import { repoRoot } from '../test/helpers/root';
import { linesMatching, spawnClient, type TestClient } from '../test/unit/lsp-harness';
import { median, percentile, printTable, timeRuns, writeResult } from './util';

const LATENCY_EDITS = 100;
const WARMUP_EDITS = 30;
const RAPID_EDITS = 1000;
const BURSTS = 5;
const TYPING_PAUSE_MS = 50;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The server's heap after garbage collection, once pending work (debounced analyses) is done. */
async function settledHeap(client: TestClient): Promise<number> {
  await sleep(300);
  await client.status(true);
  const status = await client.status(true);
  if (!status.gcRan) throw new Error('the server did not run with --expose-gc');
  return status.heapUsed;
}

/** dist/server.js as `npm run build` makes it, built fresh into bench/.tmp. */
function buildServer(): string {
  const root = repoRoot();
  const out = join(root, 'bench', '.tmp', 'server.js'); // the name lets server.ts see it is the main module
  const r = spawnSync(join(root, 'node_modules', '.bin', 'esbuild'), ['server/server.ts', '--bundle', '--platform=node',
    '--format=cjs', '--target=node20', '--external:vscode', `--outfile=${out}`, '--log-level=warning'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('esbuild failed');
  return out;
}

/** An edit of one filters= value: shapes downstream change, so every analysis does real work. */
function filtersEdit(line: number, current: string, next: string): TextDocumentContentChangeEvent {
  return { range: { start: { line, character: 8 }, end: { line, character: 8 + current.length } }, text: next };
}

async function main(): Promise<void> {
  if (!HAS_CORPUS) {
    console.log('corpus not found (../shared/corpus): nothing to benchmark');
    return;
  }
  const text = readFileSync(corpusPath('cfg/alexeyab/yolov4.cfg'), 'utf8');
  const analysisOnly = median(timeRuns(200, () => analyzeCfg(text), 50));

  const client = await spawnClient(['--expose-gc', buildServer(), '--stdio']);
  const uri = 'untitled:yolov4.cfg';
  await client.open(uri, text);
  const line = linesMatching(text, /^filters=512$/)[10];
  const values = ['512', '256', '1024', '384'];
  let current = '512';

  // 1. Latency: one edit, then wait for its diagnostics. Paced like fast typing (an edit every
  // 50 ms), and back-to-back (the next edit as soon as the diagnostics arrive, which the server
  // must treat as a burst since it cannot tell the two apart).
  const latency = async (pauseMs: number): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < WARMUP_EDITS + LATENCY_EDITS; i++) {
      if (pauseMs) await sleep(pauseMs);
      const next = values[(i + 1) % values.length];
      const version = client.version(uri) + 1;
      const published = client.nextDiagnostics(uri, version);
      const t0 = performance.now();
      await client.change(uri, [filtersEdit(line, current, next)]);
      await published;
      const dt = performance.now() - t0;
      current = next;
      if (i >= WARMUP_EDITS) out.push(dt);
    }
    return out;
  };
  const latencies = await latency(TYPING_PAUSE_MS);
  const backToBack = await latency(0);

  // 2. Bursts of 1,000 edits as fast as the client can send them, each followed at once by a hover.
  // The first burst meets a server whose didChange path the JIT has not optimised yet (as after
  // opening the editor); the next ones are the steady state of a session. Both are reported.
  const header = linesMatching(text, /^\[/)[1];
  const burst = async () => {
    const analysesBefore = (await client.status()).analyses;
    const publishedBefore = client.published.length;
    const t0 = performance.now();
    for (let i = 0; i < RAPID_EDITS; i++) {
      const next = values[(i + 2) % values.length];
      await client.change(uri, [filtersEdit(line, current, next)]);
      current = next;
    }
    const sendMs = performance.now() - t0;
    const h0 = performance.now();
    const hover = await client.request<Hover>('textDocument/hover', { textDocument: { uri }, position: { line: header, character: 2 } });
    const hoverMs = performance.now() - h0;
    if (!(hover.contents as MarkupContent).value.includes('layer 0')) throw new Error('unexpected hover');
    await client.nthDiagnostics(uri, client.version(uri), 1);
    const publishes = client.published.slice(publishedBefore).filter((p) => p.uri === uri).length;
    return { sendMs, hoverMs, analyses: (await client.status()).analyses - analysesBefore, publishes };
  };
  const cold = await burst();
  const heapBefore = await settledHeap(client);
  const bursts = [];
  for (let i = 0; i < BURSTS; i++) bursts.push(await burst());
  const heapAfter = await settledHeap(client);
  const heapChange = (heapAfter - heapBefore) / heapBefore;
  const hovers = bursts.map((b) => b.hoverMs);
  const hoverMs = median(hovers);
  const analysesDuringBurst = Math.max(...bursts.map((b) => b.analyses));
  const publishes = Math.max(...bursts.map((b) => b.publishes));

  // For comparison: a hover on an idle server.
  const idle = median(await (async () => {
    const out: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t = performance.now();
      await client.request('textDocument/hover', { textDocument: { uri }, position: { line: header, character: 2 } });
      out.push(performance.now() - t);
    }
    return out;
  })());
  await client.shutdown();

  const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`;
  const rows = [
    { measure: `didChange → publishDiagnostics, yolov4.cfg, edits ${TYPING_PAUSE_MS} ms apart (median of ${LATENCY_EDITS})`, value: `${median(latencies).toFixed(2)} ms`, target: '< 20 ms', ok: median(latencies) < 20 },
    { measure: '  p90 / max', value: `${percentile(latencies, 90).toFixed(2)} / ${Math.max(...latencies).toFixed(2)} ms`, target: '', ok: true },
    { measure: `  back-to-back edits (median of ${LATENCY_EDITS})`, value: `${median(backToBack).toFixed(2)} ms`, target: '< 20 ms', ok: median(backToBack) < 20 },
    { measure: '  analysis alone (analyzeCfg in this process, median)', value: `${analysisOnly.toFixed(2)} ms`, target: '', ok: true },
    { measure: `hover right after ${RAPID_EDITS} rapid edits (median of ${BURSTS} bursts)`, value: `${hoverMs.toFixed(2)} ms`, target: '< 50 ms', ok: hoverMs < 50 },
    { measure: '  slowest of those bursts', value: `${Math.max(...hovers).toFixed(2)} ms`, target: '', ok: true },
    { measure: '  first burst of the session (not in the median)', value: `${cold.hoverMs.toFixed(2)} ms`, target: '', ok: true },
    { measure: '  hover on an idle server (median of 50)', value: `${idle.toFixed(2)} ms`, target: '', ok: true },
    { measure: `  analyses / publishes per burst of ${RAPID_EDITS} edits (max)`, value: `${analysesDuringBurst} / ${publishes}`, target: 'coalesced', ok: analysesDuringBurst < RAPID_EDITS / 10 },
    { measure: `  time to send ${RAPID_EDITS} edits (median)`, value: `${median(bursts.map((b) => b.sendMs)).toFixed(0)} ms`, target: '', ok: true },
    { measure: 'server heap before → after the bursts (after gc)', value: `${mb(heapBefore)} → ${mb(heapAfter)} (${(heapChange * 100).toFixed(1)}%)`, target: 'within 20%', ok: Math.abs(heapChange) <= 0.2 },
  ];
  printTable('Language server (bundled, child process, JSON-RPC over stdio)', rows);
  writeResult('lsp', {
    latencyMs: {
      typing: { pauseMs: TYPING_PAUSE_MS, median: median(latencies), p90: percentile(latencies, 90), max: Math.max(...latencies), samples: latencies },
      backToBack: { median: median(backToBack), p90: percentile(backToBack, 90), max: Math.max(...backToBack), samples: backToBack },
    },
    analysisOnlyMs: analysisOnly,
    rapidEdits: { count: RAPID_EDITS, hoverMsMedian: hoverMs, idleHoverMs: idle, cold, bursts },
    heap: { before: heapBefore, after: heapAfter, change: heapChange },
    rows,
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
