// The messages between the extension (client/panels/*) and the webviews (webview/*), in one place.
// Plain data only: both sides import these types, the webview bundle imports nothing else from here.
import type { TaskEvent } from '../core/pipeline/events';
import type { PreviewSettings, RedundancyData } from '../core/pipeline/preview';

// ---- Layer redundancy -------------------------------------------------------------------------

export interface RedundancyState {
  cfg: string;
  weights: string;
  settings: PreviewSettings;
}

export type RedundancyToWebview =
  | { type: 'data'; data: RedundancyData; settings?: PreviewSettings }
  | { type: 'busy'; message: string }
  | { type: 'error'; message: string }
  /** The prune task the view started has finished (or failed). */
  | { type: 'pruned'; ok: boolean; message: string };

export type RedundancyFromWebview =
  | { type: 'ready' }
  | { type: 'reveal'; layer: number; line: number }
  | { type: 'prune'; settings: PreviewSettings }
  | { type: 'settings'; settings: PreviewSettings }
  /** Frame times (ms) of the heatmap while the slider moved. */
  | { type: 'perf'; frames: number[] };

// ---- Training dashboard -----------------------------------------------------------------------

export interface DashboardRun {
  id: string;
  label: string;
  task: string;
}

export type DashboardToWebview =
  | { type: 'run'; run: DashboardRun; events: TaskEvent[] }
  | { type: 'events'; runId: string; events: TaskEvent[] };

export type DashboardFromWebview = { type: 'ready' };

// ---- Compression report -----------------------------------------------------------------------

export type ReportToWebview =
  | { type: 'report'; path: string; json: unknown }
  | { type: 'error'; path: string; message: string };

export type ReportFromWebview = { type: 'ready' } | { type: 'open'; path: string };
