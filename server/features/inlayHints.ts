// Inlay hints: the layer index and output shape after each section header (`#61 26×26×512`).
import type { InlayHint, Range } from 'vscode-languageserver/node';
import type { Analysis } from '../analysis';
import * as fmt from '../format';

export function inlayHints(a: Analysis, range: Range): InlayHint[] {
  const out: InlayHint[] = [];
  const { net } = a.graph;
  for (const section of a.graph.doc.sections) {
    const line = section.headerRange.start.line;
    if (line < range.start.line || line > range.end.line) continue;
    const layer = section.index >= 0 ? a.graph.layers[section.index] : undefined;
    const label = section.index < 0
      ? `input ${fmt.shape([net.width, net.height, net.channels])}`
      : layer ? `#${layer.index} ${fmt.shape(layer.output)}` : `#${section.index}`;
    out.push({ position: section.headerRange.end, label, paddingLeft: true });
  }
  return out;
}
