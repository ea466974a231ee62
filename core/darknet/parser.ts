// Error-tolerant reader of darknet .cfg text. It follows darknet's read_cfg: a line is stripped of
// all whitespace, '[' starts a section, '#' and ';' start comment lines, anything else is key=value.
// Unlike darknet it never stops: every problem becomes a diagnostic with a range.
import type { CfgDocument, CfgEntry, CfgSection, Diagnostic, LayerType, Range } from './types';

/** Every section spelling darknet accepts (parser.c string_to_layer_type), mapped to our canonical type. */
const SECTION_TYPES: Readonly<Record<string, LayerType | 'net'>> = {
  net: 'net', network: 'net',
  convolutional: 'convolutional', conv: 'convolutional',
  connected: 'connected', conn: 'connected',
  maxpool: 'maxpool', max: 'maxpool',
  avgpool: 'avgpool', avg: 'avgpool',
  local_avgpool: 'local_avgpool', local_avg: 'local_avgpool',
  route: 'route', shortcut: 'shortcut', upsample: 'upsample',
  yolo: 'yolo', Gaussian_yolo: 'Gaussian_yolo', region: 'region', detection: 'detection',
  reorg: 'reorg', reorg3d: 'reorg3d', dropout: 'dropout',
  softmax: 'softmax', soft: 'softmax', cost: 'cost', crop: 'crop', local: 'local',
  batchnorm: 'batchnorm', activation: 'activation', scale_channels: 'scale_channels', sam: 'sam',
  implicit: 'implicit', empty: 'empty', silence: 'empty', contrastive: 'contrastive',
  normalization: 'normalization', lrn: 'normalization',
  rnn: 'rnn', gru: 'gru', lstm: 'lstm', crnn: 'crnn', conv_lstm: 'conv_lstm', history: 'history',
};

export function sectionTypeOf(name: string): LayerType | 'net' | undefined {
  return Object.prototype.hasOwnProperty.call(SECTION_TYPES, name) ? SECTION_TYPES[name] : undefined;
}

export function sectionSpellings(): string[] {
  return Object.keys(SECTION_TYPES);
}

export function range(line: number, start: number, end: number): Range {
  return { start: { line, character: start }, end: { line, character: end } };
}

function splitLines(text: string): string[] {
  return text.split(/\r\n|\r|\n/);
}

function isBlank(c: number): boolean {
  // C isspace: space, \t, \n, \v, \f, \r
  return c === 32 || (c >= 9 && c <= 13);
}

export function parseCfg(text: string): CfgDocument {
  const lines = splitLines(text);
  const sections: CfgSection[] = [];
  const diagnostics: Diagnostic[] = [];
  let current: CfgSection | undefined;
  let lastContentLine = -1;
  let layerCount = 0;
  let sawNet = false;

  const closeCurrent = () => {
    if (current) current.range.end = { line: lastContentLine, character: lines[lastContentLine]?.length ?? 0 };
  };

  for (let ln = 0; ln < lines.length; ln++) {
    const line = lines[ln];
    let first = 0;
    while (first < line.length && isBlank(line.charCodeAt(first))) first++;
    if (first === line.length) continue;
    const ch = line[first];
    if (ch === '#' || ch === ';') continue;
    let last = line.length;
    while (last > first && isBlank(line.charCodeAt(last - 1))) last--;

    if (ch === '[') {
      closeCurrent();
      const close = line.indexOf(']', first);
      const name = stripAll(close < 0 ? line.slice(first + 1, last) : line.slice(first + 1, close));
      const type = sectionTypeOf(name);
      const isNet = type === 'net';
      const index = isNet ? -1 : layerCount++;
      const headerRange = range(ln, first, close < 0 ? last : close + 1);
      current = { name, type, index, headerRange, range: { start: headerRange.start, end: headerRange.end }, entries: [] };
      sections.push(current);
      lastContentLine = ln;
      if (close < 0) {
        diagnostics.push({ severity: 'error', code: 'syntax', range: headerRange, layer: index,
          message: `Section header "${line.slice(first, last)}" is missing its closing "]".` });
      } else if (line.slice(close + 1, last).replace(/\s+/g, '') !== '') {
        // darknet compares the whole stripped line, so "[conv] # x" is not recognised at all.
        diagnostics.push({ severity: 'error', code: 'syntax', range: range(ln, close + 1, last), layer: index,
          message: `Text after the section header: darknet reads the whole line "${line.slice(first, last).replace(/\s+/g, '')}" as the section type and would not recognise it. Move the comment to its own line.` });
      }
      if (isNet) {
        if (sawNet) diagnostics.push({ severity: 'error', code: 'net-not-first', range: headerRange, layer: -1,
          message: `A second [${name}] section: darknet only reads the first section as the network options.` });
        else if (sections.length > 1) diagnostics.push({ severity: 'error', code: 'net-not-first', range: headerRange, layer: -1,
          message: `[${name}] must be the first section of the file.` });
        sawNet = true;
      }
      continue;
    }

    const eq = line.indexOf('=', first);
    if (eq < 0) {
      diagnostics.push({ severity: 'error', code: 'syntax', range: range(ln, first, last), layer: current?.index,
        message: `Line ${ln + 1} is neither a section header, a comment nor key=value: darknet prints "Config file error line ${ln + 1}" and ignores it.` });
      continue;
    }
    let keyEnd = eq;
    while (keyEnd > first && isBlank(line.charCodeAt(keyEnd - 1))) keyEnd--;
    let valueStart = eq + 1;
    while (valueStart < last && isBlank(line.charCodeAt(valueStart))) valueStart++;
    const key = stripAll(line.slice(first, keyEnd));
    const value = line.slice(valueStart, last);
    const entry: CfgEntry = {
      key,
      value,
      line: ln,
      keyRange: range(ln, first, keyEnd),
      valueRange: range(ln, valueStart, Math.max(valueStart, last)),
      range: range(ln, first, last),
    };
    if (!current) {
      diagnostics.push({ severity: 'error', code: 'key-outside-section', range: entry.range,
        message: `"${key}" appears before any section: put [net] first.` });
      continue;
    }
    if (key === '') {
      diagnostics.push({ severity: 'error', code: 'syntax', range: entry.range, layer: current.index,
        message: `Line ${ln + 1} has a value but no key.` });
      continue;
    }
    current.entries.push(entry);
    lastContentLine = ln;
  }
  closeCurrent();

  if (sections.length === 0) {
    diagnostics.push({ severity: 'error', code: 'missing-net', range: range(0, 0, lines[0]?.length ?? 0),
      message: 'The file has no sections: a darknet cfg starts with [net] followed by one section per layer.' });
  } else if (sections[0].type !== 'net') {
    diagnostics.push({ severity: 'error', code: 'missing-net', range: sections[0].headerRange, layer: sections[0].index,
      message: `The first section must be [net] or [network] (found [${sections[0].name}]): darknet refuses the file.` });
  }
  return { text, lines, sections, diagnostics };
}

// ---- Reading values the way darknet does (C atoi / atof / strtok on ',') ----

export interface CNumber {
  value: number;
  /** Characters after the number that darknet silently ignores ("" when none). */
  junk: string;
  /** No digits at all: darknet reads 0. */
  empty: boolean;
}

const INT_PREFIX = /^[ \t\n\v\f\r]*([+-]?\d+)/;
const FLOAT_PREFIX = /^[ \t\n\v\f\r]*([+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan))/i;

/** C atoi: the longest integer prefix; no digits gives 0. */
export function cAtoi(text: string): CNumber {
  // fast path for the common case: an optional sign and digits only
  let i = text.charCodeAt(0) === 45 || text.charCodeAt(0) === 43 ? 1 : 0;
  if (i < text.length) {
    const startDigits = i;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) break;
      i++;
    }
    if (i === text.length && i > startDigits && i - startDigits < 10) return { value: Number(text), junk: '', empty: false };
  }
  const m = INT_PREFIX.exec(text);
  if (!m) return { value: 0, junk: text.trim(), empty: true };
  // atoi wraps like a 32-bit int on overflow in practice; clamp to keep shapes sane.
  const v = Number(m[1]);
  return { value: Math.max(-2147483648, Math.min(2147483647, v)), junk: text.slice(m[0].length).trim(), empty: false };
}

/** C atof: the longest float prefix; no digits gives 0. */
export function cAtof(text: string): CNumber {
  const m = FLOAT_PREFIX.exec(text);
  if (!m) return { value: 0, junk: text.trim(), empty: true };
  const s = m[1].toLowerCase();
  const value = s.includes('inf') ? (s.startsWith('-') ? -Infinity : Infinity) : s.includes('nan') ? NaN : Number(s);
  return { value, junk: text.slice(m[0].length).trim(), empty: false };
}

/** Darknet strips every whitespace character from a line before it reads it. */
export function stripAll(text: string): string {
  for (let i = 0; i < text.length; i++) {
    if (isBlank(text.charCodeAt(i))) return text.replace(/[ \t\n\v\f\r]+/g, '');
  }
  return text;
}

/**
 * Splits a comma list as darknet does for route/shortcut/mask: the item count is the number of
 * commas (before any '#', where darknet stops counting for masks) plus one, each item read by atoi.
 */
export function splitCList(text: string): string[] {
  const stripped = stripAll(text);
  const hash = stripped.indexOf('#');
  const body = hash >= 0 ? stripped.slice(0, hash) : stripped;
  return body.split(',');
}

export function findEntry(section: CfgSection, key: string): CfgEntry | undefined {
  // darknet's option_find returns the first match
  for (const e of section.entries) if (e.key === key) return e;
  return undefined;
}
