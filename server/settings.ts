// The server's settings (`darkslim.*`), pulled per document with workspace/configuration when the
// client supports it, else taken from initializationOptions / didChangeConfiguration pushes.
import type { Connection } from 'vscode-languageserver/node';

export interface Settings {
  /**
   * The .weights file to check cfgs against instead of `<cfg name>.weights` beside the cfg. Relative
   * paths start at the cfg's folder; `${cfgName}` stands for the cfg's name without extension.
   */
  weightsPath: string;
}

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({ weightsPath: '' });

/** Reads untrusted settings JSON (a `darkslim` section), keeping defaults for anything malformed. */
export function readSettings(raw: unknown): Settings {
  const o = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
  return { weightsPath: typeof o.weightsPath === 'string' ? o.weightsPath.trim() : DEFAULT_SETTINGS.weightsPath };
}

export class SettingsStore {
  private readonly perUri = new Map<string, Promise<Settings>>();
  private global: Settings = { ...DEFAULT_SETTINGS };

  constructor(private readonly connection: Connection, private readonly pull: boolean) {}

  /** initializationOptions: `{ weightsPath }` or `{ darkslim: { weightsPath } }`. */
  setInitial(options: unknown): void {
    const o = options !== null && typeof options === 'object' ? (options as Record<string, unknown>) : {};
    this.global = readSettings('darkslim' in o ? o.darkslim : o);
  }

  get(uri: string): Promise<Settings> {
    if (!this.pull) return Promise.resolve(this.global);
    let p = this.perUri.get(uri);
    if (!p) {
      p = this.connection.workspace.getConfiguration({ scopeUri: uri, section: 'darkslim' })
        .then(readSettings, () => this.global);
      this.perUri.set(uri, p);
    }
    return p;
  }

  /** didChangeConfiguration: a push carries the new settings; a pull client sends null and we ask again. */
  changed(pushed: unknown): void {
    this.perUri.clear();
    const o = pushed !== null && typeof pushed === 'object' ? (pushed as Record<string, unknown>) : undefined;
    if (o && 'darkslim' in o) this.global = readSettings(o.darkslim);
  }

  forget(uri: string): void {
    this.perUri.delete(uri);
  }
}
