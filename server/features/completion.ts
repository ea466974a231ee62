// Completion: section names after `[`, the keys of the current section that are not set yet,
// enum and boolean values after `=`, and earlier layers (with their shapes) in layers=/from= lists.
import {
  CompletionItemKind, MarkupKind, type CompletionItem, type CompletionList, type Position, type Range,
} from 'vscode-languageserver/node';
import { stripAll } from '../../core/darknet/parser';
import { COMMON_LAYER_KEYS, SECTION_SCHEMAS, findKey, findSection, keysOf, type KeySchema } from '../../core/darknet/schema';
import { sectionAt, type Analysis } from '../analysis';
import * as fmt from '../format';

export const COMPLETION_TRIGGERS = ['[', '=', ','];

function list(items: CompletionItem[]): CompletionList {
  return { isIncomplete: false, items };
}

function lineRange(line: number, start: number, end: number): Range {
  return { start: { line, character: start }, end: { line, character: end } };
}

export function completion(a: Analysis, p: Position): CompletionList {
  const text = a.graph.doc.lines[p.line] ?? '';
  const prefix = text.slice(0, p.character);
  const first = prefix.search(/\S/);
  if (first >= 0 && prefix[first] === '[') return list(sectionItems(a, p, text, first));
  if (first >= 0 && (prefix[first] === '#' || prefix[first] === ';')) return list([]);
  const eq = prefix.indexOf('=');
  if (eq < 0) return list(keyItems(a, p, text, first < 0 ? p.character : first));
  return list(valueItems(a, p, text, stripAll(prefix.slice(first, eq)), eq + 1));
}

function sectionItems(a: Analysis, p: Position, text: string, bracket: number): CompletionItem[] {
  const close = text.indexOf(']', bracket);
  const end = close >= p.character ? close + 1 : p.character;
  const range = lineRange(p.line, bracket, end);
  const hasNet = a.graph.doc.sections.some((s) => s.type === 'net');
  const items: CompletionItem[] = [];
  for (const schema of SECTION_SCHEMAS) {
    schema.names.forEach((name, i) => {
      const canonical = i === 0;
      // [net] goes first in a file that lacks it, last otherwise
      const group = schema.type === 'net' ? (hasNet ? '3' : '0') : canonical ? '1' : '2';
      items.push({
        label: `[${name}]`,
        kind: CompletionItemKind.Class,
        detail: canonical ? schema.description : `alias of [${schema.names[0]}]`,
        documentation: canonical ? undefined : schema.description,
        sortText: `${group}${name}`,
        filterText: `[${name}]`,
        textEdit: { range, newText: `[${name}]` },
      });
    });
  }
  return items;
}

function keyDoc(key: KeySchema): string {
  const parts = [key.description];
  if (key.default !== undefined) parts.push(`Default: \`${key.default}\``);
  if (key.values?.length) parts.push(`Values: ${key.values.map((v) => `\`${v}\``).join(', ')}`);
  return parts.join('\n\n');
}

function keyItems(a: Analysis, p: Position, text: string, start: number): CompletionItem[] {
  const section = sectionAt(a, p.line);
  const schema = section && findSection(section.name);
  if (!section || !schema) return [];
  const set = new Set(section.entries.filter((e) => e.line !== p.line).map((e) => e.key));
  // Replace the key being typed, up to '=' when the line already has one.
  const eqAfter = text.indexOf('=', p.character);
  let end = p.character;
  while (end < text.length && /[\w.]/.test(text[end])) end++;
  const range = lineRange(p.line, start, eqAfter >= 0 ? eqAfter : end);
  const items: CompletionItem[] = [];
  for (const key of Object.values(keysOf(schema))) {
    if (set.has(key.key)) continue;
    const common = section.index >= 0 && Object.prototype.hasOwnProperty.call(COMMON_LAYER_KEYS, key.key)
      && !Object.prototype.hasOwnProperty.call(schema.keys, key.key);
    items.push({
      label: key.key,
      kind: CompletionItemKind.Property,
      detail: key.default !== undefined ? `${key.kind} = ${key.default}` : key.kind + (key.required ? ' (required)' : ''),
      documentation: { kind: MarkupKind.Markdown, value: keyDoc(key) },
      sortText: `${key.required ? '0' : common ? '2' : '1'}${key.key}`,
      textEdit: { range, newText: eqAfter >= 0 ? key.key : `${key.key}=` },
    });
  }
  return items;
}

function valueItems(a: Analysis, p: Position, text: string, keyName: string, valueStart: number): CompletionItem[] {
  const section = sectionAt(a, p.line);
  const schema = section && findSection(section.name);
  const key = schema && findKey(schema, keyName);
  if (!section || !key) return [];
  const isList = key.kind === 'layerRefs';
  // The item under the cursor: after the last ',' (lists) or '=', up to the next ',' or '#'.
  let start = valueStart;
  if (isList) start = Math.max(start, text.lastIndexOf(',', p.character - 1) + 1);
  while (start < p.character && /\s/.test(text[start])) start++;
  let end = p.character;
  while (end < text.length && !/[,#;\s]/.test(text[end])) end++;
  const range = lineRange(p.line, start, end);
  if (key.kind === 'enum') {
    return (key.values ?? []).map((v, i) => ({
      label: v,
      kind: CompletionItemKind.EnumMember,
      detail: v === key.default ? 'default' : undefined,
      sortText: String(i).padStart(3, '0'),
      textEdit: { range, newText: v },
    }));
  }
  if (key.kind === 'bool') {
    return ['0', '1'].map((v) => ({
      label: v,
      kind: CompletionItemKind.Value,
      detail: `${v === '1' ? 'on' : 'off'}${String(key.default) === v ? ' (default)' : ''}`,
      textEdit: { range, newText: v },
    }));
  }
  if (isList && section.index > 0) return layerItems(a, section.index, range);
  return [];
}

function layerItems(a: Analysis, at: number, range: Range): CompletionItem[] {
  const items: CompletionItem[] = [];
  const width = String(at).length;
  for (let j = at - 1; j >= 0; j--) {
    const layer = a.graph.layers[j];
    if (!layer) continue;
    const what = `${layer.section.name} ${fmt.shape(layer.output)}`;
    const distance = String(at - j).padStart(width, '0');
    // Relative references first (darknet's usual style), nearest first; then absolute ones.
    items.push({
      label: String(j - at),
      kind: CompletionItemKind.Reference,
      detail: `layer ${j}: ${what}`,
      sortText: `0${distance}`,
      textEdit: { range, newText: String(j - at) },
    });
    items.push({
      label: String(j),
      kind: CompletionItemKind.Reference,
      detail: `layer ${j} (absolute): ${what}`,
      sortText: `1${distance}`,
      textEdit: { range, newText: String(j) },
    });
  }
  return items;
}
