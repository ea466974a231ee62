// The webview side of the VS Code API (acquireVsCodeApi may be called once per page).
export interface VsCodeApi<S, M> {
  postMessage(message: M): void;
  getState(): S | undefined;
  setState(state: S): void;
}

declare function acquireVsCodeApi<S, M>(): VsCodeApi<S, M>;

let api: unknown;

export function vscodeApi<S, M>(): VsCodeApi<S, M> {
  if (!api) {
    api = typeof acquireVsCodeApi === 'function'
      ? acquireVsCodeApi<S, M>()
      // opened outside VS Code (a browser, for development): keep the state in memory
      : (() => { let s: S | undefined; return { postMessage: () => undefined, getState: () => s, setState: (v: S) => { s = v; } }; })();
  }
  return api as VsCodeApi<S, M>;
}

export function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing`);
  return el;
}
