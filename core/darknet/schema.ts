// Layer schema for every section type that AlexeyAB darknet's parser accepts.
// Facts (key names, defaults, how values are read) follow src/parser.c, activations.c and
// cost_layer.c of AlexeyAB/darknet; the descriptions are ours. Used for validation (unknown keys,
// value kinds and ranges), hover text and completion.

import type { LayerType } from './types';

export type ValueKind =
  | 'int'
  | 'float'
  | 'bool'
  | 'string'
  | 'enum'
  | 'intList'
  | 'floatList'
  | 'layerRefs'
  | 'path';

export interface KeySchema {
  key: string;
  kind: ValueKind;
  /** darknet's default, as darknet would use it; undefined when required or no default */
  default?: number | string;
  /** one line, plain English, what it does for the user */
  description: string;
  /** allowed values for 'enum' */
  values?: readonly string[];
  /** inclusive numeric range when meaningful */
  min?: number;
  max?: number;
  required?: boolean;
}

export interface SectionSchema {
  type: LayerType | 'net';
  /** every spelling darknet accepts, canonical first, e.g. ['convolutional','conv'] */
  names: readonly string[];
  description: string;
  keys: Readonly<Record<string, KeySchema>>;
}

/** Every name darknet's get_activation() recognises; anything else falls back to relu with a warning. */
export const ACTIVATIONS: readonly string[] = Object.freeze([
  'linear',
  'leaky',
  'relu',
  'relu6',
  'logistic',
  'mish',
  'swish',
  'hard_mish',
  'tanh',
  'elu',
  'selu',
  'gelu',
  'loggy',
  'relie',
  'ramp',
  'plse',
  'revleaky',
  'stair',
  'hardtan',
  'lhtan',
  'normalize_channels',
  'normalize_channels_softmax',
  'normalize_channels_softmax_maxval',
]);

// ---------------------------------------------------------------------------------------------
// Builders

interface Opts {
  min?: number;
  max?: number;
  required?: boolean;
}

function mk(
  key: string,
  kind: ValueKind,
  def: number | string | undefined,
  description: string,
  opts: Opts = {},
  values?: readonly string[],
): KeySchema {
  const s: KeySchema = { key, kind, description };
  if (def !== undefined) s.default = def;
  if (values) s.values = Object.freeze([...values]);
  if (opts.min !== undefined) s.min = opts.min;
  if (opts.max !== undefined) s.max = opts.max;
  if (opts.required) s.required = true;
  return Object.freeze(s);
}

const int = (key: string, def: number | undefined, description: string, opts?: Opts) =>
  mk(key, 'int', def, description, opts);
const float = (key: string, def: number | undefined, description: string, opts?: Opts) =>
  mk(key, 'float', def, description, opts);
const bool = (key: string, def: 0 | 1, description: string) => mk(key, 'bool', def, description);
const enm = (key: string, values: readonly string[], def: string | undefined, description: string) =>
  mk(key, 'enum', def, description, {}, values);
const intList = (key: string, description: string, opts?: Opts) =>
  mk(key, 'intList', undefined, description, opts);
const floatList = (key: string, description: string, opts?: Opts) =>
  mk(key, 'floatList', undefined, description, opts);
const refs = (key: string, description: string, opts?: Opts) =>
  mk(key, 'layerRefs', undefined, description, opts);
const path = (key: string, description: string) => mk(key, 'path', undefined, description);

function record(...list: KeySchema[]): Readonly<Record<string, KeySchema>> {
  const out: Record<string, KeySchema> = {};
  for (const k of list) {
    if (out[k.key]) throw new Error(`schema: duplicate key ${k.key}`);
    out[k.key] = k;
  }
  return Object.freeze(out);
}

function section(
  type: LayerType | 'net',
  names: readonly string[],
  description: string,
  ...list: KeySchema[]
): SectionSchema {
  return Object.freeze({ type, names: Object.freeze([...names]), description, keys: record(...list) });
}

const P01 = { min: 0, max: 1 };
const POS = { min: 1 };
const NONNEG = { min: 0 };

const activation = (def: string, extra = '') =>
  enm('activation', ACTIVATIONS, def, `Activation applied to the output (default ${def}).${extra}`);

// ---------------------------------------------------------------------------------------------
// Enum value sets

export const POLICIES: readonly string[] = Object.freeze([
  'constant',
  'step',
  'steps',
  'exp',
  'poly',
  'random',
  'sigmoid',
  'sgdr',
]);
export const IOU_LOSSES: readonly string[] = Object.freeze(['mse', 'giou', 'diou', 'ciou', 'iou']);
export const IOU_THRESH_KINDS: readonly string[] = Object.freeze(['iou', 'giou', 'diou', 'ciou']);
/** nms_kind values [yolo] recognises (cornersnms is [Gaussian_yolo] only). */
export const NMS_KINDS: readonly string[] = Object.freeze(['default', 'greedynms', 'diounms']);
export const GAUSSIAN_NMS_KINDS: readonly string[] = Object.freeze([...NMS_KINDS, 'cornersnms']);
export const SHORTCUT_WEIGHTS_TYPES: readonly string[] = Object.freeze([
  'none',
  'per_feature',
  'per_layer',
  'per_channel',
]);
export const WEIGHTS_NORMALIZATIONS: readonly string[] = Object.freeze(['none', 'relu', 'avg_relu', 'softmax']);
/** Cost types AlexeyAB's get_cost_type() recognises; anything else falls back to sse. */
export const COST_TYPES: readonly string[] = Object.freeze(['sse', 'masked', 'smooth']);
export const YOLO_POINTS: readonly string[] = Object.freeze(['center', 'left_top', 'right_bottom']);

// ---------------------------------------------------------------------------------------------
// Keys darknet reads for every layer (parse_network_cfg_custom, after the layer's own parser).

export const COMMON_LAYER_KEYS: Readonly<Record<string, KeySchema>> = record(
  float('clip', 0, 'Clip this layer\'s output values to [-clip, clip] during training; 0 disables.', NONNEG),
  bool('onlyforward', 0, 'Run this layer forward only: it is never back-propagated or updated.'),
  bool('dont_update', 0, 'Compute gradients through this layer but never update its weights.'),
  bool('burnin_update', 0, 'Update this layer\'s weights only during the burn_in period.'),
  bool('stopbackward', 0, 'Stop back-propagation here: this layer and all earlier layers are frozen.'),
  bool('train_only_bn', 0, 'Train only batch-norm parameters of this and all earlier layers.'),
  bool('dontload', 0, 'Do not load this layer\'s weights from the .weights file (keep them freshly initialised).'),
  bool('dontloadscales', 0, 'Load weights but not batch-norm scales/rolling statistics for this layer.'),
  float('learning_rate', 1, 'Per-layer multiplier of the [net] learning rate (1 = unchanged, 0 = frozen).', NONNEG),
);

// ---------------------------------------------------------------------------------------------
// [net]

const NET = section(
  'net',
  ['net', 'network'],
  'Network input size and training hyper-parameters; must be the first section.',
  // input
  int('batch', 1, 'Images per training iteration (split into subdivisions); set 1 for inference.', POS),
  int('subdivisions', 1, 'Split each batch into this many mini-batches (batch/subdivisions images on the GPU at once).', POS),
  int('width', undefined, 'Network input width in pixels; YOLO models need a multiple of 32.', POS),
  int('height', undefined, 'Network input height in pixels; YOLO models need a multiple of 32.', POS),
  int('channels', undefined, 'Input channels (3 for RGB, 1 for grayscale).', POS),
  int('inputs', undefined, 'Input size for non-image models; defaults to width*height*channels.', POS),
  int('time_steps', 1, 'Sequence length for recurrent models (batch is multiplied by it).', POS),
  // optimiser
  float('learning_rate', 0.001, 'Base learning rate.', NONNEG),
  float('learning_rate_min', 0.00001, 'Lowest learning rate reached by the sgdr policy.', NONNEG),
  float('momentum', 0.9, 'SGD momentum.', P01),
  float('decay', 0.0001, 'Weight decay (L2 regularisation).', NONNEG),
  int('max_batches', 0, 'Total training iterations; usually classes*2000 (at least 6000) for YOLO.', NONNEG),
  int('burn_in', 0, 'Iterations of learning-rate warm-up at the start of training.', NONNEG),
  enm('policy', POLICIES, 'constant', 'Learning-rate schedule; unknown names fall back to constant.'),
  intList('steps', 'Iterations at which the learning rate is multiplied by scales= (policy=steps); usually 80% and 90% of max_batches.'),
  floatList('scales', 'Learning-rate multipliers applied at each of steps= (policy=steps), e.g. .1,.1.'),
  floatList('seq_scales', 'Sequence-length multipliers applied at each of steps= (sequential training).'),
  int('step', 1, 'Iterations between learning-rate changes (policy=step or sigmoid).', POS),
  float('scale', 1, 'Learning-rate multiplier applied every step= iterations (policy=step).'),
  float('gamma', 1, 'Decay factor of the exp and sigmoid policies.'),
  float('power', 4, 'Exponent of the poly policy (and of the burn_in ramp).'),
  int('sgdr_cycle', undefined, 'Iterations in the first SGDR cycle (policy=sgdr); defaults to max_batches.', POS),
  int('sgdr_mult', 2, 'Growth factor of each following SGDR cycle.', POS),
  bool('adam', 0, 'Use the Adam optimiser instead of SGD with momentum.'),
  float('B1', 0.9, 'Adam beta1 (only read when adam=1).', P01),
  float('B2', 0.999, 'Adam beta2 (only read when adam=1).', P01),
  float('eps', 0.000001, 'Adam epsilon (only read when adam=1).', NONNEG),
  float('ema_alpha', 0, 'Keep an exponential moving average of the weights with this factor (0 disables).', P01),
  float('loss_scale', 1, 'Loss scaling factor for mixed-precision training.', NONNEG),
  float('label_smooth_eps', 0, 'Label smoothing for classifier training.', P01),
  float('adversarial_lr', 0, 'Learning rate of adversarial (self-adversarial) augmentation; 0 disables.', NONNEG),
  bool('attention', 0, 'Show attention maps during training (classifier).'),
  bool('try_fix_nan', 0, 'Try to recover from NaN values during training.'),
  int('sequential_subdivisions', undefined, 'Subdivisions for sequential (video) training; defaults to subdivisions.', POS),
  bool('track', 0, 'Train on sequences of frames (tracking).'),
  int('augment_speed', 2, 'Maximum frame skip when training on sequences (track=1).', NONNEG),
  int('weights_reject_freq', 0, 'How often (iterations) to check for and reject bad weights; 0 disables.', NONNEG),
  int('equidistant_point', 0, 'Iteration from which bad-label rejection starts.', NONNEG),
  float('badlabels_rejection_percentage', 0, 'Percentage of labels to reject as bad while training.', NONNEG),
  float('num_sigmas_reject_badlabels', 0, 'Reject labels whose loss is more than this many sigmas above average.', NONNEG),
  bool('dynamic_minibatch', 0, 'Change the mini-batch size together with the random network resolution.'),
  int('optimized_memory', 0, 'GPU memory optimisation level (0-3); higher levels move buffers to CPU RAM.', { min: 0, max: 3 }),
  float('workspace_size_limit_MB', 1024, 'Maximum cuDNN workspace size in MB.', NONNEG),
  bool('use_cuda_graph', 0, 'Capture the forward pass as a CUDA graph (faster inference).'),
  // augmentation
  float('angle', 0, 'Random rotation in degrees (classifier training only).', NONNEG),
  float('aspect', 1, 'Random aspect-ratio change (classifier training).', NONNEG),
  float('saturation', 1, 'Random saturation scale: images are scaled by a factor in [1/saturation, saturation].', NONNEG),
  float('exposure', 1, 'Random exposure scale: brightness is scaled by a factor in [1/exposure, exposure].', NONNEG),
  float('hue', 0, 'Random hue shift in [-hue, hue] (fraction of the hue circle).', P01),
  bool('flip', 1, 'Randomly mirror images left-right during training.'),
  int('blur', 0, 'Random blur augmentation (1 = random background blur, >1 = blur strength).', NONNEG),
  int('gaussian_noise', 0, 'Add random Gaussian noise to training images (strength).', NONNEG),
  bool('mixup', 0, 'MixUp augmentation: blend pairs of training images.'),
  bool('cutmix', 0, 'CutMix augmentation: paste a patch of another image.'),
  bool('mosaic', 0, 'Mosaic augmentation: combine 4 training images into one.'),
  bool('mosaic_bound', 0, 'Clip mosaic boxes to their own tile (without it a box keeps its extent past the cut).'),
  bool('letter_box', 0, 'Resize images keeping aspect ratio (padding the rest) in training and inference.'),
  int('max_crop', undefined, 'Largest random crop size (classifier training); defaults to 2*width.', POS),
  int('min_crop', undefined, 'Smallest random crop size (classifier training); defaults to width.', POS),
  float('resize_step', 32, 'Step in pixels between random network sizes when [yolo] random=1.', { min: 1 }),
  bool('contrastive', 0, 'Enable contrastive (self-supervised) loss; needs batch/subdivisions >= 2.'),
  bool('contrastive_jit_flip', 0, 'Use jitter and flip augmentation for the contrastive pairs.'),
  bool('contrastive_color', 0, 'Use colour augmentation for the contrastive pairs.'),
  bool('unsupervised', 0, 'Train without labels (contrastive learning only).'),
  float('max_chart_loss', 20, 'Upper limit of the loss axis in the training chart.', NONNEG),
  bool('show_receptive_field', 0, 'Print the receptive field of every layer while loading.'),
);

// ---------------------------------------------------------------------------------------------
// Layers

const CONV = section(
  'convolutional',
  ['convolutional', 'conv'],
  'Convolution: filters kernels of size x size slide over the input; optional batch-norm and activation.',
  int('filters', 1, 'Output channels; before [yolo]: (classes + 5) * len(mask); before [region]: num * (classes + coords + 1).', POS),
  int('size', 1, 'Kernel size (size x size).', POS),
  int('stride', 1, 'Step of the kernel; 2 halves the width and height.', POS),
  int('stride_x', undefined, 'Horizontal stride, overriding stride (used with stride_y).', POS),
  int('stride_y', undefined, 'Vertical stride, overriding stride (used with stride_x).', POS),
  int('dilation', 1, 'Kernel dilation (spacing between kernel taps); ignored when size=1.', POS),
  bool('pad', 0, 'Pad by size/2 so stride 1 keeps the spatial size (overrides padding=).'),
  int('padding', 0, 'Explicit zero padding on each side (ignored when pad=1).', NONNEG),
  int('groups', 1, 'Grouped convolution: input and output channels split into this many groups (= channels for depthwise).', POS),
  activation('logistic', ' Use leaky, mish or linear (before [yolo]).'),
  bool('batch_normalize', 0, 'Add batch normalization (biases are then BN betas; stores scales, mean, variance).'),
  bool('cbn', 0, 'Cross-iteration batch normalization (implies batch_normalize).'),
  bool('binary', 0, 'Binarise the weights (BinaryConnect).'),
  bool('xnor', 0, 'XNOR-net: binarise both weights and inputs.'),
  bool('bin_output', 0, 'Keep the binary output for the next XNOR layer.'),
  int('antialiasing', 0, 'Blur-pool anti-aliasing for strided convolutions (1 = 3x3 blur, 2 = 2x2 blur).', { min: 0, max: 2 }),
  float('assisted_excitation', 0, 'Assisted excitation: boost activations inside ground-truth boxes during training (iterations).', NONNEG),
  int('share_index', undefined, 'Reuse the weights of this conv layer (absolute index, or negative = relative); stores no weights.'),
  bool('sway', 0, 'Deformable kernel: sway (only one of sway/rotate/stretch/stretch_sway, size >= 3).'),
  bool('rotate', 0, 'Deformable kernel: rotation (only one of sway/rotate/stretch/stretch_sway, size >= 3).'),
  bool('stretch', 0, 'Deformable kernel: stretch (only one of sway/rotate/stretch/stretch_sway, size >= 3).'),
  bool('stretch_sway', 0, 'Deformable kernel: stretch and sway (only one of sway/rotate/stretch/stretch_sway, size >= 3).'),
  float('angle', 15, 'Rotation angle in degrees for rotate/sway kernels.'),
  bool('flipped', 0, 'Weights are stored transposed in the .weights file.'),
  float('dot', 0, 'Weight of the dot-product (diversity) loss between filters.', NONNEG),
  bool('grad_centr', 0, 'Gradient centralization.'),
  float('reverse', 0, 'Reverse-direction variant for deformable kernels.'),
  bool('coordconv', 0, 'Add x/y coordinate channels to the input (CoordConv).'),
  int('stream', -1, 'CUDA stream to run this layer on (-1 = default).'),
  int('wait_stream', -1, 'Wait for this CUDA stream before running (-1 = none).'),
);

const CONNECTED = section(
  'connected',
  ['connected', 'conn'],
  'Fully connected layer: every input feeds every output.',
  int('output', 1, 'Number of outputs.', POS),
  activation('logistic'),
  bool('batch_normalize', 0, 'Add batch normalization.'),
);

const MAXPOOL = section(
  'maxpool',
  ['maxpool', 'max'],
  'Max pooling: keeps the largest value in each size x size window.',
  int('size', undefined, 'Pooling window size; defaults to stride.', POS),
  int('stride', 1, 'Step of the window; 2 halves the width and height, 1 keeps them (SPP).', POS),
  int('stride_x', undefined, 'Horizontal stride, overriding stride.', POS),
  int('stride_y', undefined, 'Vertical stride, overriding stride.', POS),
  int('padding', undefined, 'Total padding; defaults to size - 1.', NONNEG),
  bool('maxpool_depth', 0, 'Pool across channels instead of spatially (with out_channels).'),
  int('out_channels', 1, 'Output channels when maxpool_depth=1.', POS),
  bool('antialiasing', 0, 'Blur-pool anti-aliasing after pooling.'),
  bool('maxpool_zero_nonmax', 0, 'Set non-maximum values to zero instead of dropping them.'),
);

const LOCAL_AVGPOOL = section(
  'local_avgpool',
  ['local_avgpool', 'local_avg'],
  'Average pooling over size x size windows (like [maxpool] but averaging).',
  int('size', undefined, 'Pooling window size; defaults to stride.', POS),
  int('stride', 1, 'Step of the window.', POS),
  int('stride_x', undefined, 'Horizontal stride, overriding stride.', POS),
  int('stride_y', undefined, 'Vertical stride, overriding stride.', POS),
  int('padding', undefined, 'Total padding; defaults to size - 1.', NONNEG),
);

const AVGPOOL = section(
  'avgpool',
  ['avgpool', 'avg'],
  'Global average pooling: each channel is averaged to a single value (output 1 x 1 x channels).',
);

const ROUTE = section(
  'route',
  ['route'],
  'Concatenates the outputs of the listed layers along channels (all must have the same width and height).',
  refs('layers', 'Layers to concatenate: negative = relative (-1 = previous layer), non-negative = absolute index.', {
    required: true,
  }),
  int('groups', 1, 'Split the concatenated channels into this many groups and keep one (CSP).', POS),
  int('group_id', 0, 'Which channel group to keep (0 .. groups-1).', NONNEG),
  int('stream', -1, 'CUDA stream to run this layer on (-1 = default).'),
  int('wait_stream', -1, 'Wait for this CUDA stream before running (-1 = none).'),
);

const SHORTCUT = section(
  'shortcut',
  ['shortcut'],
  'Residual connection: adds the output of the from= layer(s) to the previous layer\'s output.',
  refs('from', 'Layer(s) to add: negative = relative (-3 = three layers back), non-negative = absolute index.', {
    required: true,
  }),
  activation('linear'),
  enm('weights_type', SHORTCUT_WEIGHTS_TYPES, 'none', 'Learned weights for the sum: none, per_feature/per_layer (one per input) or per_channel.'),
  enm('weights_normalization', WEIGHTS_NORMALIZATIONS, 'none', 'Normalisation of the learned sum weights: none, relu/avg_relu or softmax.'),
);

const UPSAMPLE = section(
  'upsample',
  ['upsample'],
  'Nearest-neighbour upsampling by stride (a negative stride downsamples).',
  int('stride', 2, 'Upsampling factor; a negative value downsamples by its absolute value.'),
  float('scale', 1, 'Multiply the output values by this factor.'),
);

// Keys shared by [yolo] and [Gaussian_yolo]
function yoloHeadKeys(extraOutputs: number): KeySchema[] {
  const perAnchor = extraOutputs === 5 ? 'classes + 5' : 'classes + 9';
  return [
    int('classes', 20, `Number of object classes; the conv before must have (${perAnchor}) * len(mask) filters.`, POS),
    int('num', 1, 'Total number of anchors listed in anchors= (shared by all heads).', POS),
    intList('mask', 'Indices of the anchors this head predicts (0 .. num-1); smaller anchors go to larger heads.'),
    floatList('anchors', 'Anchor box sizes as w,h pairs in network-input pixels (num pairs).'),
    int('max', 200, 'Maximum number of ground-truth boxes per image used in training.', POS),
    float('max_delta', undefined, 'Clip per-box gradient (and class multipliers) to this value; unlimited by default.', NONNEG),
    intList('counters_per_class', 'Objects per class in the training set, to weight rare classes (one value per class).'),
    float('label_smooth_eps', 0, 'Class label smoothing.', P01),
    float('scale_x_y', 1, 'Grid sensitivity: scale the sigmoid of x/y so centres can reach cell borders (e.g. 1.05-2.0).', NONNEG),
    bool('objectness_smooth', 0, 'Use IoU-based soft objectness targets.'),
    float('iou_normalizer', 0.75, 'Weight of the box (IoU) loss.', NONNEG),
    float('obj_normalizer', 1, 'Weight of the objectness loss.', NONNEG),
    float('cls_normalizer', 1, 'Weight of the class loss.', NONNEG),
    float('delta_normalizer', 1, 'Weight of the gradient passed back from this head.', NONNEG),
    enm('iou_loss', IOU_LOSSES, 'mse', 'Box regression loss: mse, or an IoU loss (giou, diou, ciou); other names mean iou.'),
    enm('iou_thresh_kind', IOU_THRESH_KINDS, 'iou', 'Overlap measure used for iou_thresh when matching anchors.'),
    float('beta_nms', 0.6, 'Beta of DIoU-NMS (with nms_kind=diounms).', NONNEG),
    float('jitter', 0.2, 'Random crop/shift of training images, as a fraction of the image size.', P01),
    float('resize', 1, 'Random rescale of training images (with mosaic); 1 disables.', NONNEG),
    float('ignore_thresh', 0.5, 'Predictions overlapping a ground truth by more than this get no objectness penalty.', P01),
    float('truth_thresh', 1, 'Predictions overlapping a ground truth by more than this are treated as positives (1 disables).', P01),
    float('iou_thresh', 1, 'Also assign a ground truth to every anchor whose IoU exceeds this (1 disables; 0.213 is common).', P01),
    float('random', 0, 'Randomly change the network size every 10 iterations during training (1 = on; other values set the range).', NONNEG),
    path('map', 'File mapping class ids to another label set (e.g. coco9k.map).'),
  ];
}

const YOLO = section(
  'yolo',
  ['yolo'],
  'YOLOv3/v4 detection head: decodes the previous conv output into boxes for the anchors in mask=.',
  ...yoloHeadKeys(5),
  bool('show_details', 1, 'Print per-head statistics during training.'),
  bool('new_coords', 0, 'Scaled-YOLOv4 box coordinates (no exp; use with logistic activation in the conv before).'),
  enm('nms_kind', NMS_KINDS, 'default', 'Non-maximum suppression used at inference: default, greedynms or diounms.'),
  bool('focal_loss', 0, 'Use focal loss for objectness/classes.'),
  int('track_history_size', 5, 'Frames of history kept per track (tracking with embeddings).', POS),
  float('sim_thresh', 0, 'Embedding similarity threshold for tracking (darknet reads it as an integer, so 0.8 becomes 0).', P01),
  int('dets_for_track', 1, 'Detections needed before a track is created.', POS),
  int('dets_for_show', 1, 'Detections needed before a track is shown.', POS),
  float('track_ciou_norm', 0.01, 'Weight of the CIoU term when matching tracks.', NONNEG),
  int('embedding_layer', undefined, 'Layer producing the tracking embeddings (absolute, or negative = relative).'),
);

const GAUSSIAN_YOLO = section(
  'Gaussian_yolo',
  ['Gaussian_yolo'],
  'Gaussian YOLOv3 head: like [yolo] but also predicts box uncertainty ((classes + 9) * len(mask) filters).',
  ...yoloHeadKeys(9),
  float('uc_normalizer', 1, 'Weight of the uncertainty loss.', NONNEG),
  enm('nms_kind', GAUSSIAN_NMS_KINDS, 'default', 'Non-maximum suppression used at inference: default, greedynms, diounms or cornersnms.'),
  enm('yolo_point', YOLO_POINTS, 'center', 'Which box point the x,y outputs predict: center, left_top or right_bottom.'),
);

const REGION = section(
  'region',
  ['region'],
  'YOLOv2 detection head: conv before needs num * (classes + coords + 1) filters.',
  int('classes', 20, 'Number of object classes.', POS),
  int('coords', 4, 'Box coordinates per anchor.', POS),
  int('num', 1, 'Number of anchors (anchors= holds num w,h pairs).', POS),
  floatList('anchors', 'Anchor sizes as w,h pairs in grid cells (num pairs).'),
  int('max', 200, 'Maximum number of ground-truth boxes per image used in training.', POS),
  bool('log', 0, 'Predict log-space box sizes.'),
  bool('sqrt', 0, 'Predict square-root box sizes.'),
  bool('softmax', 0, 'Apply softmax over class scores.'),
  bool('focal_loss', 0, 'Use focal loss.'),
  float('jitter', 0.2, 'Random crop/shift of training images, as a fraction of the image size.', P01),
  float('resize', 1, 'Random rescale of training images; 1 disables.', NONNEG),
  bool('rescore', 0, 'Use the IoU as the objectness target.'),
  float('thresh', 0.5, 'Predictions overlapping a ground truth by more than this get no objectness penalty.', P01),
  int('classfix', 0, 'Class-fixing mode for hierarchical (9000) training.'),
  bool('absolute', 0, 'Use absolute coordinates for the box loss.'),
  float('random', 0, 'Randomly change the network size during training (1 = on).', NONNEG),
  float('coord_scale', 1, 'Weight of the box coordinate loss.', NONNEG),
  float('object_scale', 1, 'Weight of the objectness loss for cells with objects.', NONNEG),
  float('noobject_scale', 1, 'Weight of the objectness loss for cells without objects.', NONNEG),
  float('mask_scale', 1, 'Weight of the mask loss.', NONNEG),
  float('class_scale', 1, 'Weight of the class loss.', NONNEG),
  bool('bias_match', 0, 'Match ground truths to anchors by shape only.'),
  path('tree', 'Class hierarchy file for YOLO9000 (e.g. 9k.tree).'),
  path('map', 'File mapping class ids to another label set (e.g. coco9k.map).'),
);

const DETECTION = section(
  'detection',
  ['detection'],
  'YOLOv1 detection head: predicts boxes on a side x side grid from a [connected] layer.',
  int('classes', 1, 'Number of object classes.', POS),
  int('coords', 1, 'Box coordinates per box (4 for YOLOv1).', POS),
  int('num', 1, 'Boxes predicted per grid cell.', POS),
  int('side', 7, 'Grid size (side x side cells).', POS),
  bool('rescore', 0, 'Use the IoU as the objectness target.'),
  bool('softmax', 0, 'Apply softmax over class scores.'),
  bool('sqrt', 0, 'Predict square-root box sizes.'),
  int('max', 200, 'Maximum number of ground-truth boxes per image used in training.', POS),
  float('coord_scale', 1, 'Weight of the box coordinate loss.', NONNEG),
  int('forced', 0, 'Force the responsible box during training (debugging).', NONNEG),
  float('object_scale', 1, 'Weight of the objectness loss for cells with objects.', NONNEG),
  float('noobject_scale', 1, 'Weight of the objectness loss for cells without objects.', NONNEG),
  float('class_scale', 1, 'Weight of the class loss.', NONNEG),
  float('jitter', 0.2, 'Random crop/shift of training images, as a fraction of the image size.', P01),
  float('resize', 1, 'Random rescale of training images; 1 disables.', NONNEG),
  float('random', 0, 'Randomly change the network size during training (1 = on).', NONNEG),
  bool('reorg', 0, 'Reorganise the input before detection.'),
);

const reorgKeys = () => [
  int('stride', 1, 'Space-to-depth factor: width and height shrink by stride, channels grow by stride^2.', POS),
  bool('reverse', 0, 'Do the inverse (depth-to-space).'),
];

const REORG3D = section(
  'reorg3d',
  ['reorg3d'],
  'Space-to-depth reorganisation (darknet\'s current REORG implementation).',
  ...reorgKeys(),
);

const REORG = section(
  'reorg',
  ['reorg'],
  'Space-to-depth reorganisation, YOLOv2 (old) implementation; same shapes as [reorg3d].',
  ...reorgKeys(),
);

const DROPOUT = section(
  'dropout',
  ['dropout'],
  'Dropout (or DropBlock) during training; passes the input through unchanged at inference.',
  float('probability', 0.2, 'Fraction of values dropped during training.', P01),
  bool('dropblock', 0, 'Drop contiguous blocks (DropBlock) instead of single values.'),
  float('dropblock_size_rel', 0, 'DropBlock size relative to the feature map (0..1).', P01),
  int('dropblock_size_abs', 0, 'DropBlock size in cells (used when dropblock=1; 7 if neither size is set).', NONNEG),
);

const SOFTMAX = section(
  'softmax',
  ['softmax', 'soft'],
  'Softmax over the inputs (classifier output).',
  int('groups', 1, 'Apply softmax separately to this many equal groups of inputs.', POS),
  float('temperature', 1, 'Softmax temperature (higher = softer).', { min: 0 }),
  path('tree', 'Class hierarchy file for hierarchical softmax (e.g. 9k.tree).'),
  bool('spatial', 0, 'Apply softmax per spatial position across channels.'),
  bool('noloss', 0, 'Do not compute a loss here.'),
);

const COST = section(
  'cost',
  ['cost'],
  'Loss layer comparing the output with the training targets.',
  enm('type', COST_TYPES, 'sse', 'Loss function; unknown names fall back to sse.'),
  float('scale', 1, 'Multiplier of the loss.', NONNEG),
  float('ratio', 0, 'Fraction of the largest errors kept (hard example mining); 0 keeps all.', P01),
);

const CROP = section(
  'crop',
  ['crop'],
  'Random crop and colour augmentation inside the network (classifiers).',
  int('crop_height', 1, 'Output height of the crop.', POS),
  int('crop_width', 1, 'Output width of the crop.', POS),
  bool('flip', 0, 'Randomly mirror left-right.'),
  float('angle', 0, 'Random rotation in degrees.'),
  float('saturation', 1, 'Random saturation scale.', NONNEG),
  float('exposure', 1, 'Random exposure scale.', NONNEG),
  bool('noadjust', 0, 'Do not rescale the input values to [-1, 1].'),
  float('shift', 0, 'Random colour shift.'),
);

const LOCAL = section(
  'local',
  ['local'],
  'Locally connected layer: like a convolution but with separate weights at each position.',
  int('filters', 1, 'Output channels.', POS),
  int('size', 1, 'Kernel size.', POS),
  int('stride', 1, 'Step of the kernel.', POS),
  bool('pad', 0, 'Pad by size/2.'),
  activation('logistic'),
);

const BATCHNORM = section(
  'batchnorm',
  ['batchnorm'],
  'Standalone batch normalization of the previous layer\'s output.',
);

const ACTIVATION = section(
  'activation',
  ['activation'],
  'Applies an activation function to the previous layer\'s output.',
  activation('linear'),
);

const SCALE_CHANNELS = section(
  'scale_channels',
  ['scale_channels'],
  'Multiplies the previous layer\'s channels by the per-channel values of the from= layer (squeeze-and-excitation).',
  refs('from', 'Layer holding the scales (1 x 1 x channels): negative = relative, non-negative = absolute.', { required: true }),
  bool('scale_wh', 0, 'Scale per spatial position instead of per channel.'),
  activation('linear', ' swish and mish are not supported here.'),
);

const SAM = section(
  'sam',
  ['sam'],
  'Spatial attention: multiplies the previous layer\'s output element-wise by the from= layer.',
  refs('from', 'Layer holding the attention map (same shape): negative = relative, non-negative = absolute.', { required: true }),
  activation('linear', ' swish and mish are not supported here.'),
);

const IMPLICIT = section(
  'implicit',
  ['implicit'],
  'Learned implicit knowledge: a trainable constant tensor (YOLOR).',
  float('mean', 0, 'Mean of the initial values.'),
  float('std', 0.2, 'Standard deviation of the initial values.', NONNEG),
  int('filters', 128, 'Number of channels.', POS),
  int('atoms', 1, 'Number of atoms (values per channel).', POS),
);

const EMPTY = section(
  'empty',
  ['empty', 'silence'],
  'No-op layer: passes its input through unchanged.',
);

const CONTRASTIVE = section(
  'contrastive',
  ['contrastive'],
  'Contrastive (self-supervised) loss on embeddings, optionally tied to a [yolo] layer.',
  int('classes', 1000, 'Number of classes.', POS),
  int('yolo_layer', undefined, 'The [yolo] layer whose detections select the embeddings (absolute, or negative = relative); darknet fails without it.', {
    required: true,
  }),
  float('temperature', 1, 'Temperature of the contrastive softmax.', { min: 0 }),
  float('cls_normalizer', 1, 'Weight of the contrastive loss.', NONNEG),
  float('max_delta', undefined, 'Clip the gradient to this value; unlimited by default.', NONNEG),
  int('contrastive_neg_max', 3, 'Maximum number of negative samples per positive.', POS),
);

const NORMALIZATION = section(
  'normalization',
  ['normalization', 'lrn'],
  'Local response normalization across neighbouring channels (AlexNet).',
  float('alpha', 0.0001, 'Scaling parameter alpha.'),
  float('beta', 0.75, 'Exponent beta.'),
  float('kappa', 1, 'Additive constant kappa.'),
  int('size', 5, 'Number of neighbouring channels normalised together.', POS),
);

const RNN = section(
  'rnn',
  ['rnn'],
  'Vanilla recurrent layer built from three fully connected layers.',
  int('output', 1, 'Number of outputs.', POS),
  int('hidden', 1, 'Size of the hidden state.', POS),
  activation('logistic'),
  bool('batch_normalize', 0, 'Add batch normalization.'),
  bool('logistic', 0, 'Use a logistic output.'),
  bool('shortcut', 0, 'Add a shortcut connection around the recurrent state.'),
);

const GRU = section(
  'gru',
  ['gru'],
  'Gated recurrent unit layer.',
  int('output', 1, 'Number of outputs (and hidden state size).', POS),
  bool('batch_normalize', 0, 'Add batch normalization.'),
);

const LSTM = section(
  'lstm',
  ['lstm'],
  'Long short-term memory layer.',
  int('output', 1, 'Number of outputs (and cell state size).', POS),
  bool('batch_normalize', 0, 'Add batch normalization.'),
);

const convRecurrentKeys = (defSize: number) => [
  int('size', defSize, 'Kernel size of the inner convolutions.', POS),
  int('stride', 1, 'Stride of the inner convolutions.', POS),
  int('dilation', 1, 'Dilation of the inner convolutions.', POS),
  bool('pad', 0, 'Pad by size/2 (overrides padding=).'),
  int('padding', 0, 'Explicit zero padding.', NONNEG),
  int('output', 1, 'Output channels.', POS),
  int('groups', 1, 'Grouped convolution groups.', POS),
  bool('batch_normalize', 0, 'Add batch normalization.'),
  bool('xnor', 0, 'XNOR (binary) convolutions.'),
  bool('shortcut', 0, 'Add a shortcut connection around the recurrent state.'),
];

const CRNN = section(
  'crnn',
  ['crnn'],
  'Convolutional recurrent layer built from three convolutions.',
  ...convRecurrentKeys(3),
  int('hidden', 1, 'Channels of the hidden state.', POS),
  activation('logistic'),
);

const CONV_LSTM = section(
  'conv_lstm',
  ['conv_lstm'],
  'Convolutional LSTM layer.',
  ...convRecurrentKeys(3),
  activation('linear'),
  bool('peephole', 0, 'Add peephole connections.'),
  bool('bottleneck', 0, 'Bottleneck variant with fewer weights.'),
  int('state_constrain', undefined, 'Reset the state every this many steps; defaults to time_steps*32.', POS),
  enm('lstm_activation', ACTIVATIONS, 'tanh', 'Activation inside the LSTM cell (default tanh).'),
  float('time_normalizer', 1, 'Scale of the gradient through time.', NONNEG),
);

const HISTORY = section(
  'history',
  ['history'],
  'Stacks the outputs of the last history_size time steps along channels.',
  int('history_size', 4, 'Number of time steps kept.', POS),
);

export const SECTION_SCHEMAS: readonly SectionSchema[] = Object.freeze([
  NET,
  CONV,
  CONNECTED,
  MAXPOOL,
  AVGPOOL,
  LOCAL_AVGPOOL,
  ROUTE,
  SHORTCUT,
  UPSAMPLE,
  YOLO,
  GAUSSIAN_YOLO,
  REGION,
  DETECTION,
  REORG3D,
  REORG,
  DROPOUT,
  SOFTMAX,
  COST,
  CROP,
  LOCAL,
  BATCHNORM,
  ACTIVATION,
  SCALE_CHANNELS,
  SAM,
  IMPLICIT,
  EMPTY,
  CONTRASTIVE,
  NORMALIZATION,
  RNN,
  GRU,
  LSTM,
  CRNN,
  CONV_LSTM,
  HISTORY,
]);

// ---------------------------------------------------------------------------------------------
// Lookup

const BY_NAME = new Map<string, SectionSchema>();
for (const s of SECTION_SCHEMAS) {
  for (const n of s.names) {
    if (BY_NAME.has(n)) throw new Error(`schema: duplicate section name ${n}`);
    BY_NAME.set(n, s);
  }
}

/**
 * Section schema by name, case-sensitive like darknet ("[Gaussian_yolo]"). Accepts the name with or
 * without brackets; whitespace is ignored, as darknet strips it from every line. Undefined for unknown.
 */
export function findSection(name: string): SectionSchema | undefined {
  let n = name.replace(/\s+/g, '');
  if (n.startsWith('[') && n.endsWith(']')) n = n.slice(1, -1);
  return BY_NAME.get(n);
}

const MERGED = new WeakMap<SectionSchema, Readonly<Record<string, KeySchema>>>();

/** Keys valid in a section: its own plus the keys darknet reads for every layer ([net] has only its own). */
export function keysOf(schema: SectionSchema): Readonly<Record<string, KeySchema>> {
  if (schema.type === 'net') return schema.keys;
  let merged = MERGED.get(schema);
  if (!merged) {
    // The section's own keys win; no layer currently redefines a common key.
    merged = Object.freeze({ ...COMMON_LAYER_KEYS, ...schema.keys });
    MERGED.set(schema, merged);
  }
  return merged;
}

/** A key's schema in a section (case-sensitive, like darknet's option lookup). */
export function findKey(schema: SectionSchema, key: string): KeySchema | undefined {
  const keys = keysOf(schema);
  return Object.prototype.hasOwnProperty.call(keys, key) ? keys[key] : undefined;
}

/** Names of all sections (every spelling), for completion and did-you-mean. */
export function allSectionNames(): string[] {
  return [...BY_NAME.keys()];
}

// ---------------------------------------------------------------------------------------------
// Did-you-mean

/** Optimal-string-alignment (restricted Damerau-Levenshtein) distance. */
export function editDistance(a: string, b: string): number {
  const n = a.length;
  const m = b.length;
  if (n === 0) return m;
  if (m === 0) return n;
  // three rolling rows: i-2, i-1, i
  let prev2 = new Array<number>(m + 1).fill(0);
  let prev = new Array<number>(m + 1);
  let cur = new Array<number>(m + 1);
  for (let j = 0; j <= m; j++) prev[j] = j;
  for (let i = 1; i <= n; i++) {
    cur[0] = i;
    const ai = a.charCodeAt(i - 1);
    for (let j = 1; j <= m; j++) {
      const bj = b.charCodeAt(j - 1);
      const cost = ai === bj ? 0 : 1;
      let d = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && ai === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === bj) {
        d = Math.min(d, prev2[j - 2] + 1);
      }
      cur[j] = d;
    }
    const t = prev2;
    prev2 = prev;
    prev = cur;
    cur = t;
  }
  return prev[m];
}

/**
 * Best candidate within distance max(1, floor(len/3)) of word, or undefined. Distances are computed
 * case-insensitively (so "b1" suggests "B1"); ties go to the exact-case-closer, then earlier candidate.
 */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const limit = Math.max(1, Math.floor(word.length / 3));
  const lw = word.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  let bestExact = Infinity;
  for (const c of candidates) {
    if (Math.abs(c.length - word.length) > limit) continue;
    const d = editDistance(lw, c.toLowerCase());
    if (d > limit) continue;
    const exact = d === 0 ? editDistance(word, c) : d;
    if (d < bestD || (d === bestD && exact < bestExact)) {
      best = c;
      bestD = d;
      bestExact = exact;
    }
  }
  return best;
}
