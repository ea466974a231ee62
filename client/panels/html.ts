// Builds a panel's HTML: the shell from csp.ts with the panel's script and styles as webview URIs.
import { existsSync } from 'node:fs';
import * as vscode from 'vscode';
import { makeNonce, webviewShell } from './csp';

export function panelOptions(extensionUri: vscode.Uri): vscode.WebviewPanelOptions & vscode.WebviewOptions {
  return {
    enableScripts: true,
    retainContextWhenHidden: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

export function panelHtml(webview: vscode.Webview, extensionUri: vscode.Uri, script: 'redundancy' | 'dashboard' | 'report', title: string): string {
  const uri = (...p: string[]) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, ...p)).toString();
  const styles = [uri('media', 'webview.css')];
  // a bundle that imports CSS (uPlot's) gets it as dist/webview/<script>.css
  if (existsSync(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', `${script}.css`).fsPath)) styles.unshift(uri('dist', 'webview', `${script}.css`));
  return webviewShell({ title, cspSource: webview.cspSource, nonce: makeNonce(), scriptUri: uri('dist', 'webview', `${script}.js`), styleUris: styles });
}
