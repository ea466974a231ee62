// Plain data shared by every stage: cfg text → CfgDocument → ModelGraph → ModelWeights.
// Positions are 0-based (line, character), as in LSP, so the language server can use them as-is.

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export type Severity = 'error' | 'warning' | 'info';

export interface Diagnostic {
  severity: Severity;
  message: string;
  range: Range;
  /** Layer index (0-based, excluding [net]); -1 for [net]; undefined when not tied to a section. */
  layer?: number;
  /** Stable machine-readable code, used by quick fixes. */
  code?: DiagnosticCode;
  /** Extra data for quick fixes (e.g. the expected value). */
  data?: Record<string, unknown>;
}

export type DiagnosticCode =
  | 'syntax'
  | 'key-outside-section'
  | 'numeric-junk'
  | 'unknown-section'
  | 'unknown-key'
  | 'duplicate-key'
  | 'bad-value'
  | 'value-range'
  | 'missing-net'
  | 'net-not-first'
  | 'empty-model'
  | 'bad-reference'
  | 'forward-reference'
  | 'route-spatial-mismatch'
  | 'route-groups'
  | 'conv-groups'
  | 'shortcut-mismatch'
  | 'head-filters'
  | 'mask-range'
  | 'anchors-count'
  | 'classes-mismatch'
  | 'non-positive-size'
  | 'size-multiple-32'
  | 'batch-subdivisions'
  | 'steps-scales'
  | 'unsupported-shape'
  | 'weights-size';

/** One `key=value` line. `value` is the raw text after '=', trimmed, without a trailing comment. */
export interface CfgEntry {
  key: string;
  value: string;
  line: number;
  keyRange: Range;
  valueRange: Range;
  /** The whole line's range. */
  range: Range;
}

export interface CfgSection {
  /** Type as written between the brackets, e.g. "convolutional", "conv", "Gaussian_yolo". */
  name: string;
  /** Canonical layer type (aliases resolved), or undefined when unknown. */
  type: LayerType | 'net' | undefined;
  /** 0-based layer index (darknet's numbering, excluding [net]); -1 for [net]. */
  index: number;
  headerRange: Range;
  /** From the header to the last non-blank line of the section. */
  range: Range;
  entries: CfgEntry[];
}

export interface CfgDocument {
  text: string;
  /** Lines of the text without their line terminators. */
  lines: string[];
  sections: CfgSection[];
  /** Syntax-level diagnostics (bad lines, junk after numbers, keys before any section). */
  diagnostics: Diagnostic[];
}

export type LayerType =
  | 'convolutional'
  | 'connected'
  | 'maxpool'
  | 'avgpool'
  | 'local_avgpool'
  | 'route'
  | 'shortcut'
  | 'upsample'
  | 'yolo'
  | 'Gaussian_yolo'
  | 'region'
  | 'detection'
  | 'reorg'
  | 'reorg3d'
  | 'dropout'
  | 'softmax'
  | 'cost'
  | 'crop'
  | 'local'
  | 'batchnorm'
  | 'activation'
  | 'scale_channels'
  | 'sam'
  | 'implicit'
  | 'empty'
  | 'contrastive'
  | 'normalization'
  | 'rnn'
  | 'gru'
  | 'lstm'
  | 'crnn'
  | 'conv_lstm'
  | 'history';

/** [width, height, channels] */
export type Shape = [number, number, number];

export interface NetOptions {
  width: number;
  height: number;
  channels: number;
  batch: number;
  subdivisions: number;
  letterBox: boolean;
  /** All [net] keys with their raw values, for stages that need more (training). */
  raw: Record<string, string>;
}

/** Options every stage needs, parsed once by the graph builder. Absent keys take darknet's defaults. */
export interface ConvOptions {
  filters: number;
  size: number;
  strideX: number;
  strideY: number;
  dilation: number;
  padding: number;
  groups: number;
  batchNormalize: boolean;
  activation: string;
  /** share_index: this conv reuses another layer's weights and stores none of its own. */
  shareIndex?: number;
}

export interface YoloOptions {
  classes: number;
  /** Total anchors (num=). */
  num: number;
  mask: number[];
  anchors: number[];
  scaleXY: number;
  newCoords: boolean;
}

export interface Layer {
  index: number;
  type: LayerType;
  section: CfgSection;
  /** Absolute indices of the layers this one reads (-1 = the network input). */
  inputs: number[];
  input: Shape;
  output: Shape;
  /** Learnable parameters (conv: weights + biases + BN scales). */
  params: number;
  /** Float32 values this layer stores in a .weights file (0 for layers without weights). */
  weightFloats: number;
  bflops: number;
  /** darknet's l.outputs (elements of the output per image). */
  outputs: number;
  conv?: ConvOptions;
  yolo?: YoloOptions;
  /** route: groups/group_id; maxpool/upsample: stride, size, padding; activation of non-conv layers. */
  groups?: number;
  groupId?: number;
  stride?: number;
  size?: number;
  padding?: number;
  activation?: string;
}

export interface ModelTotals {
  params: number;
  bflops: number;
  avgOutputs: number;
  weightFloats: number;
}

export interface ModelGraph {
  doc: CfgDocument;
  net: NetOptions;
  layers: Layer[];
  totals: ModelTotals;
  /** Syntax diagnostics of the document followed by semantic ones. */
  diagnostics: Diagnostic[];
}

export interface WeightsHeader {
  major: number;
  minor: number;
  revision: number;
  seen: bigint;
  /** 20 (64-bit seen) or 16 (32-bit seen). */
  headerBytes: number;
}

/** The float arrays of one layer, views into the file's buffer (no copies). */
export interface LayerWeights {
  index: number;
  /** Absolute byte offset of the layer's first float in the file. */
  offset: number;
  biases: Float32Array;
  /** BN γ */
  scales?: Float32Array;
  rollingMean?: Float32Array;
  rollingVariance?: Float32Array;
  /** conv: [filters][c/groups][k][k]; connected: [out][in] */
  weights: Float32Array;
}

export interface ModelWeights {
  header: WeightsHeader;
  /** Layer index → arrays; layers without weights are absent. */
  layers: Map<number, LayerWeights>;
  /** Number of layers (from the start) that the file covers: all of them unless partial. */
  loadedLayers: number;
  bytes: number;
}
