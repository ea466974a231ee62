// End to end in a real VS Code (code-server 4.100.3 in Debian's chromium, driven by
// playwright-core) with the packaged VSIX installed, on corpus models copied into a temporary
// workspace: diagnostics in the Problems panel and the quick fix, hover shapes, "Prune this model"
// from the explorer's context menu, and the redundancy webview's heatmap and slider. Screenshots
// of every step go to .e2e/artifacts/. Finally the performance figures: activation, yolov4.cfg
// open → first diagnostics, heatmap frame time while dragging the slider on yolov4.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Frame, Page } from 'playwright-core';
import { analyzeCfg } from '../../core/darknet/graph';
import { generateSyntheticDataset } from '../../core/data/synthetic';
import { syntheticWeightsBytes } from '../../core/prune/synthetic';
import { corpusPath, NO_CORPUS } from '../helpers/corpus';
import { repoRoot } from '../helpers/root';
import { ARTIFACTS, goToLine, openFile, openVsCode, retry, runCommand, tryCommand, waitFor, type Session } from './harness';

const VSIX = join(repoRoot(), 'darkslim.vsix');
const SKIP = NO_CORPUS || (!existsSync(VSIX) ? `no ${VSIX}: run \`npm run package\` first` : false)
  || (!existsSync(join(repoRoot(), '.e2e', '.code-server-ready')) ? 'code-server is not installed: run `bash test/e2e/setup.sh`' : false);

const FASTEST = 'yolo-fastest-1.1';

/** A detector small enough to sparsity-train for two epochs in seconds (64×64, 2 classes). */
const TINY_CFG = `[net]
batch=8
subdivisions=1
width=64
height=64
channels=3
momentum=0.9
decay=0.0005
learning_rate=0.01
burn_in=4
max_batches=100
policy=steps
steps=80
scales=.1
flip=1

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[shortcut]
from=-3
activation=linear

[convolutional]
batch_normalize=1
filters=32
size=3
stride=2
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=21
activation=linear

[yolo]
mask=0,1,2
anchors=16,16, 24,24, 32,32
classes=2
num=3
jitter=.1
ignore_thresh=.6
`;
let session: Session;
let workspace: string;
let perfLog: string;
const perf: Record<string, unknown> = {};

function perfEvents(): Record<string, unknown>[] {
  if (!existsSync(perfLog)) return [];
  return readFileSync(perfLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The frame of a webview whose document has an element matching `selector`. */
async function webviewFrame(page: Page, selector: string, timeoutMs = 60_000): Promise<Frame> {
  let found: Frame | undefined;
  await waitFor(async () => {
    for (const f of page.frames()) {
      const ok = await f.evaluate((s) => !!document.querySelector(s), selector).catch(() => false);
      if (ok) { found = f; return true; }
    }
    return false;
  }, timeoutMs, () => `no webview with ${selector} appeared`);
  return found!;
}

async function bodyData(frame: Frame, key: string): Promise<string | undefined> {
  return frame.evaluate((k) => document.body.dataset[k], key);
}

/** Drags a range input from one fraction of its width to another in `steps` mouse moves. */
async function dragSlider(page: Page, frame: Frame, selector: string, from: number, to: number, steps: number): Promise<void> {
  const box = await frame.locator(selector).boundingBox();
  assert.ok(box, `${selector} has no box`);
  const y = box.y + box.height / 2;
  const x = (f: number) => box.x + 8 + (box.width - 16) * f;
  await page.mouse.move(x(from), y);
  await page.mouse.down();
  for (let i = 1; i <= steps; i++) {
    await page.mouse.move(x(from + ((to - from) * i) / steps), y);
    await page.waitForTimeout(16);
  }
  await page.mouse.up();
}

async function problemsText(page: Page): Promise<string> {
  return (await page.locator('.markers-panel').first().innerText().catch(() => '')) ?? '';
}

/** Clicks the first row of the open quick pick that contains `text`. */
async function pickRow(page: Page, text: string): Promise<void> {
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: text }).first();
  await row.waitFor({ state: 'visible', timeout: 20_000 });
  await row.click();
}

async function dismissNotifications(page: Page): Promise<void> {
  await tryCommand(page, 'Notifications: Clear All Notifications');
}

describe('Darkslim in VS Code (code-server)', { skip: SKIP, timeout: 9 * 60_000 }, () => {
  before(async () => {
    workspace = mkdtempSync(join(tmpdir(), 'darkslim-e2e-'));
    perfLog = join(workspace, '..', `darkslim-perf-${process.pid}.jsonl`);
    rmSync(perfLog, { force: true });
    // corpus models, copied at test time (never committed)
    for (const ext of ['cfg', 'weights']) copyFileSync(corpusPath('weights', 'yolo-fastest-1.1_coco', `${FASTEST}.${ext}`), join(workspace, `${FASTEST}.${ext}`));
    const tiny = readFileSync(corpusPath('cfg', 'alexeyab', 'yolov3-tiny.cfg'), 'utf8').split('\n');
    const line = tiny.indexOf('filters=255');
    tiny[line] = 'filters=100';
    writeFileSync(join(workspace, 'broken.cfg'), tiny.join('\n'));
    const v4 = readFileSync(corpusPath('cfg', 'alexeyab', 'yolov4.cfg'), 'utf8');
    writeFileSync(join(workspace, 'yolov4.cfg'), v4);
    writeFileSync(join(workspace, 'yolov4.weights'), syntheticWeightsBytes(analyzeCfg(v4), { seed: 3, sparse: 0.4 }));
    writeFileSync(join(workspace, 'tiny.cfg'), TINY_CFG);
    // a teacher and a student of the same shape for the distillation test (random weights)
    writeFileSync(join(workspace, 'tiny.weights'), syntheticWeightsBytes(analyzeCfg(TINY_CFG), { seed: 4 }));
    writeFileSync(join(workspace, 'tiny-student.cfg'), TINY_CFG);
    writeFileSync(join(workspace, 'tiny-student.weights'), syntheticWeightsBytes(analyzeCfg(TINY_CFG), { seed: 5 }));
    copyFileSync(corpusPath('images', 'dog.jpg'), join(workspace, 'dog.jpg'));
    copyFileSync(corpusPath('weights', 'yolo-fastest-1.1_coco', 'coco.names'), join(workspace, 'coco.names'));
    await generateSyntheticDataset({
      outDir: join(workspace, 'shapes'), seed: 5, train: 32, valid: 8, width: 64, height: 64, classes: ['circle', 'square'],
      minObjects: 1, maxObjects: 1, minSize: 0.35, maxSize: 0.6,
    });
    session = await openVsCode(workspace, VSIX, {
      'workbench.editor.enablePreview': false,
      'editor.hover.delay': 200,
      'problems.autoReveal': true,
    }, { DARKSLIM_PERF_LOG: perfLog });
    await session.shot('workbench');
  });

  after(async () => {
    writeFileSync(join(ARTIFACTS, 'perf.json'), JSON.stringify({ ...perf, events: perfEvents() }, null, 2));
    await session?.close();
    if (workspace) rmSync(workspace, { recursive: true, force: true });
    rmSync(perfLog, { force: true });
  });

  test('a broken cfg shows its error in the Problems panel, and the quick fix repairs it', async () => {
    const { page } = session;
    await openFile(page, 'broken.cfg');
    await waitFor(async () => (await page.locator('.statusbar').innerText()).includes('Darknet cfg'), 60_000, () => 'broken.cfg did not become a Darknet cfg');
    await runCommand(page, 'View: Focus Problems');
    await waitFor(async () => (await problemsText(page)).includes('filters=100'), 60_000, async () => `no filters=100 problem; panel: ${await problemsText(page)}`);
    await session.shot('problems-broken-cfg');
    const tiny = readFileSync(join(workspace, 'broken.cfg'), 'utf8').split('\n');
    await page.locator('.monaco-editor .view-lines').first().click();
    await goToLine(page, tiny.indexOf('filters=100') + 1, 9);
    await retry(3, async () => {
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+.');
      const fix = page.locator('.action-widget', { hasText: 'Set filters=255' }).first();
      await fix.waitFor({ state: 'visible', timeout: 15_000 });
      await session.shot('quick-fix-menu');
      // the preferred fix is the focused first entry
      await page.keyboard.press('Enter');
      await waitFor(async () => (await page.locator('.monaco-editor .view-lines').first().innerText()).includes('filters=255'), 10_000, () => 'the fix was not applied');
    });
    await waitFor(async () => !(await problemsText(page)).includes('filters=100'), 30_000, async () => `the problem stayed: ${await problemsText(page)}`);
    assert.ok((await page.locator('.monaco-editor .view-lines').first().innerText()).includes('filters=255'));
    await session.shot('quick-fix-applied');
    await page.keyboard.press('Control+S');
  });

  test('hover on a layer shows its shape', async () => {
    const { page } = session;
    await openFile(page, `${FASTEST}.cfg`);
    const graph = analyzeCfg(readFileSync(join(workspace, `${FASTEST}.cfg`), 'utf8'));
    const layer = graph.layers[2];
    const shape = (s: number[]) => `${s[0]}×${s[1]}×${s[2]}`;
    await page.locator('.monaco-editor .view-lines').first().click();
    await retry(3, async () => {
      await goToLine(page, layer.section.headerRange.start.line + 1, 3);
      await runCommand(page, 'Show or Focus Hover');
      const hover = page.locator('.monaco-hover:visible, .monaco-resizable-hover:visible').first();
      await waitFor(async () => (await hover.innerText().catch(() => '')).includes(shape(layer.output)), 20_000,
        async () => `hover without ${shape(layer.output)}: ${await hover.innerText().catch(() => '(none)')}`);
    });
    await session.shot('hover-layer-shape');
    await page.keyboard.press('Escape');
  });

  test('"Prune this model" from the explorer context menu writes the pruned pair and shows the diff', async () => {
    const { page } = session;
    await dismissNotifications(page);
    await runCommand(page, 'View: Show Explorer');
    const row = page.locator(`.explorer-folders-view .monaco-list-row[aria-label^="${FASTEST}.cfg"]`).first();
    await row.waitFor({ state: 'visible', timeout: 30_000 });
    await retry(3, async () => {
      await row.click({ button: 'right' });
      const sub = page.locator('.context-view .monaco-menu .action-menu-item.monaco-submenu-item', { hasText: /^Darkslim/ }).first();
      await sub.waitFor({ state: 'visible', timeout: 10_000 });
      await sub.hover();
      const item = page.locator('.context-view .monaco-menu .action-menu-item:not(.monaco-submenu-item)', { hasText: 'Prune this model…' }).first();
      await item.waitFor({ state: 'visible', timeout: 10_000 });
      await session.shot('context-menu-prune');
      await item.click();
    });
    // the weights beside the cfg fit it: not asked; the percent and the strategy are
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 20_000 });
    await input.fill('30%');
    await session.shot('prune-percent');
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'slim' }).first().waitFor({ state: 'visible', timeout: 20_000 });
    await page.keyboard.press('Enter');
    const cfg = join(workspace, `${FASTEST}-pruned-0.3.cfg`);
    const weights = join(workspace, `${FASTEST}-pruned-0.3.weights`);
    await waitFor(() => existsSync(cfg) && existsSync(weights) && existsSync(join(workspace, `${FASTEST}-pruned-0.3.report.json`)), 90_000, () => 'the pruned files did not appear');
    const pruned = analyzeCfg(readFileSync(cfg, 'utf8'));
    assert.deepEqual(pruned.diagnostics.filter((d) => d.severity === 'error'), []);
    assert.ok(pruned.totals.params < analyzeCfg(readFileSync(join(workspace, `${FASTEST}.cfg`), 'utf8')).totals.params);
    await page.locator('.tab', { hasText: '↔' }).first().waitFor({ state: 'visible', timeout: 30_000 });
    await webviewFrame(page, 'table#stages:not([hidden])', 30_000);
    await page.waitForTimeout(800);
    await session.shot('prune-diff-and-report');
    // the notification offers distillation from the original: the pruned weights are the only ones
    // that fit (not asked), and the teacher question lists the original first, from the prune report
    const toast = page.locator('.notification-toast', { hasText: 'Pruned' }).first();
    await toast.waitFor({ state: 'visible', timeout: 30_000 });
    await toast.locator('.monaco-button', { hasText: 'Distill from the Original' }).first().click();
    await waitFor(async () => /teacher of .*pruned-0\.3\.cfg/.test(await page.locator('.quick-input-title').innerText().catch(() => '')), 20_000, () => 'the teacher question did not come');
    const first = page.locator('.quick-input-list .monaco-list-row').first();
    await first.waitFor({ state: 'visible', timeout: 20_000 });
    const text = await first.innerText();
    assert.ok(text.startsWith(`${FASTEST}.cfg`) && /was pruned from it/.test(text), text);
    await session.shot('distill-teacher-question');
    await page.keyboard.press('Escape');
  });

  test('the redundancy webview draws its heatmap and the slider changes the preview', async () => {
    const { page } = session;
    await dismissNotifications(page);
    await runCommand(page, 'View: Close All Editors');
    await tryCommand(page, 'View: Hide Panel');
    await tryCommand(page, 'View: Close Primary Side Bar');
    await openFile(page, `${FASTEST}.cfg`);
    await runCommand(page, 'Darkslim: Show layer redundancy');
    const frame = await webviewFrame(page, 'body[data-ready="true"] canvas#heatmap', 90_000);
    const colours = await frame.evaluate(() => {
      const c = document.getElementById('heatmap') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      const seen = new Set<number>();
      for (let i = 0; i < d.length; i += 4 * 7) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      return { colours: seen.size, width: c.width, height: c.height };
    });
    assert.ok(colours.colours > 50, `the heatmap looks empty: ${JSON.stringify(colours)}`);
    await session.shot('redundancy-heatmap');
    const before = await frame.locator('#params').innerText();
    await dragSlider(page, frame, '#percent', 0, 0.4, 20);
    await waitFor(async () => (await frame.locator('#params').innerText()) !== before, 10_000, () => 'the preview did not change');
    const after = await frame.locator('#params').innerText();
    assert.match(after, /→/);
    assert.notEqual(after, before);
    assert.ok(Number(await bodyData(frame, 'frames')) > 0);
    await frame.locator('#heatmap').hover({ position: { x: 200, y: 10 } });
    await page.waitForTimeout(300);
    await session.shot('redundancy-slider-moved');
    perf.fastestFrames = { median: Number(await bodyData(frame, 'frameMedian')), p95: Number(await bodyData(frame, 'frameP95')), max: Number(await bodyData(frame, 'frameMax')) };

    // clicking a layer's row reveals its section in the cfg
    const rowH = await frame.evaluate(() => {
      const c = document.getElementById('heatmap') as HTMLCanvasElement;
      return c.getBoundingClientRect().height;
    });
    const graph = analyzeCfg(readFileSync(join(workspace, `${FASTEST}.cfg`), 'utf8'));
    const rows = graph.layers.filter((l) => l.type === 'convolutional' && l.conv?.batchNormalize);
    const target = rows[5];
    await frame.locator('#heatmap').click({ position: { x: 40, y: (rowH / rows.length) * 5.5 } });
    await waitFor(async () => (await page.locator('.statusbar').innerText()).includes(`Ln ${target.section.headerRange.start.line + 1},`), 20_000,
      async () => `layer ${target.index} was not revealed: ${await page.locator('.statusbar').innerText()}`);

    // "Prune with these settings": a .prune.yaml and the pruned pair
    const panel = page.locator('.tab', { hasText: 'Redundancy:' }).first();
    await panel.click();
    const percent = Number((await frame.locator('#percent-out').innerText()).replace('%', '')) / 100;
    await frame.locator('#prune').click();
    const yaml = join(workspace, `${FASTEST}.prune.yaml`);
    const tag = String(Math.round(percent * 10000) / 10000);
    await waitFor(() => existsSync(yaml) && existsSync(join(workspace, `${FASTEST}-pruned-${tag}.weights`)), 90_000, () => `no ${yaml} or pruned-${tag} files`);
    assert.match(readFileSync(yaml, 'utf8'), new RegExp(`percent: ${tag}`));
    await waitFor(async () => /Settings saved in/.test(await frame.locator('#status').innerText().catch(() => '')), 30_000, () => 'the view did not say it pruned');
    await webviewFrame(page, `body[data-stages="2"] #subtitle`, 30_000);
    await page.waitForTimeout(500);
    await session.shot('redundancy-pruned-with-settings');
  });

  test('onnxruntime and sharp load from the VSIX: Benchmark and Detect on image run in the worker', async () => {
    const { page } = session;
    await dismissNotifications(page);
    await runCommand(page, 'View: Close All Editors');
    await openFile(page, `${FASTEST}.cfg`);
    await runCommand(page, 'Darkslim: Benchmark');
    // weights or an exported model: the weights that fit come first
    await pickRow(page, `${FASTEST}.weights`);
    const toast = page.locator('.notification-toast', { hasText: 'Latency median' }).first();
    await toast.waitFor({ state: 'visible', timeout: 120_000 });
    await page.waitForTimeout(800);
    await session.shot('benchmark-result');
    await dismissNotifications(page);

    await openFile(page, `${FASTEST}.cfg`);
    await runCommand(page, 'Darkslim: Detect on image…');
    await pickRow(page, `${FASTEST}.weights`);
    // the (simple) open dialog: type the image's path
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 20_000 });
    await page.waitForTimeout(500);
    await input.fill(join(workspace, 'dog.jpg'));
    await page.waitForTimeout(500);
    await page.keyboard.press('Enter');
    const out = join(workspace, `dog-${FASTEST}.png`);
    await waitFor(() => existsSync(out), 120_000, () => `no ${out}`);
    await page.locator('.tab', { hasText: `dog-${FASTEST}.png` }).first().waitFor({ state: 'visible', timeout: 30_000 });
    // the image preview is a webview: wait until its image has loaded
    const preview = await webviewFrame(page, 'img', 30_000);
    await waitFor(() => preview.evaluate(() => { const i = document.querySelector('img'); return !!i && i.complete && i.naturalWidth > 0; }), 30_000, () => 'the annotated image did not load');
    await page.waitForTimeout(500);
    await session.shot('detect-result');
    // a cfg opened again after its editor closed is a darknet cfg again
    await runCommand(page, 'View: Close All Editors');
    await openFile(page, `${FASTEST}.cfg`);
    await waitFor(async () => (await page.locator('.statusbar').innerText()).includes('Darknet cfg'), 30_000, () => 'the reopened cfg is not a Darknet cfg');
  });

  test('sparsity training runs in the worker and the dashboard draws its curves and γ histograms', async () => {
    const { page } = session;
    await dismissNotifications(page);
    await runCommand(page, 'View: Close All Editors');
    await openFile(page, 'tiny.cfg');
    await runCommand(page, 'Darkslim: Sparsity-train…');
    await pickRow(page, 'No initial weights');
    await pickRow(page, 'shapes.data');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 20_000 });
    await input.fill('0.01');
    await page.keyboard.press('Enter');
    await page.waitForTimeout(300);
    await input.fill('2');
    await page.keyboard.press('Enter');
    const frame = await webviewFrame(page, 'body[data-state="done"]', 240_000);
    assert.ok(Number(await bodyData(frame, 'points')) >= 4, 'too few loss points');
    assert.ok(await frame.locator('#loss canvas').count() > 0, 'no loss chart');
    assert.ok(await frame.locator('#map canvas').count() > 0, 'no mAP chart');
    const gammaNote = await frame.locator('#gamma-note').innerText();
    assert.match(gammaNote, /below 0\.01/);
    assert.ok(existsSync(join(workspace, 'tiny-sparsity')), 'no training output folder');
    await tryCommand(page, 'View: Hide Panel');
    await tryCommand(page, 'View: Close Primary Side Bar');
    await page.waitForTimeout(800);
    await session.shot('training-dashboard');
    await frame.locator('#gamma').scrollIntoViewIfNeeded();
    await page.waitForTimeout(300);
    await session.shot('training-dashboard-gamma');
  });

  test('"Distill from a teacher" offers the student\'s original as teacher and trains it live in the dashboard', async () => {
    const { page } = session;
    await dismissNotifications(page);
    await runCommand(page, 'View: Close All Editors');
    await openFile(page, 'tiny-student.cfg');
    await runCommand(page, 'Darkslim: Distill from a teacher…');
    const rows = page.locator('.quick-input-list .monaco-list-row');
    await pickRow(page, 'tiny-student.weights');
    // the teacher: tiny.cfg first (the student's name starts with it)
    await rows.first().waitFor({ state: 'visible', timeout: 20_000 });
    await waitFor(async () => /tiny-student/.test(await page.locator('.quick-input-title').innerText().catch(() => '')), 20_000, () => 'the teacher question did not come');
    assert.match(await rows.first().innerText(), /^tiny\.cfg/);
    await rows.first().click();
    await pickRow(page, 'tiny.weights');
    await pickRow(page, 'shapes.data');
    await pickRow(page, 'Objectness, labels first');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 20_000 });
    await input.fill('1');
    await page.keyboard.press('Enter');
    let frame: Frame | undefined;
    await waitFor(async () => {
      frame = await webviewFrame(page, '#title', 60_000);
      const title = await frame.locator('#title').innerText().catch(() => '');
      return /^Distill tiny-student\.cfg \(from tiny\.cfg, 1 epoch\)/.test(title) && (await bodyData(frame, 'state')) === 'done';
    }, 240_000, () => 'the distillation run did not finish in the dashboard');
    const info = await frame!.locator('#info').innerText();
    assert.match(info, /distillMethod\s+objectness/);
    assert.match(info, /gtFirst\s+true/);
    assert.match(await frame!.locator('#loss').innerText(), /distill/, 'the loss chart has the distillation term');
    assert.ok(existsSync(join(workspace, 'tiny-student-distill', 'tiny-student_final.weights')), 'no distilled student weights');
    await session.shot('distill-dashboard');
  });

  test('performance: activation, yolov4.cfg → first diagnostics, heatmap frames on yolov4', async () => {
    const { page } = session;
    await dismissNotifications(page);
    await runCommand(page, 'View: Close All Editors');
    await openFile(page, 'yolov4.cfg');
    await waitFor(() => perfEvents().some((e) => e.event === 'firstDiagnostics' && String(e.file).endsWith('yolov4.cfg')), 60_000, () => 'no diagnostics for yolov4.cfg');
    await runCommand(page, 'Darkslim: Show layer redundancy');
    const frame = await webviewFrame(page, 'body[data-ready="true"] canvas#heatmap', 180_000);
    const channels = await frame.locator('#subtitle').innerText();
    await dragSlider(page, frame, '#percent', 0.02, 0.95, 80);
    await dragSlider(page, frame, '#percent', 0.95, 0.3, 60);
    await page.waitForTimeout(500);
    await session.shot('redundancy-yolov4');
    const events = perfEvents();
    perf.activation = events.find((e) => e.event === 'activate');
    perf.serverReady = events.find((e) => e.event === 'serverReady');
    perf.firstDiagnostics = events.filter((e) => e.event === 'firstDiagnostics');
    perf.yolov4 = {
      subtitle: channels,
      frames: Number(await bodyData(frame, 'frames')),
      median: Number(await bodyData(frame, 'frameMedian')),
      p95: Number(await bodyData(frame, 'frameP95')),
      max: Number(await bodyData(frame, 'frameMax')),
      prepareMs: Number(await bodyData(frame, 'prepareMs')),
    };
    console.log(`performance: ${JSON.stringify(perf, null, 2)}`);
    assert.ok((perf.yolov4 as { frames: number }).frames > 20);
  });

  test('the redundancy view comes back after a window reload, with its settings', async () => {
    const { page } = session;
    const frame = await webviewFrame(page, 'body[data-ready="true"] canvas#heatmap', 10_000);
    const percent = await frame.locator('#percent-out').innerText();
    await runCommand(page, 'Developer: Reload Window');
    await page.waitForSelector('.monaco-workbench', { timeout: 90_000 });
    const restored = await webviewFrame(page, 'body[data-ready="true"] canvas#heatmap', 120_000);
    assert.match(await restored.locator('#title').innerText(), /yolov4\.cfg/);
    assert.equal(await restored.locator('#percent-out').innerText(), percent);
    await page.waitForTimeout(500);
    await session.shot('redundancy-restored-after-reload');
  });
});
