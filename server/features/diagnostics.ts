// Diagnostics: the core's syntax and semantic findings, plus the check of the .weights file.
import { basename } from 'node:path';
import { DiagnosticSeverity, type Diagnostic } from 'vscode-languageserver/node';
import type { Diagnostic as CoreDiagnostic, Range } from '../../core/darknet/types';
import type { Analysis } from '../analysis';
import type { WeightsInfo } from '../weights';

export const SOURCE = 'darkslim';

const SEVERITY: Record<CoreDiagnostic['severity'], DiagnosticSeverity> = {
  error: DiagnosticSeverity.Error,
  warning: DiagnosticSeverity.Warning,
  info: DiagnosticSeverity.Information,
};

export function toLspDiagnostic(a: Analysis, d: CoreDiagnostic): Diagnostic {
  const out: Diagnostic = {
    range: d.range,
    severity: SEVERITY[d.severity],
    source: SOURCE,
    message: d.message,
  };
  if (d.code) out.code = d.code;
  if (d.data || d.layer !== undefined) out.data = { ...d.data, layer: d.layer };
  if (d.code === 'head-filters' && typeof d.data?.head === 'number') {
    // Point at the head whose size the conv's filters must match.
    const head = a.graph.layers[d.data.head];
    if (head) {
      out.relatedInformation = [{
        location: { uri: a.uri, range: head.section.headerRange },
        message: `[${head.section.name}] layer ${head.index}`,
      }];
    }
  }
  return out;
}

function firstLineRange(a: Analysis): Range {
  const net = a.graph.doc.sections[0];
  return net ? net.headerRange : { start: { line: 0, character: 0 }, end: { line: 0, character: a.graph.doc.lines[0]?.length ?? 0 } };
}

/** One diagnostic about the weights file, or none when they fit (or there are none). */
export function weightsDiagnostic(a: Analysis, weights: WeightsInfo): Diagnostic | undefined {
  switch (weights.kind) {
    case 'none':
    case 'loading':
      return undefined;
    case 'missing':
      return {
        range: firstLineRange(a), severity: DiagnosticSeverity.Warning, source: SOURCE, code: 'weights-size',
        message: `darkslim.weightsPath names ${weights.path}, which does not exist.`,
      };
    case 'unreadable':
      return {
        range: firstLineRange(a), severity: DiagnosticSeverity.Warning, source: SOURCE, code: 'weights-size',
        message: `Cannot read ${weights.path}: ${weights.message}.`,
      };
    case 'checked': {
      const { check } = weights.result;
      if (check.ok && !check.partial) return undefined;
      // A mismatch is reported where it starts; partial weights (a backbone) where they stop.
      const at = check.layer ?? (check.partial ? check.loadedLayers : undefined);
      const layer = at !== undefined ? a.graph.layers[at] : undefined;
      const range = layer ? layer.section.headerRange : firstLineRange(a);
      return {
        range,
        severity: check.ok ? DiagnosticSeverity.Information : DiagnosticSeverity.Error,
        source: SOURCE,
        code: 'weights-size',
        message: `${basename(weights.path)}: ${check.message}`,
        data: { layer: at, path: weights.path, bytes: check.bytes, expectedBytes: check.expectedBytes },
      };
    }
  }
}

export function diagnostics(a: Analysis, weights: WeightsInfo): Diagnostic[] {
  const out = a.graph.diagnostics.map((d) => toLspDiagnostic(a, d));
  const w = weightsDiagnostic(a, weights);
  if (w) out.push(w);
  return out;
}
