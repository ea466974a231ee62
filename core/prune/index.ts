// Channel and layer pruning (METHOD.md §2): dependency groups, policies, surgery with β
// compensation, layer pruning, outputs and .prune.yaml configs.
export * from './activations';
export * from './groups';
export * from './policy';
export * from './surgery';
export * from './layers';
export * from './prune';
export * from './synthetic';
export * from './config';
