// Code lens: params and BFLOPs above each layer that has any; the model totals above [net].
import type { CodeLens } from 'vscode-languageserver/node';
import type { Analysis } from '../analysis';
import * as fmt from '../format';

/** Lenses that only show text: an empty command id makes clients render them without an action. */
function lens(range: CodeLens['range'], title: string): CodeLens {
  return { range, command: { title, command: '' } };
}

export function codeLenses(a: Analysis): CodeLens[] {
  const out: CodeLens[] = [];
  const { totals, layers } = a.graph;
  for (const section of a.graph.doc.sections) {
    if (section.index < 0) {
      out.push(lens(section.headerRange,
        `${layers.length} layers · ${fmt.int(totals.params)} params (${fmt.compact(totals.params)}) · ${fmt.bflops(totals.bflops)} BFLOPs`));
      continue;
    }
    const layer = layers[section.index];
    if (!layer || (layer.params === 0 && layer.bflops === 0)) continue;
    const parts: string[] = [];
    if (layer.params > 0) parts.push(`${fmt.int(layer.params)} params`);
    if (layer.bflops > 0) parts.push(`${fmt.bflops(layer.bflops)} BFLOPs`);
    out.push(lens(section.headerRange, parts.join(' · ')));
  }
  return out;
}
