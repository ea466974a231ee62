// Compression studies: a yaml of stages → models, report.json / report.md / SVG plots.
export * from './schema';
export * from './runner';
export * from './report';
export * from './measure';
export * from './transfer';
