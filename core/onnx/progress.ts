// Progress of long runs on stderr: a redrawn bar on a TTY, occasional plain lines otherwise
// (logs, CI), nothing when disabled.

export interface Progress {
  tick(done: number, extra?: string): void;
  done(message?: string): void;
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  /** Force the TTY or the plain form (default: the stream's isTTY). */
  tty?: boolean;
  /** Seconds between plain lines. Default 10. */
  lineInterval?: number;
  enabled?: boolean;
}

function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.round(s)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

export function createProgress(total: number, label: string, opts: ProgressOptions = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  if (opts.enabled === false) return { tick() {}, done() {} };
  const tty = opts.tty ?? Boolean(stream.isTTY);
  const start = performance.now();
  let lastDraw = 0;
  let lastLine = start;
  let lastPct = -1;
  let drawn = false;

  const status = (done: number, extra?: string) => {
    const elapsed = (performance.now() - start) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const eta = rate > 0 ? (total - done) / rate : Infinity;
    return { elapsed, rate, eta, text: `${done}/${total} ${rate.toFixed(1)} img/s ETA ${duration(eta)}${extra ? ` ${extra}` : ''}` };
  };

  return {
    tick(done, extra) {
      const now = performance.now();
      if (tty) {
        if (now - lastDraw < 100 && done < total) return;
        lastDraw = now;
        const cols = Math.max(40, (stream.columns || 80) - 1);
        const s = status(done, extra);
        const head = `${label} `;
        const barWidth = Math.max(10, Math.min(40, cols - head.length - s.text.length - 4));
        const filled = total > 0 ? Math.round((done / total) * barWidth) : barWidth;
        const line = `${head}[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}] ${s.text}`;
        stream.write(`\r${line.slice(0, cols)}\x1b[K`);
        drawn = true;
      } else {
        const pct = total > 0 ? Math.floor((done / total) * 10) : 10;
        const interval = (opts.lineInterval ?? 10) * 1000;
        if (done < total && pct === lastPct && now - lastLine < interval) return;
        lastPct = pct;
        lastLine = now;
        stream.write(`${label}: ${status(done, extra).text}\n`);
      }
    },
    done(message) {
      if (tty && drawn) stream.write('\r\x1b[K');
      if (message) stream.write(`${message}\n`);
    },
  };
}
