// Darkslim's own LSP requests, shared by the server and the VS Code client (plain types only, so
// the client bundle does not pull in server code).

/** `darkslim/modelSummary`: what the status bar shows for the active cfg. */
export const MODEL_SUMMARY_REQUEST = 'darkslim/modelSummary';

export interface ModelSummaryParams {
  uri: string;
}

export interface ModelSummary {
  uri: string;
  version: number;
  input: [number, number, number];
  layers: number;
  params: number;
  bflops: number;
  errors: number;
  warnings: number;
  weights?: { path: string; ok: boolean; message: string };
}

/**
 * `darkslim/serverStatus`: the server's own health (like rust-analyzer's memoryUsage), used by the
 * benchmark to read the heap of a server running in another process.
 */
export const SERVER_STATUS_REQUEST = 'darkslim/serverStatus';

export interface ServerStatusParams {
  /** Collect garbage first (only possible when node runs with --expose-gc). */
  gc?: boolean;
}

export interface ServerStatus {
  analyses: number;
  openDocuments: number;
  heapUsed: number;
  rss: number;
  gcRan: boolean;
}
