// Text edits on a cfg that keep its layout: a value is changed in place (an inline comment after it
// survives) and a missing key is added right under its section header. Used by the language
// server's quick fixes and reusable by the CLI (`applyEdits` gives the new text).
import { isHead } from './graph';
import { SectionOptions } from './options';
import { findEntry } from './parser';
import type { CfgDocument, CfgEntry, CfgSection, Layer, ModelGraph, Range } from './types';

export interface TextEdit {
  range: Range;
  newText: string;
}

const LEADING_INT = /^[+-]?\d+/;

/** Range of the integer darknet reads from an entry (atoi prefix), or the whole value when it has none. */
export function leadingNumberRange(doc: CfgDocument, entry: CfgEntry): Range {
  const line = doc.lines[entry.line] ?? '';
  const start = entry.valueRange.start.character;
  const m = LEADING_INT.exec(line.slice(start, entry.valueRange.end.character));
  if (!m) return entry.valueRange;
  return { start: { line: entry.line, character: start }, end: { line: entry.line, character: start + m[0].length } };
}

function eol(doc: CfgDocument): string {
  return doc.text.includes('\r\n') ? '\r\n' : '\n';
}

/** Sets `key` to an integer in a section: replaces the number darknet reads, or inserts `key=value` under the header. */
export function setIntEdit(doc: CfgDocument, section: CfgSection, key: string, value: number): TextEdit {
  const entry = findEntry(section, key);
  if (entry) return { range: leadingNumberRange(doc, entry), newText: String(value) };
  const line = section.headerRange.start.line;
  const end = { line, character: doc.lines[line]?.length ?? section.headerRange.end.character };
  return { range: { start: end, end }, newText: `${eol(doc)}${key}=${value}` };
}

/**
 * Output channels the conv before a detection head needs for `classes` classes, or undefined when
 * the head has no such rule ([detection] reads a [connected] layer).
 */
export function headFilters(head: Layer, classes: number): number | undefined {
  if (!head.yolo) return undefined;
  if (head.type === 'yolo') return head.yolo.mask.length * (classes + 5);
  if (head.type === 'Gaussian_yolo') return head.yolo.mask.length * (classes + 9);
  if (head.type === 'region') {
    const coords = new SectionOptions(head.section).int('coords', 4);
    return head.yolo.num * (classes + coords + 1);
  }
  return undefined;
}

/** The conv layer right before a head, whose filters= the head's size depends on. */
export function convBeforeHead(graph: ModelGraph, head: Layer): Layer | undefined {
  const prev = graph.layers[head.index - 1];
  return prev?.type === 'convolutional' ? prev : undefined;
}

/**
 * "Change classes to N everywhere": every head's classes= and the filters= of the conv before it,
 * in one list of edits. Values that are already right get no edit, so an empty list means nothing to do.
 */
export function changeClassesEdits(graph: ModelGraph, classes: number): TextEdit[] {
  const edits: TextEdit[] = [];
  for (const head of graph.layers) {
    if (!isHead(head.type) || !head.yolo) continue;
    if (new SectionOptions(head.section).int('classes', Number.NaN) !== classes) {
      edits.push(setIntEdit(graph.doc, head.section, 'classes', classes));
    }
    const filters = headFilters(head, classes);
    const conv = convBeforeHead(graph, head);
    if (filters !== undefined && conv?.conv && conv.conv.filters !== filters) {
      edits.push(setIntEdit(graph.doc, conv.section, 'filters', filters));
    }
  }
  return edits;
}

/** Applies non-overlapping edits (any order) to the text they were computed on. */
export function applyEdits(text: string, edits: readonly TextEdit[]): string {
  // Start and content end (before the line terminator) of every line.
  const starts = [0];
  const ends: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 10 && c !== 13) continue;
    ends.push(i);
    if (c === 13 && text.charCodeAt(i + 1) === 10) i++;
    starts.push(i + 1);
  }
  ends.push(text.length);
  // LSP: a character past the end of its line means the end of the line.
  const offsetAt = (line: number, character: number) =>
    line >= starts.length ? text.length : Math.min(starts[line] + character, ends[line]);
  const resolved = edits.map((e) => ({
    start: offsetAt(e.range.start.line, e.range.start.character),
    end: offsetAt(e.range.end.line, e.range.end.character),
    newText: e.newText,
  }));
  resolved.sort((a, b) => b.start - a.start || b.end - a.end);
  let out = text;
  for (const e of resolved) out = out.slice(0, e.start) + e.newText + out.slice(e.end);
  return out;
}
