// Writes cfg text. `editCfg` changes values, adds keys and removes sections while keeping every
// other byte of the original (comments, order, spacing, line endings); `serializeCfg` writes a
// fresh file from plain sections.
import type { CfgDocument, CfgEntry, CfgSection, Range } from './types';

export type CfgEdit =
  /** Set key in the section (by index in doc.sections); adds the key when absent. */
  | { kind: 'set'; section: number; key: string; value: string }
  /** Remove a key from a section. */
  | { kind: 'unset'; section: number; key: string }
  /** Remove whole sections (header, keys, and the comment lines between them). */
  | { kind: 'remove-section'; section: number };

export interface TextEdit {
  range: Range;
  newText: string;
}

/** The part of a value before a trailing comment: `40\t#32` → `40`, `-1, 61 ###P3` → `-1, 61`. */
export function valueTokenRange(doc: CfgDocument, entry: CfgEntry): Range {
  const line = doc.lines[entry.line];
  const start = entry.valueRange.start.character;
  let end = entry.valueRange.end.character;
  const hash = line.slice(start, end).search(/[#;]/);
  if (hash >= 0) end = start + hash;
  while (end > start && /\s/.test(line[end - 1])) end--;
  return { start: { line: entry.line, character: start }, end: { line: entry.line, character: end } };
}

function eolOf(text: string): string {
  return /\r\n/.test(text) ? '\r\n' : '\n';
}

/** Edits as LSP-style text edits on the original text (used by the language server's quick fixes). */
export function cfgTextEdits(doc: CfgDocument, edits: CfgEdit[]): TextEdit[] {
  const eol = eolOf(doc.text);
  const out: TextEdit[] = [];
  const removed = new Set(edits.filter((e) => e.kind === 'remove-section').map((e) => e.section));
  for (const edit of edits) {
    const section = doc.sections[edit.section];
    if (!section) throw new Error(`cfg edit refers to section ${edit.section}, but the file has ${doc.sections.length}`);
    if (removed.has(edit.section) && edit.kind !== 'remove-section') continue;
    if (edit.kind === 'set') {
      const entry = section.entries.find((e) => e.key === edit.key);
      if (entry) {
        out.push({ range: valueTokenRange(doc, entry), newText: edit.value });
      } else {
        const lastLine = section.range.end.line;
        const at = { line: lastLine, character: doc.lines[lastLine].length };
        out.push({ range: { start: at, end: at }, newText: `${eol}${edit.key}=${edit.value}` });
      }
    } else if (edit.kind === 'unset') {
      const entry = section.entries.find((e) => e.key === edit.key);
      if (entry) out.push({ range: wholeLines(doc, entry.line, entry.line), newText: '' });
    } else {
      const next = doc.sections[edit.section + 1];
      const lastLine = next ? next.headerRange.start.line - 1 : doc.lines.length - 1;
      out.push({ range: wholeLines(doc, section.headerRange.start.line, lastLine), newText: '' });
    }
  }
  return out;
}

function wholeLines(doc: CfgDocument, first: number, last: number): Range {
  if (last + 1 < doc.lines.length) return { start: { line: first, character: 0 }, end: { line: last + 1, character: 0 } };
  // the last line of the file: remove from the end of the previous line instead
  const prev = Math.max(0, first - 1);
  return { start: { line: prev, character: first === 0 ? 0 : doc.lines[prev].length }, end: { line: last, character: doc.lines[last].length } };
}

/** Applies non-overlapping text edits to a document's text. */
export function applyTextEdits(doc: CfgDocument, edits: TextEdit[]): string {
  const starts = lineStarts(doc.text);
  const offset = (p: { line: number; character: number }) => starts[p.line] + p.character;
  const sorted = [...edits].sort((a, b) => offset(b.range.start) - offset(a.range.start) || offset(b.range.end) - offset(a.range.end));
  let text = doc.text;
  for (const e of sorted) text = text.slice(0, offset(e.range.start)) + e.newText + text.slice(offset(e.range.end));
  return text;
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) starts.push(i + 1);
    else if (c === 13) {
      if (text.charCodeAt(i + 1) === 10) i++;
      starts.push(i + 1);
    }
  }
  return starts;
}

export function editCfg(doc: CfgDocument, edits: CfgEdit[]): string {
  return applyTextEdits(doc, cfgTextEdits(doc, edits));
}

export interface PlainSection {
  name: string;
  entries: [string, string][];
}

export function serializeCfg(sections: PlainSection[]): string {
  return sections.map((s) => [`[${s.name}]`, ...s.entries.map(([k, v]) => `${k}=${v}`)].join('\n')).join('\n\n') + '\n';
}

/** Sections with their values as darknet reads them (trailing comments dropped). */
export function plainSections(doc: CfgDocument): PlainSection[] {
  const token = (e: CfgEntry) => {
    const r = valueTokenRange(doc, e);
    return doc.lines[e.line].slice(r.start.character, r.end.character);
  };
  return doc.sections.map((s: CfgSection) => ({ name: s.name, entries: s.entries.map((e) => [e.key, token(e)] as [string, string]) }));
}
