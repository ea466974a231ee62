// One analysis per document version, shared by every feature: the model graph from the core plus
// the indexes the editor features need (which section a line belongs to, where layer references are).
import type { TextDocument } from 'vscode-languageserver-textdocument';
import { analyzeCfg } from '../core/darknet/graph';
import { findEntry } from '../core/darknet/parser';
import { findKey, findSection } from '../core/darknet/schema';
import type { CfgEntry, CfgSection, Layer, ModelGraph, Position, Range } from '../core/darknet/types';

/** One item of a `layers=` / `from=` list: `-1` or `61`, with where it points. */
export interface LayerRef {
  /** Index of the layer whose section holds the reference. */
  layer: number;
  key: string;
  /** The number as written (relative when negative). */
  written: number;
  /** Absolute index it resolves to (darknet: negative = relative to the layer holding it). */
  target: number;
  /** The target exists and comes before the layer holding the reference. */
  valid: boolean;
  range: Range;
}

export interface Analysis {
  uri: string;
  version: number;
  graph: ModelGraph;
  /** For each line, the index in graph.doc.sections of the section it belongs to (-1 before the first). */
  sectionAtLine: Int32Array;
  /** For each line, the entry (key=value) on it, if any. */
  entryAtLine: (CfgEntry | undefined)[];
  /** Every layer reference, in document order. */
  refs: LayerRef[];
}

export function analyze(uri: string, version: number, text: string): Analysis {
  const graph = analyzeCfg(text);
  const { doc } = graph;
  const sectionAtLine = new Int32Array(doc.lines.length).fill(-1);
  const entryAtLine: (CfgEntry | undefined)[] = new Array(doc.lines.length);
  doc.sections.forEach((section, i) => {
    const next = doc.sections[i + 1];
    const last = next ? next.headerRange.start.line - 1 : doc.lines.length - 1;
    sectionAtLine.fill(i, section.headerRange.start.line, last + 1);
    for (const e of section.entries) entryAtLine[e.line] = e;
  });
  const refs: LayerRef[] = [];
  for (const section of doc.sections) if (section.index >= 0) refs.push(...refsOfSection(graph, section));
  return { uri, version, graph, sectionAtLine, entryAtLine, refs };
}

/** Keys whose value lists layers (route layers=, shortcut/sam/scale_channels from=), per the schema. */
export function isLayerRefKey(section: CfgSection, key: string): boolean {
  const schema = findSection(section.name);
  return schema !== undefined && findKey(schema, key)?.kind === 'layerRefs';
}

const ITEM = /^([ \t]*)([+-]?)[ \t]*(\d+)/;

function refsOfSection(graph: ModelGraph, section: CfgSection): LayerRef[] {
  const out: LayerRef[] = [];
  const schema = findSection(section.name);
  if (!schema) return out;
  for (const entry of section.entries) {
    // darknet reads only the first occurrence of a key
    if (findKey(schema, entry.key)?.kind !== 'layerRefs' || findEntry(section, entry.key) !== entry) continue;
    const line = graph.doc.lines[entry.line];
    const start = entry.valueRange.start.character;
    let end = entry.valueRange.end.character;
    const hash = line.indexOf('#', start);
    if (hash >= 0 && hash < end) end = hash; // darknet stops reading the list at '#'
    let itemStart = start;
    while (itemStart <= end) {
      let itemEnd = line.indexOf(',', itemStart);
      if (itemEnd < 0 || itemEnd > end) itemEnd = end;
      const m = ITEM.exec(line.slice(itemStart, itemEnd));
      if (m) {
        const written = Number(m[2] + m[3]);
        const target = written < 0 ? section.index + written : written;
        const from = itemStart + m[1].length;
        out.push({
          layer: section.index,
          key: entry.key,
          written,
          target,
          valid: target >= 0 && target < section.index,
          range: { start: { line: entry.line, character: from }, end: { line: entry.line, character: itemStart + m[0].length } },
        });
      }
      itemStart = itemEnd + 1;
    }
  }
  return out;
}

export function sectionAt(a: Analysis, line: number): CfgSection | undefined {
  const i = line >= 0 && line < a.sectionAtLine.length ? a.sectionAtLine[line] : -1;
  return i >= 0 ? a.graph.doc.sections[i] : undefined;
}

export function layerOf(a: Analysis, section: CfgSection): Layer | undefined {
  return section.index >= 0 ? a.graph.layers[section.index] : undefined;
}

export function contains(range: Range, p: Position): boolean {
  if (p.line < range.start.line || p.line > range.end.line) return false;
  if (p.line === range.start.line && p.character < range.start.character) return false;
  if (p.line === range.end.line && p.character > range.end.character) return false;
  return true;
}

export function refAt(a: Analysis, p: Position): LayerRef | undefined {
  // refs are few per line; a linear scan of the line's refs is enough
  return a.refs.find((r) => r.range.start.line === p.line && contains(r.range, p));
}

/** The section whose header is under the position. */
export function headerAt(a: Analysis, p: Position): CfgSection | undefined {
  const s = sectionAt(a, p.line);
  return s && contains(s.headerRange, p) ? s : undefined;
}

/** Caches the analysis of the latest version of each open document. */
export class AnalysisCache {
  private readonly byUri = new Map<string, Analysis>();
  /** How many analyses were computed (for benchmarks). */
  computed = 0;

  get(doc: TextDocument): Analysis {
    const hit = this.byUri.get(doc.uri);
    if (hit && hit.version === doc.version) return hit;
    const a = analyze(doc.uri, doc.version, doc.getText());
    this.byUri.set(doc.uri, a);
    this.computed++;
    return a;
  }

  delete(uri: string): void {
    this.byUri.delete(uri);
  }
}
