// Checks of the cfg text against the layer schema and of the model as a whole (heads, [net] keys).
// Shape checks that need the layer graph are made while it is built (graph.ts).
import { cAtof, cAtoi, splitCList, stripAll } from './parser';
import { allSectionNames, didYouMean, findSection, keysOf, type KeySchema, type SectionSchema } from './schema';
import { SectionOptions } from './options';
import type { CfgEntry, CfgSection, Diagnostic, ModelGraph } from './types';

export function validateDocument(graph: ModelGraph): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const section of graph.doc.sections) validateSection(section, out);
  validateHeads(graph, out);
  validateNet(graph, out);
  return out;
}

function validateSection(section: CfgSection, out: Diagnostic[]): void {
  const layer = section.index;
  const schema = findSection(section.name);
  if (!schema) {
    const suggestion = didYouMean(section.name, allSectionNames());
    out.push({
      severity: 'error', code: 'unknown-section', range: section.headerRange, layer,
      message: `Unknown section [${section.name}]: darknet prints "Type not recognized" and the layers after it get no input.${suggestion ? ` Did you mean [${suggestion}]?` : ''}`,
      data: suggestion ? { suggestion } : undefined,
    });
    return;
  }
  const keys = keyMap(schema);
  const entries = section.entries;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    let first: CfgEntry | undefined;
    for (let j = 0; j < i && !first; j++) if (entries[j].key === entry.key) first = entries[j];
    if (first) {
      out.push({
        severity: 'warning', code: 'duplicate-key', range: entry.keyRange, layer,
        message: `${entry.key} is set twice in [${section.name}]${layer >= 0 ? ` layer ${layer}` : ''}: darknet uses the first value (line ${first.line + 1}).`,
      });
      continue;
    }
    const key = keys.get(entry.key);
    if (!key) {
      const suggestion = didYouMean(entry.key, Object.keys(keysOf(schema)));
      out.push({
        severity: 'warning', code: 'unknown-key', range: entry.keyRange, layer,
        message: `[${section.name}] has no key "${entry.key}": darknet ignores it ("Unused field").${suggestion ? ` Did you mean "${suggestion}"?` : ''}`,
        data: suggestion ? { suggestion } : undefined,
      });
      continue;
    }
    const value = stripAll(entry.value);
    switch (key.kind) {
      case 'int':
      case 'bool':
      case 'float': {
        const n = key.kind === 'float' ? cAtof(value) : cAtoi(value);
        if (n.empty) {
          out.push({
            severity: 'error', code: 'bad-value', range: entry.valueRange, layer,
            message: `${entry.key}=${entry.value} is not a number: darknet reads it as 0.`,
          });
          break;
        }
        if (key.kind === 'int' && /^[.eE]\d/.test(n.junk)) {
          out.push({
            severity: 'warning', code: 'numeric-junk', range: entry.valueRange, layer,
            message: `${entry.key} is an integer: darknet reads ${entry.value} as ${n.value}.`,
          });
        } else if (n.junk !== '') {
          out.push({
            severity: 'warning', code: 'numeric-junk', range: entry.valueRange, layer,
            message: `darknet reads ${entry.key}=${n.value} and ignores the trailing "${n.junk}".`,
          });
        }
        checkRange(entry, n.value, key.min, key.max, out, layer);
        break;
      }
      case 'enum': {
        const values = key.values ?? [];
        if (!values.includes(value)) {
          const suggestion = didYouMean(value, values);
          const fallback = entry.key === 'activation' ? ' darknet falls back to another activation.' : '';
          out.push({
            severity: 'warning', code: 'bad-value', range: entry.valueRange, layer,
            message: `${entry.key}=${value} is not one of ${values.join(', ')}.${fallback}${suggestion ? ` Did you mean "${suggestion}"?` : ''}`,
            data: suggestion ? { suggestion } : undefined,
          });
        }
        break;
      }
      case 'intList':
      case 'floatList':
      case 'layerRefs': {
        const items = splitCList(entry.value);
        for (const item of items) {
          const n = key.kind === 'floatList' ? cAtof(item) : cAtoi(item);
          if (n.empty) {
            out.push({
              severity: 'error', code: 'bad-value', range: entry.valueRange, layer,
              message: `${entry.key}=${entry.value}: "${item}" is not a number (darknet reads 0).`,
            });
            break;
          }
        }
        break;
      }
      default:
        break;
    }
  }
  for (const name of requiredKeys(schema)) {
    if (!entries.some((e) => e.key === name)) {
      out.push({
        severity: 'error', code: 'bad-value', range: section.headerRange, layer,
        message: `[${section.name}] layer ${layer} needs ${name}=.`,
      });
    }
  }
}

const KEY_MAPS = new WeakMap<SectionSchema, Map<string, KeySchema>>();

/** The section's keys as a Map: validation looks keys up for every line of every file. */
function keyMap(schema: SectionSchema): Map<string, KeySchema> {
  let map = KEY_MAPS.get(schema);
  if (!map) {
    map = new Map(Object.entries(keysOf(schema)));
    KEY_MAPS.set(schema, map);
  }
  return map;
}

const REQUIRED = new WeakMap<SectionSchema, string[]>();

function requiredKeys(schema: SectionSchema): string[] {
  let names = REQUIRED.get(schema);
  if (!names) {
    names = Object.entries(keysOf(schema)).filter(([, k]) => k.required).map(([n]) => n);
    REQUIRED.set(schema, names);
  }
  return names;
}

function checkRange(entry: CfgEntry, value: number, min: number | undefined, max: number | undefined, out: Diagnostic[], layer: number): void {
  if ((min !== undefined && value < min) || (max !== undefined && value > max)) {
    const bounds = min !== undefined && max !== undefined ? `between ${min} and ${max}` : min !== undefined ? `at least ${min}` : `at most ${max}`;
    out.push({
      severity: 'error', code: 'value-range', range: entry.valueRange, layer,
      message: `${entry.key}=${value} must be ${bounds}.`,
    });
  }
}

function validateHeads(graph: ModelGraph, out: Diagnostic[]): void {
  let firstClasses: { classes: number; index: number } | undefined;
  for (const layer of graph.layers) {
    if (!layer.yolo) continue;
    const o = new SectionOptions(layer.section);
    const { classes, num, mask, anchors } = layer.yolo;
    const at = (key: string) => o.entry(key)?.valueRange ?? layer.section.headerRange;
    if (layer.type === 'yolo' || layer.type === 'Gaussian_yolo') {
      for (const m of mask) {
        if (m < 0 || m >= num) {
          // With the anchors written out, darknet still runs (reading past num is undefined
          // behaviour that happens to work); without them the head has no anchor at all.
          const listed = m >= 0 && anchors.length >= 2 * (m + 1);
          out.push({
            severity: listed ? 'warning' : 'error', code: 'mask-range', range: at('mask'), layer: layer.index,
            message: `mask index ${m} in layer ${layer.index} is outside the ${num} anchors (num=${num})${listed ? `: darknet reads only the first ${num} anchors, so set num=${anchors.length >> 1}` : ''}.`,
            data: listed ? { num: anchors.length >> 1 } : undefined,
          });
          break;
        }
      }
    }
    if (o.has('anchors')) {
      if (anchors.length < 2 * num) {
        // darknet runs with the missing anchors left at 0, which makes those anchors useless
        out.push({
          severity: 'warning', code: 'anchors-count', range: at('anchors'), layer: layer.index,
          message: `num=${num} needs ${2 * num} anchor values (a width and a height each), but anchors= has ${anchors.length} (a missing comma?): darknet leaves the rest at 0.`,
        });
      } else if (anchors.length > 2 * num) {
        out.push({
          severity: 'warning', code: 'anchors-count', range: at('anchors'), layer: layer.index,
          message: `anchors= has ${anchors.length} values but num=${num} uses only the first ${2 * num}.`,
        });
      } else if (anchors.length % 2 !== 0) {
        out.push({
          severity: 'error', code: 'anchors-count', range: at('anchors'), layer: layer.index,
          message: `anchors= must list width,height pairs: ${anchors.length} values is odd.`,
        });
      }
    }
    if (!firstClasses) firstClasses = { classes, index: layer.index };
    else if (classes !== firstClasses.classes) {
      out.push({
        severity: 'error', code: 'classes-mismatch', range: at('classes'), layer: layer.index,
        message: `classes=${classes} in layer ${layer.index} differs from classes=${firstClasses.classes} in layer ${firstClasses.index}: all heads of a detector must agree.`,
        data: { expected: firstClasses.classes },
      });
    }
  }
}

function validateNet(graph: ModelGraph, out: Diagnostic[]): void {
  const netSection = graph.doc.sections[0]?.type === 'net' ? graph.doc.sections[0] : undefined;
  if (!netSection) return;
  const o = new SectionOptions(netSection);
  const at = (key: string) => o.entry(key)?.valueRange ?? netSection.headerRange;
  const { width, height, channels } = graph.net;
  const inputs = o.int('inputs', 0);
  if (!inputs && !(width && height && channels)) {
    out.push({
      severity: 'error', code: 'bad-value', range: netSection.headerRange, layer: -1,
      message: '[net] needs width, height and channels (or inputs=): darknet stops with "No input parameters supplied".',
    });
  }
  const last = graph.layers[graph.layers.length - 1];
  if (last && (last.type === 'yolo' || last.type === 'region' || last.type === 'detection') && (width % 32 !== 0 || height % 32 !== 0)) {
    out.push({
      severity: 'warning', code: 'size-multiple-32', range: at(width % 32 !== 0 ? 'width' : 'height'), layer: -1,
      message: `width=${width} and height=${height} should both be multiples of 32 for a YOLO detector (darknet warns too).`,
    });
  }
  const batch = o.int('batch', 1);
  const subdivisions = o.int('subdivisions', 1);
  if (subdivisions > 0 && batch % subdivisions !== 0) {
    out.push({
      severity: batch < subdivisions ? 'error' : 'warning', code: 'batch-subdivisions', range: at('subdivisions'), layer: -1,
      message: `batch=${batch} is not divisible by subdivisions=${subdivisions}: darknet trains with mini-batches of ${Math.floor(batch / subdivisions)}.`,
    });
  }
  const policy = o.str('policy', 'constant');
  if (policy === 'steps' || policy === 'sgdr') {
    const steps = o.ints('steps');
    const scales = o.floats('scales');
    if (policy === 'steps' && (!steps || !scales)) {
      out.push({
        severity: 'error', code: 'steps-scales', range: at('policy'), layer: -1,
        message: 'policy=steps needs both steps= and scales=.',
      });
    } else if (steps && scales && steps.length !== scales.length) {
      out.push({
        severity: 'error', code: 'steps-scales', range: at('scales'), layer: -1,
        message: `steps= has ${steps.length} values but scales= has ${scales.length}: they must pair up.`,
      });
    }
  }
}
