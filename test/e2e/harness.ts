// Drives a real VS Code (code-server 4.100.3, installed by test/e2e/setup.sh) in Debian's chromium
// with playwright-core. Screenshots of each step land in .e2e/artifacts/ for a person to look at.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { repoRoot } from '../helpers/root';

export const E2E_DIR = join(repoRoot(), '.e2e');
export const ARTIFACTS = join(E2E_DIR, 'artifacts');
const CODE_SERVER = join(E2E_DIR, 'node_modules', 'code-server');

export interface Session {
  page: Page;
  browser: Browser;
  server: ChildProcess;
  port: number;
  workspace: string;
  close(): Promise<void>;
  shot(name: string): Promise<string>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** Installs the VSIX into a fresh extensions folder and starts code-server on a free port. */
export async function openVsCode(workspace: string, vsix: string, settings: Record<string, unknown> = {}, env: Record<string, string> = {}): Promise<Session> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const root = join(E2E_DIR, `run-${process.pid}-${Date.now()}`);
  const userData = join(root, 'user-data');
  const extensions = join(root, 'extensions');
  mkdirSync(join(userData, 'User'), { recursive: true });
  writeFileSync(join(userData, 'User', 'settings.json'), JSON.stringify({
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoCheckUpdates': false,
    'workbench.enableExperiments': false,
    'security.workspace.trust.startupPrompt': 'never',
    'security.workspace.trust.enabled': true,
    ...settings,
  }, null, 2));
  const install = spawnSync(process.execPath, [CODE_SERVER, '--extensions-dir', extensions, '--user-data-dir', userData, '--install-extension', vsix], { encoding: 'utf8' });
  if (install.status !== 0) throw new Error(`installing ${vsix} failed: ${install.stderr || install.stdout}`);
  const port = await freePort();
  const server = spawn(process.execPath, [CODE_SERVER, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry',
    '--disable-update-check', '--disable-workspace-trust', '--user-data-dir', userData, '--extensions-dir', extensions, workspace],
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  server.stdout?.on('data', (d) => { log += d; });
  server.stderr?.on('data', (d) => { log += d; });
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok === true, 60_000, () => `code-server did not start:\n${log}`);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const page = await browser.newPage({ viewport: { width: 1500, height: 950 } });
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
  await page.waitForSelector('.monaco-workbench', { timeout: 90_000 });
  let shots = 0;
  return {
    page, browser, server, port, workspace,
    async shot(name: string) {
      const path = join(ARTIFACTS, `${String(++shots).padStart(2, '0')}-${name}.png`);
      await page.screenshot({ path });
      return path;
    },
    async close() {
      await browser.close().catch(() => undefined);
      server.kill('SIGTERM');
      writeFileSync(join(ARTIFACTS, 'code-server.log'), log);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, message: () => string | Promise<string>): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(await message());
}

/** Runs `f` up to `times` times (flaky UI waits: a menu that closed, a widget that lost focus). */
export async function retry<T>(times: number, f: () => Promise<T>): Promise<T> {
  let last: unknown;
  for (let i = 0; i < times; i++) {
    try {
      return await f();
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

/** Runs a command from the command palette by its title (the row must match the title). */
export async function runCommand(page: Page, title: string): Promise<void> {
  await retry(3, async () => {
    await page.keyboard.press('Escape');
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(`>${title}`);
    const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
    await row.waitFor({ state: 'visible', timeout: 10_000 });
    await row.click();
  });
}

/** Runs a command if the palette offers it (some exist only in some states); never throws. */
export async function tryCommand(page: Page, title: string): Promise<boolean> {
  await page.keyboard.press('Escape');
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  try {
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(`>${title}`);
    const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
    await row.waitFor({ state: 'visible', timeout: 4_000 });
    await row.click();
    return true;
  } catch {
    await page.keyboard.press('Escape');
    return false;
  }
}

/** Opens a workspace file with quick open (Ctrl+P). */
export async function openFile(page: Page, name: string): Promise<void> {
  await retry(3, async () => {
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+P');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(name);
    // the row whose file name is exactly `name` (not yolo-pruned.cfg for yolo.cfg)
    const exact = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
    const row = page.locator('.quick-input-list .monaco-list-row').filter({ has: page.locator('.label-name', { hasText: exact }) }).first();
    await row.waitFor({ state: 'visible', timeout: 15_000 });
    await row.click();
    await page.locator(`.tab[aria-label*="${name}"]`).first().waitFor({ state: 'visible', timeout: 20_000 });
  });
}

/** Moves the cursor to a 1-based line and column with "Go to Line". */
export async function goToLine(page: Page, line: number, column = 1): Promise<void> {
  await retry(3, async () => {
    await page.keyboard.press('Control+G');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(`:${line}:${column}`);
    await page.keyboard.press('Enter');
  });
}
