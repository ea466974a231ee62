// Document symbols: the outline, one symbol per section named with its layer index, its output
// shape as detail, and its keys as children.
import { SymbolKind, type DocumentSymbol } from 'vscode-languageserver/node';
import type { LayerType } from '../../core/darknet/types';
import type { Analysis } from '../analysis';
import * as fmt from '../format';

function kindOf(type: LayerType | 'net' | undefined): SymbolKind {
  switch (type) {
    case 'net': return SymbolKind.Module;
    case 'convolutional': case 'connected': case 'local': case 'crnn': case 'rnn': case 'gru': case 'lstm': case 'conv_lstm':
      return SymbolKind.Function;
    case 'route': case 'shortcut': case 'scale_channels': case 'sam':
      return SymbolKind.Operator;
    case 'yolo': case 'Gaussian_yolo': case 'region': case 'detection':
      return SymbolKind.Event;
    case undefined: return SymbolKind.Null;
    default: return SymbolKind.Method;
  }
}

export function documentSymbols(a: Analysis): DocumentSymbol[] {
  const { net } = a.graph;
  return a.graph.doc.sections.map((section) => {
    const layer = section.index >= 0 ? a.graph.layers[section.index] : undefined;
    const detail = section.index < 0 ? fmt.shape([net.width, net.height, net.channels]) : layer ? fmt.shape(layer.output) : '';
    return {
      name: fmt.layerLabel(section.index, section.name),
      detail,
      kind: kindOf(section.type),
      range: section.range,
      selectionRange: section.headerRange,
      children: section.entries.map((e) => ({
        name: e.key,
        detail: e.value,
        kind: SymbolKind.Property,
        range: e.range,
        selectionRange: e.keyRange,
      })),
    };
  });
}
